"""Malformed and hostile bodies sent raw through Envoy to the most lenient upstream: every
one is refused with the documented status and JSON-RPC code, and none reaches upstream."""
import base64
import contextlib
import json
import os
import socket
import threading

import pytest

from harness import Envoy
from raw import call, read_reply, request

POLICY = {"version": "1", "default": "allow", "hide": ["cache_delete"],
          "tools": {"cache_get": {"deny_if": [{"path": "args.key", "op": "regex", "value": "^secret"}]}}}

DENIED = call("cache_delete", {"key": "k"})

# (name, request kwargs, status, JSON-RPC code or None for a denial result)
CASES = [
    ("text/plain", dict(body=DENIED, content_type="text/plain"), 415, -32600),
    ("no content type", dict(body=DENIED, content_type=None), 415, -32600),
    ("form content type", dict(body=DENIED, content_type="application/x-www-form-urlencoded"), 415, -32600),
    ("utf-16 charset", dict(body=DENIED, content_type="application/json; charset=utf-16"), 415, -32600),
    # Envoy joins repeated headers with commas before any filter: "application/json,text/plain".
    ("repeated content type", dict(body=DENIED, headers=[("content-type", "text/plain")]), 415, -32600),
    ("gzip", dict(body=DENIED, headers=[("content-encoding", "gzip")]), 415, -32600),
    ("oversize", dict(body=b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_delete","arguments":{"pad":"' + b"x" * 1_100_000 + b'"}}}'), 413, None),
    ("invalid json", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/call",'), 400, -32700),
    ("trailing data", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/list"} ' + DENIED), 400, -32700),
    ("two documents", dict(body=DENIED + DENIED), 400, -32700),
    ("byte order mark", dict(body=b"\xef\xbb\xbf" + DENIED.encode()), 400, -32700),
    ("invalid utf-8", dict(body=b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_delete\xff"}}'), 400, -32700),
    ("lone surrogate", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_delete\\ud800"}}'), 400, -32700),
    ("deep nesting", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_delete","arguments":{"a":' + "[" * 200 + "]" * 200 + "}}}"), 400, -32700),
    ("duplicate method", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"cache_delete"}}'), 400, -32600),
    ("duplicate name", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_get","name":"cache_delete"}}'), 400, -32600),
    ("case-variant method key", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"cache_delete"}}'), 400, -32600),
    ("case-variant name key", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"cache_delete"}}'), 400, -32602),
    ("NUL-variant name key", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_get","name\\u0000":"cache_delete"}}'), 400, -32600),
    ("full-width key", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_get","ｎame":"cache_delete"}}'), 400, -32600),
    ("case-variant argument key", dict(body=call("cache_get", {"key": "ok", "KEY": "secret"})), 400, -32600),
    ("escaped name", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache\\u005fdelete"}}'), 200, None),
    ("upper-case name", dict(body=call("CACHE_DELETE")), 200, None),
    ("full-width name", dict(body=call("ｃache_delete")), 200, None),
    ("padded name", dict(body=call(" cache_delete")), 200, None),
    ("NUL in name", dict(body=call("cache_delete\u0000")), 200, None),
    ("upper-case method", dict(body='{"jsonrpc":"2.0","id":1,"method":"TOOLS/CALL","params":{"name":"cache_delete"}}'), 200, None),
    ("slashed method", dict(body='{"jsonrpc":"2.0","id":1,"method":"/tools//call/","params":{"name":"cache_delete"}}'), 200, None),
    ("padded method", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/call ","params":{"name":"cache_delete"}}'), 400, -32600),
    ("no jsonrpc", dict(body='{"id":1,"method":"tools/call","params":{"name":"cache_delete"}}'), 400, -32600),
    ("positional params", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["cache_delete",{}]}'), 400, -32602),
    ("string arguments", dict(body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_get","arguments":"{\\"key\\":\\"secret\\"}"}}'), 400, -32602),
    ("batch hiding a denied call", dict(body="[" + call("cache_get", {"key": "a"}) + "," + DENIED + "]"), 200, None),
    ("notification call", dict(body='{"jsonrpc":"2.0","method":"tools/call","params":{"name":"cache_delete"}}'), 200, -32003),
    ("deny_if argument", dict(body=call("cache_get", {"key": "secret-key"})), 200, None),
    ("numeric-string trick", dict(body=call("cache_get", {"key": "secret\\u0000"})), 200, None),
    ("chunked in 1-byte pieces", dict(chunks=[bytes([b]) for b in DENIED.encode()]), 200, None),
    ("chunked with trailers", dict(chunks=[DENIED[:20], DENIED[20:]], trailers=[("x-trailer", "1")]), 200, None),
    ("PUT", dict(body=DENIED, method="PUT"), 200, None),
    ("GET with a body", dict(body=DENIED, method="GET"), 200, None),
    ("other path", dict(body=DENIED, path="/messages?sessionId=abc"), 200, None),
    ("Mcp-Method mismatch", dict(body=call("cache_get", {"key": "a"}), headers=[("mcp-method", "tools/list")]), 400, -32020),
    ("Mcp-Name mismatch", dict(body=call("cache_get", {"key": "a"}), headers=[("mcp-method", "tools/call"), ("mcp-name", "=?base64?Y2FjaGVfZGVsZXRl?=")]), 400, -32020),
    ("empty batch", dict(body="[]"), 400, -32600),
    ("empty body", dict(body=""), 400, -32700),
]


@pytest.fixture(params=["pause", "buffer"])
def envoy(request, procs, lenient):
    return procs.add(Envoy(procs.dir, POLICY, lenient.port, variant=request.param).start())


def test_the_corpus_is_refused_and_nothing_reaches_upstream(envoy, lenient):
    failures = []
    for name, kw, status, code in CASES:
        lenient.clear()
        try:
            r = request(envoy.port, **kw)
        except Exception as e:  # noqa: BLE001
            failures.append(f"{name}: {e}")
            continue
        if r.status != status:
            failures.append(f"{name}: status {r.status}, expected {status}: {r.body[:200]!r}")
            continue
        if lenient.requests():
            failures.append(f"{name}: reached the upstream")
            continue
        if status == 413:
            continue
        body = r.json()
        replies = body if isinstance(body, list) else [body]
        if code is None:
            # A denial the model can read, as a tool result.
            if not any(x.get("result", {}).get("isError") for x in replies):
                failures.append(f"{name}: not a denial result: {body}")
        elif not any(x.get("error", {}).get("code") == code for x in replies):
            failures.append(f"{name}: expected JSON-RPC {code}: {body}")
    assert not failures, "\n".join(failures)


def test_a_body_read_from_under_the_limit_to_far_over_it_gets_the_json_rpc_413(envoy, lenient):
    # The second chunk takes the body from 1,040,000 bytes (under max_body_bytes) to over
    # 1,100,000 in one read: Toolgate must answer it, not Envoy's own buffer limit (a plain
    # text 413 with no reason the agent can read).
    body = call("cache_delete", {"p": "x" * 1_100_000}).encode()
    r = request(envoy.port, chunks=[body[:1_040_000], body[1_040_000:]], pause=0.5)
    assert r.status == 413, r.body[:200]
    assert r.json()["error"]["data"]["reason"] == "body_too_large"
    assert not lenient.requests()


def test_allowed_calls_still_reach_upstream_intact(envoy, lenient):
    body = call("cache_get", {"key": "public"})
    r = request(envoy.port, body=body, headers=[("authorization", "Bearer a")])
    assert r.status == 200 and b"executed" in r.body
    got = lenient.requests()
    assert len(got) == 1 and base64.b64decode(got[0]["body"]) == body.encode()
    # In 1-byte chunks too.
    lenient.clear()
    r = request(envoy.port, chunks=[bytes([b]) for b in body.encode()])
    assert r.status == 200 and base64.b64decode(lenient.requests()[0]["body"]) == body.encode()
    # Repeated headers reach the filter and the upstream as one joined value: both see the
    # same grant.
    lenient.clear()
    r = request(envoy.port, body=body, headers=[("authorization", "a"), ("authorization", "b")])
    assert r.status == 200
    assert [v for k, v in lenient.requests()[0]["headers"] if k.lower() == "authorization"] == ["a,b"]
    # GET, DELETE and OPTIONS without a body pass untouched.
    for m in ("GET", "DELETE", "OPTIONS"):
        lenient.clear()
        assert request(envoy.port, method=m, content_type=None).status == 200
        assert lenient.requests()[0]["method"] == m


def test_a_denied_call_of_a_2024_11_05_session_reaches_upstream_only_as_a_ping(envoy, lenient):
    """A session of the old HTTP+SSE transport (a session query as the SDKs write it) reads
    answers on its GET stream, so its denied call goes on as a `ping` carrying the denial
    (filter/README.md, "The 2024-11-05 transport"): the most lenient upstream gets nothing it
    could run and no tool name, and the POST itself is answered with the denial."""
    path = "/messages/?session_id=0f1fae4085214947b1869cf9710eb94c"
    # The headers that would mirror the call (which this transport does not define) are
    # removed, so the tool's name and arguments do not ride along with the ping.
    mirrors = [("mcp-method", "tools/call"), ("mcp-name", "cache_delete"), ("mcp-param-key", "k")]
    r = request(envoy.port, body=DENIED, path=path, accept="*/*", headers=mirrors)
    assert r.status == 200, r.body
    reply = r.json()
    assert reply["id"] == 1 and reply["result"]["isError"] is True
    assert reply["result"]["content"][0]["text"].startswith('Toolgate denied tool "cache_delete"')
    got = lenient.requests()
    assert len(got) == 1
    sent = base64.b64decode(got[0]["body"])
    message = json.loads(sent)
    assert message["method"] == "ping" and sorted(message) == ["id", "jsonrpc", "method"]
    assert b"cache_delete" not in sent and b"tools/call" not in sent and b"arguments" not in sent
    assert not [k for k, _ in got[0]["headers"] if k.lower().startswith("mcp-")], got[0]["headers"]
    # A client that accepts an event stream (Streamable HTTP) is answered locally, as is a
    # session query no SDK writes.
    for kw in (dict(path=path), dict(path="/messages?sessionId=abc", accept="*/*")):
        lenient.clear()
        r = request(envoy.port, body=DENIED, **kw)
        assert r.status == 200 and r.json()["result"]["isError"] is True
        assert not lenient.requests(), kw


def _upgrade(port, headers):
    """A WebSocket handshake as a client sends it (no body, no Content-Length), then one
    masked text frame carrying the denied call; returns the reply to the handshake."""
    key = base64.b64encode(os.urandom(16)).decode()
    hs = [("host", f"127.0.0.1:{port}"), ("connection", "Upgrade"), ("sec-websocket-key", key),
          ("sec-websocket-version", "13")] + headers
    head = "GET /mcp HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode())
        reply = read_reply(s.makefile("rb"))
        mask = os.urandom(4)
        frame = bytes([0x81, 0x80 | len(DENIED)]) + mask + bytes(
            b ^ mask[i % 4] for i, b in enumerate(DENIED.encode()))
        with contextlib.suppress(OSError):
            s.sendall(frame)
        return reply


@pytest.fixture(params=["pause", "buffer"])
def upgrading_envoy(request, procs, lenient):
    """Toolgate behind a connection manager that allows WebSocket upgrades, as Istio's do."""
    return procs.add(Envoy(procs.dir, POLICY, lenient.port, variant=request.param,
                           name=f"envoy-upgrades-{request.param}", upgrades=("websocket",)).start())


def test_a_websocket_upgrade_is_refused_and_nothing_reaches_upstream(upgrading_envoy, lenient):
    """After an upgrade, messages would travel as frames of one endless body that no HTTP
    filter can judge one by one: the handshake is refused with a reason, whatever it
    carries, and the most lenient upstream sees nothing."""
    for extra in ([("upgrade", "websocket")],
                  [("upgrade", "websocket"), ("content-type", "application/json")],
                  [("upgrade", "websocket"), ("sec-websocket-protocol", "mcp")]):
        r = _upgrade(upgrading_envoy.port, extra)
        assert r.status == 400, (extra, r.status, r.body)
        error = r.json()["error"]
        assert error["code"] == -32600 and "Upgrade and CONNECT" in error["message"], error
    assert not lenient.requests()
    # Envoy's own h2c upgrade on a cleartext POST (curl --http2) is not refused.
    r = request(upgrading_envoy.port, body=call("cache_get", {"key": "a"}),
                headers=[("connection", "Upgrade, HTTP2-Settings"), ("upgrade", "h2c"),
                         ("http2-settings", "AAMAAABkAAQCAAAAAAIAAAAA")])
    assert r.status == 200 and r.json()["result"]["content"][0]["text"] == "executed", r.body
    assert len(lenient.requests()) == 1


class EarlyAnswering:
    """An upstream that answers a request's head at once, before reading its body (a
    server flushing `200 text/event-stream` first), then records every body byte that
    reaches it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.received = bytearray()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        with contextlib.suppress(OSError):
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    data += piece
                self.received += data.split(b"\r\n\r\n", 1)[1]
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"transfer-encoding: chunked\r\n\r\n6\r\n: ok\r\n\r\n")
                with contextlib.suppress(OSError):
                    while piece := conn.recv(65536):
                        self.received += piece
                with contextlib.suppress(OSError):
                    conn.sendall(b"0\r\n\r\n")

    def close(self):
        self.sock.close()


def test_an_upstream_answering_the_head_early_never_gets_a_denied_body(procs):
    """The plain arrangement (no pause at the head, as a mesh's WasmPlugin runs it): the
    upstream has the request head while Toolgate buffers the body. An upstream that
    answers at once must not make Toolgate let the rest through unjudged."""
    upstream = EarlyAnswering()
    try:
        envoy = procs.add(Envoy(procs.dir, POLICY, upstream.port, variant="plain").start())
        body = DENIED.encode()
        with socket.create_connection(("127.0.0.1", envoy.port), timeout=10) as s:
            s.sendall(b"POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                      b"accept: application/json, text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                      + b"%x\r\n%s\r\n" % (20, body[:20]))
            head = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in head:
                    piece = s.recv(65536)
                    if not piece:
                        break
                    head += piece
            assert head.startswith(b"HTTP/1.1 200"), head
            rest = body[20:]
            with contextlib.suppress(OSError):
                s.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
                while s.recv(65536):
                    pass
        upstream.thread.join(timeout=10)
        assert b"cache_delete" not in upstream.received, bytes(upstream.received)
    finally:
        upstream.close()
