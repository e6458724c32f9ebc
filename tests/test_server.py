"""`saetools serve` facing malformed or unauthorised requests, and the API key never stored."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import ThreadingHTTPServer

import pytest

SECRET = "sk-test-5f1d8c0e-never-written"


@pytest.fixture(scope="module")
def guarded_server():
    """The real server (embedded SmolLM2) in a thread, with an API key and a max_tokens cap."""
    from saetools.llm.server import ChatModel, make_handler

    handler = make_handler(ChatModel(), api_key=SECRET, max_tokens_cap=32)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def _post(port, body: bytes, headers: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
    reply = conn.getresponse()
    status, data = reply.status, json.loads(reply.read() or b"{}")
    conn.close()
    return status, data


AUTH = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
GOOD = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}


@pytest.mark.parametrize(
    "body, headers, status, fragment",
    [
        (GOOD, {}, 401, "API key"),
        (GOOD, {"Authorization": "Bearer wrong"}, 401, "API key"),
        (b"{not json", AUTH, 400, "not JSON"),
        ([1, 2], AUTH, 400, "JSON object"),
        ({"messages": []}, AUTH, 400, "non-empty list"),
        ({"messages": [{"role": "user"}]}, AUTH, 400, "messages[0]"),
        ({**GOOD, "max_tokens": 100000}, AUTH, 400, "cap 32"),
        ({**GOOD, "max_tokens": 0}, AUTH, 400, "positive integer"),
        ({**GOOD, "temperature": 7}, AUTH, 400, "between 0 and 2"),
        ({**GOOD, "seed": "x"}, AUTH, 400, "'seed'"),
    ],
)
def test_bad_requests_get_a_one_line_4xx(guarded_server, body, headers, status, fragment):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    got, data = _post(guarded_server, raw, headers)
    message = data["error"]["message"]
    assert got == status and fragment in message and "\n" not in message


def test_an_oversized_body_is_refused_unread(guarded_server):
    conn = http.client.HTTPConnection("127.0.0.1", guarded_server, timeout=30)
    conn.putrequest("POST", "/v1/chat/completions")
    for key, value in AUTH.items():
        conn.putheader(key, value)
    conn.putheader("Content-Length", str(50 << 20))  # 50 MiB announced, none sent
    conn.endheaders()
    reply = conn.getresponse()
    assert reply.status == 413 and "over" in json.loads(reply.read())["error"]["message"]
    conn.close()


def test_a_good_request_is_answered_and_the_key_is_never_written(
    guarded_server, tmp_path, monkeypatch
):
    from saetools.llm import LLMClient

    monkeypatch.setenv("SAETOOLS_HOME", str(tmp_path / "home"))
    status, data = _post(guarded_server, json.dumps(GOOD).encode(), AUTH)
    assert status == 200 and data["usage"]["completion_tokens"] <= 4
    client = LLMClient(f"http://127.0.0.1:{guarded_server}/v1", api_key=SECRET)
    results = client.map([{"messages": GOOD["messages"], "max_tokens": 4}])
    assert results[0].error is None and results[0].value
    assert SECRET not in repr(client.describe()) and SECRET not in client.usage.summary()
    written = [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
    assert written  # the reply cache was written ...
    assert not [p for p in written if SECRET.encode() in p.read_bytes()]  # ... without the key
