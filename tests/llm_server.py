"""A real OpenAI-compatible server for the LLM tests, and a fault-injecting proxy in front of it.

The server is ``saetools serve`` (SmolLM2-135M-Instruct, the embedded model) in a subprocess on
a free port of 127.0.0.1. The proxy forwards every request to it, except the ones it is told to
break: answer 500, hang past the client's timeout, or replace the reply's text with garbage.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from saetools.llm.server import free_port, start_server  # noqa: F401 (re-exported for tests)


class FaultProxy:
    """HTTP proxy to ``upstream`` that breaks the next requests as told.

    ``plan`` is a list consumed one request at a time: ``"500"`` (answer HTTP 500), ``"hang"``
    (sleep ``hang_s`` then answer 500), ``"garbage"`` (forward, then replace the reply's text),
    ``"pass"``; when the plan is empty, every request passes. ``seen`` counts requests.
    """

    def __init__(self, upstream: str, hang_s: float = 3.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan: list[str] = []
        self.seen = 0
        self.hang_s = hang_s
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy.lock:
                    proxy.seen += 1
                    action = proxy.plan.pop(0) if proxy.plan else "pass"
                if action == "hang":
                    time.sleep(proxy.hang_s)
                    action = "500"
                if action == "500":
                    self._reply(500, b'{"error": {"message": "injected failure"}}')
                    return
                path = self.path.removeprefix("/v1")
                request = urllib.request.Request(
                    proxy.upstream + path,
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=120) as upstream:
                    data = upstream.read()
                if action == "garbage":
                    reply = json.loads(data)
                    reply["choices"][0]["message"]["content"] = "§§ ## not what was asked ## §§"
                    data = json.dumps(reply).encode()
                self._reply(200, data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/v1"

    def close(self) -> None:
        """Stop the proxy."""
        self.server.shutdown()
        self.server.server_close()
