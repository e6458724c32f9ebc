"""A small OpenAI-compatible chat server over a local Hugging Face model (``saetools serve``).

It speaks the part of the OpenAI HTTP API that saetools uses — ``POST /v1/chat/completions``
(non-streaming) and ``GET /v1/models`` — so every LLM feature works offline with the embedded
SmolLM2-135M-Instruct, and the test suite talks to a real server over HTTP without compiling
llama.cpp (docs/llm.md). Decoding is greedy at temperature 0 and seeded sampling otherwise; the
reply's ``usage`` counts real tokens.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


class ChatModel:
    """A causal LM with a chat template; one generation at a time (a lock serialises calls)."""

    def __init__(self, name: str | None = None, device: str = "cpu") -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..readers.defaults import DEFAULT_READER, convert_gguf, smollm2_gguf_path

        if name in (None, DEFAULT_READER):
            path, self.name = convert_gguf(smollm2_gguf_path(), quiet=True), "smollm2-135m"
        else:
            path, self.name = name, name
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
        self.model.to(device).eval()
        self.device = device
        self.lock = threading.Lock()

    def chat(
        self, messages: list[dict], max_tokens: int, temperature: float, seed: int | None
    ) -> tuple[str, int, int, str]:
        """Reply text, prompt tokens, completion tokens and finish reason."""
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"].to(self.device)
        options = {"max_new_tokens": max_tokens, "pad_token_id": self.tokenizer.eos_token_id}
        if temperature > 0:
            options.update(do_sample=True, temperature=temperature, top_p=0.95)
        else:
            options.update(do_sample=False)
        with self.lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            out = self.model.generate(ids, **options)
        new = out[0, ids.shape[1] :]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        finish = "length" if len(new) >= max_tokens else "stop"
        return text.strip(), int(ids.shape[1]), int(len(new)), finish


def make_handler(model: ChatModel):
    """The request handler class bound to ``model``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet by default
            pass

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                item = {"id": model.name, "object": "model", "owned_by": "saetools"}
                self._send(200, {"object": "list", "data": [item]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802 - http.server API
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length) or b"{}")
                messages = request["messages"]
                max_tokens = int(request.get("max_tokens") or 256)
                temperature = float(request.get("temperature") or 0.0)
                seed = request.get("seed")
            except (ValueError, KeyError, TypeError) as exc:
                self._send(400, {"error": {"message": f"bad request: {exc}"}})
                return
            text, prompt_tokens, completion_tokens, finish = model.chat(
                messages, max_tokens, temperature, seed
            )
            self._send(
                200,
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model.name,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": finish,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                },
            )

    return Handler


def serve(host: str = "127.0.0.1", port: int = 8008, model: str | None = None) -> None:
    """Serve ``model`` (default: the embedded SmolLM2-135M-Instruct) until interrupted."""
    chat = ChatModel(model)
    server = ThreadingHTTPServer((host, port), make_handler(chat))
    print(f"serving {chat.name} at http://{host}:{server.server_port}/v1", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(timeout: float = 300.0) -> tuple[subprocess.Popen, str]:
    """Start ``saetools serve`` in a subprocess on a free port of 127.0.0.1 and wait until it
    answers; returns (process, base_url). The caller stops it (``process.terminate()``)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "saetools", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"saetools serve exited: {process.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as reply:
                if reply.status == 200:
                    return process, base_url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("saetools serve did not start in time")
