"""A small OpenAI-compatible chat server over a local Hugging Face model (``saetools serve``).

It speaks the part of the OpenAI HTTP API that saetools uses — ``POST /v1/chat/completions``
(non-streaming) and ``GET /v1/models`` — so every LLM feature works offline with the embedded
SmolLM2-135M-Instruct, and the test suite talks to a real server over HTTP without compiling
llama.cpp (docs/llm.md). Decoding is greedy at temperature 0 and seeded sampling otherwise; the
reply's ``usage`` counts real tokens.

Hardened for a machine shared with others: it binds to 127.0.0.1 unless told otherwise, reads
at most ``MAX_BODY_BYTES`` of a request, caps ``max_tokens``, answers every malformed request
with a one-line 4xx error, and with ``api_key`` refuses requests without that bearer token.
"""

from __future__ import annotations

import hmac
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


MAX_BODY_BYTES = 1 << 20
"""Largest request body read (1 MiB); a longer one is answered 413 without being read."""
DEFAULT_MAX_TOKENS_CAP = 1024
"""Default largest ``max_tokens`` a request may ask for."""


class BadRequest(ValueError):
    """A request the server refuses: its HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_chat_request(body: bytes, max_tokens_cap: int) -> tuple[list[dict], int, float, int]:
    """``(messages, max_tokens, temperature, seed)`` of a chat request body, checked."""
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(400, "the body is not JSON") from None
    if not isinstance(request, dict):
        raise BadRequest(400, "the body must be a JSON object")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(400, "'messages' must be a non-empty list")
    for number, message in enumerate(messages):
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            raise BadRequest(400, f"messages[{number}] must be {{'role': str, 'content': str}}")
    max_tokens = request.get("max_tokens", 256)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BadRequest(400, f"'max_tokens' must be a positive integer, got {max_tokens!r}")
    if max_tokens > max_tokens_cap:
        raise BadRequest(
            400, f"'max_tokens' {max_tokens} is above this server's cap {max_tokens_cap}"
        )
    temperature = request.get("temperature", 0.0)
    if temperature is None:
        temperature = 0.0
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise BadRequest(400, f"'temperature' must be a number, got {temperature!r}")
    if not 0 <= temperature <= 2:
        raise BadRequest(400, f"'temperature' must be between 0 and 2, got {temperature}")
    seed = request.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadRequest(400, f"'seed' must be an integer, got {seed!r}")
    return messages, max_tokens, float(temperature), seed


def make_handler(
    model: ChatModel, *, api_key: str | None = None, max_tokens_cap: int = DEFAULT_MAX_TOKENS_CAP
):
    """The request handler class bound to ``model`` (see the module docstring)."""

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

        def _refused(self, status: int, message: str) -> None:
            self.close_connection = True
            self._send(status, {"error": {"message": message, "code": status}})

        def _authorized(self) -> bool:
            if api_key is None:
                return True
            given = self.headers.get("Authorization", "")
            if hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return True
            self._refused(401, "missing or wrong API key (Authorization: Bearer KEY)")
            return False

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            if not self._authorized():
                return
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                item = {"id": model.name, "object": "model", "owned_by": "saetools"}
                self._send(200, {"object": "list", "data": [item]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802 - http.server API
            if not self._authorized():
                return
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._refused(404, f"no route {self.path}")
                return
            try:
                length = self.headers.get("Content-Length")
                if length is None or not length.isdigit():
                    raise BadRequest(411, "a Content-Length header is required")
                if int(length) > MAX_BODY_BYTES:
                    raise BadRequest(413, f"the body is over {MAX_BODY_BYTES} bytes")
                body = self.rfile.read(int(length))
                messages, max_tokens, temperature, seed = parse_chat_request(body, max_tokens_cap)
            except BadRequest as exc:
                self._refused(exc.status, f"bad request: {exc}")
                return
            try:
                text, prompt_tokens, completion_tokens, finish = model.chat(
                    messages, max_tokens, temperature, seed
                )
            except Exception as exc:  # noqa: BLE001 - one line to the client, server lives on
                self._refused(500, f"generation failed: {type(exc).__name__}")
                return
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


def serve(
    host: str = "127.0.0.1",
    port: int = 8008,
    model: str | None = None,
    *,
    api_key: str | None = None,
    max_tokens_cap: int = DEFAULT_MAX_TOKENS_CAP,
) -> None:
    """Serve ``model`` (default: the embedded SmolLM2-135M-Instruct) until interrupted."""
    chat = ChatModel(model)
    handler = make_handler(chat, api_key=api_key, max_tokens_cap=max_tokens_cap)
    server = ThreadingHTTPServer((host, port), handler)
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
