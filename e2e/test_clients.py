"""Other clients and transports through Envoy: the MCP Inspector CLI, upstream SSE
streaming with progress, sessions and the GET event stream."""
import json
import os
import subprocess
import time

import pytest

from harness import ROOT, Envoy, Recording
from mcp_client import run, session, sse_session, text
from raw import request

POLICY = {"version": "1", "default": "deny", "hide": ["cache_delete"],
          "tools": {"echo": {}, "slow": {}, "cache_get": {}, "cache_cas": {"limits": [{"counter": "c", "window": "minute", "max": 5}]}}}
INSPECTOR = ROOT / ".cache" / "inspector" / "node_modules" / ".bin" / "mcp-inspector"
TS_CLIENT = ROOT / ".cache" / "ts-client"  # scripts/setup


@pytest.fixture
def sse_stack(procs):
    rec = procs.add(Recording(procs.dir).start())  # stateful, answers with SSE
    envoy = procs.add(Envoy(procs.dir, POLICY, rec.port).start())
    return rec, envoy


def inspector(url, *args, transport="http"):
    out = subprocess.run([str(INSPECTOR), "--cli", url, "--transport", transport, *args],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    return out.returncode, out.stdout, out.stderr


def test_inspector_lists_calls_and_sees_a_denial(sse_stack):
    rec, envoy = sse_stack
    code, out, err = inspector(envoy.url, "--method", "tools/list")
    assert code == 0, err
    names = [t["name"] for t in json.loads(out)["tools"]]
    assert "echo" in names and "cache_delete" not in names, "hidden tools vanish from the list"
    code, out, err = inspector(envoy.url, "--method", "tools/call", "--tool-name", "echo", "--tool-arg", "text=hello")
    assert code == 0, err
    assert json.loads(out)["content"][0]["text"] == "hello"
    code, out, err = inspector(envoy.url, "--method", "tools/call", "--tool-name", "cache_set", "--tool-arg", "key=k", "value=v")
    result = json.loads(out)
    assert result["isError"] is True
    assert 'Toolgate denied tool "cache_set": it is not allowed by policy.' in result["content"][0]["text"]
    assert [c["name"] for c in rec.calls()] == ["echo"]


def test_the_2024_11_05_sse_transport(procs):
    """The old HTTP+SSE transport with the SDK's own client and server: the GET stream opens,
    the server names `/messages/?session_id=...` and every call POSTed there is judged like
    any other (a session query is not JSON-RPC in the query string).

    This transport answers every request on the GET stream, not on the POST, so a denied
    call goes on to the server as a `ping` carrying the denial, and Toolgate swaps the
    ping's answer on the GET stream for that denial; list answers there lose their hidden
    tools (filter/README.md, "The 2024-11-05 transport")."""
    rec = procs.add(Recording(procs.dir, sse=True).start())
    envoy = procs.add(Envoy(procs.dir, POLICY, rec.port).start())

    async def go():
        async with sse_session(f"http://127.0.0.1:{envoy.port}/sse") as s:
            listed = await s.list_tools()
            ok = await s.call_tool("echo", {"text": "over sse"})
            denied = await s.call_tool("cache_set", {"key": "k", "value": "v"}, read_timeout_seconds=10)
            hidden = await s.call_tool("cache_delete", {"key": "k"}, read_timeout_seconds=10)
            again = await s.call_tool("echo", {"text": "still open"})
            return listed, ok, denied, hidden, again

    listed, ok, denied, hidden, again = run(go())
    names = [t.name for t in listed.tools]
    assert "echo" in names and "cache_set" in names and "cache_delete" not in names, names
    assert text(ok) == "over sse" and text(again) == "still open"
    assert denied.is_error and text(denied) == 'Toolgate denied tool "cache_set": it is not allowed by policy.'
    assert hidden.is_error and "cache_delete" in text(hidden), text(hidden)
    assert denied.meta["toolgate/decision"]["reason"] == "not_allowed"
    # Only the allowed calls ran; the denied ones reached the server as pings.
    assert [c["arguments"]["text"] for c in rec.calls()] == ["over sse", "still open"]
    # The TypeScript SDK's client of this transport (the Inspector's CLI) reads them too.
    url = f"http://127.0.0.1:{envoy.port}/sse"
    code, out, err = inspector(url, "--method", "tools/list", transport="sse")
    assert code == 0, err
    names = [t["name"] for t in json.loads(out)["tools"]]
    assert "echo" in names and "cache_delete" not in names, names
    code, out, err = inspector(url, "--method", "tools/call", "--tool-name", "cache_set",
                               "--tool-arg", "key=k", "value=v", transport="sse")
    assert code == 0, err
    result = json.loads(out)
    assert result["isError"] is True
    assert result["content"][0]["text"] == 'Toolgate denied tool "cache_set": it is not allowed by policy.'
    assert [c["arguments"]["text"] for c in rec.calls()] == ["over sse", "still open"]


def test_sse_progress_streams_through(sse_stack):
    rec, envoy = sse_stack
    seen = []

    async def progress(p, total, message):
        seen.append(time.monotonic())

    async def go():
        async with session(envoy.url, {"authorization": "Bearer a"}) as s:
            start = time.monotonic()
            r = await s.call_tool("slow", {"steps": 6}, progress_callback=progress)
            return start, time.monotonic(), r

    start, end, r = run(go())
    assert text(r) == "done after 6 steps"
    assert len(seen) == 6
    # Notifications arrive as they are sent (100 ms apart), not all at the end.
    assert seen[0] - start < (end - start) - 0.3, (seen[0] - start, end - start)


def test_sessions_and_the_get_stream(sse_stack):
    rec, envoy = sse_stack
    init = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
    r = request(envoy.port, body=init)
    assert r.status == 200
    sid = r.header("mcp-session-id")
    assert sid, r.headers
    notified = request(envoy.port, body='{"jsonrpc":"2.0","method":"notifications/initialized"}',
                       headers=[("mcp-session-id", sid), ("mcp-protocol-version", "2025-06-18")])
    assert notified.status == 202
    # The GET stream opens (headers arrive) and stays open: read its first bytes only.
    import socket
    with socket.create_connection(("127.0.0.1", envoy.port), timeout=5) as s:
        s.sendall((f"GET /mcp HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\nmcp-session-id: {sid}\r\n"
                   "mcp-protocol-version: 2025-06-18\r\n\r\n").encode())
        head = s.recv(4096).decode(errors="replace")
    assert head.startswith("HTTP/1.1 200") and "text/event-stream" in head, head
    # DELETE ends the session.
    gone = request(envoy.port, method="DELETE", content_type=None, headers=[("mcp-session-id", sid), ("mcp-protocol-version", "2025-06-18")])
    assert gone.status in (200, 204), gone


def test_rate_limit_headers_on_counted_calls(sse_stack):
    rec, envoy = sse_stack
    init = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
    sid = request(envoy.port, body=init).header("mcp-session-id")
    h = [("mcp-session-id", sid), ("mcp-protocol-version", "2025-06-18"), ("authorization", "Bearer rl")]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "cache_cas", "arguments": {"key": "k", "value": "v", "cas": 1}}})
    r = request(envoy.port, body=body, headers=h)
    assert r.status == 200
    assert r.header("ratelimit-policy") == '"c";q=5;w=60'
    assert r.header("ratelimit").startswith('"c";r=4;t=')


def test_mcp_param_headers_of_a_real_client_pass_and_forged_ones_are_refused(procs):
    """The official client mirrors an `x-mcp-header` argument in `Mcp-Param-Region`;
    Toolgate lets it through when it matches the body and refuses a forged one (-32020)
    before a server or router acting on the header could act on an unjudged value."""
    policy = {"version": "1", "default": "deny",
              "tools": {"route": {"deny_if": [{"path": "args.region", "op": "regex", "value": "^us"}]}}}
    rec = procs.add(Recording(procs.dir).start())
    envoy = procs.add(Envoy(procs.dir, policy, rec.port).start())

    async def go():
        async with session(envoy.url, {"authorization": "Bearer a"}, modern=True) as s:
            await s.list_tools()  # the client learns the x-mcp-header annotation here
            return (await s.call_tool("route", {"region": "eu-west", "payload": "p"}),
                    await s.call_tool("route", {"region": "us-east", "payload": "p"}))

    allowed, denied = run(go())
    assert text(allowed) == "routed to eu-west"
    assert denied.is_error and "route" in text(denied)
    assert [(c["name"], c["arguments"]["header"]) for c in rec.calls()] == [("route", "eu-west")], \
        "the real client sent the header, and only the allowed call ran"
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": "route", "arguments": {"region": "eu-west", "payload": "p"}}})
    for forged in ["us-east", "=?base64?dXMtZWFzdA==?="]:
        r = request(envoy.port, body=body, headers=[("authorization", "Bearer a"), ("mcp-param-region", forged)])
        assert r.status == 400, r.body
        assert r.json()["error"]["code"] == -32020 and r.json()["id"] == 7
    assert len(rec.calls()) == 1, "no forged call reached the server"


def test_a_2026_07_28_client_lists_calls_and_reads_every_denial(sse_stack):
    """The same policy through the official client's 2026-07-28 handshake (`server/discover`,
    no protocol session, `Mcp-Method`/`Mcp-Name` on every request, results tagged with
    `resultType`): the listing hides, calls run, and each denial parses as a tool result."""
    rec, envoy = sse_stack

    async def go():
        async with session(envoy.url, {"authorization": "Bearer modern"}, modern=True) as s:
            assert s.protocol_version == "2026-07-28"
            names = [t.name for t in (await s.list_tools()).tools]
            echoed = await s.call_tool("echo", {"text": "hello"})
            refused = await s.call_tool("cache_set", {"key": "k", "value": "v"})
            cas = [await s.call_tool("cache_cas", {"key": "k", "value": "v", "cas": i}) for i in range(6)]
            return names, echoed, refused, cas

    names, echoed, refused, cas = run(go())
    assert "echo" in names and "cache_delete" not in names
    assert text(echoed) == "hello"
    assert refused.is_error and 'Toolgate denied tool "cache_set": it is not allowed by policy.' in text(refused)
    assert refused.meta["toolgate/decision"]["reason"] == "not_allowed"
    assert [r.is_error for r in cas] == [False] * 5 + [True]
    assert cas[5].meta["toolgate/decision"]["reason"] == "rate_limited"
    assert [c["name"] for c in rec.calls()] == ["echo"] + ["cache_cas"] * 5


@pytest.mark.parametrize("mode,protocol", [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
def test_the_typescript_client_lists_calls_and_reads_every_denial(procs, mode, protocol):
    """The official TypeScript client (v2) in both handshakes: hidden tools vanish, allowed
    calls run, and each kind of denial parses as a tool result it can show; with 2026-07-28
    it mirrors `route`'s region in `Mcp-Param-Region`, which passes."""
    policy = {"version": "1", "default": "deny", "hide": ["cache_delete"],
              "tools": {"echo": {}, "cache_cas": {"limits": [{"counter": "c", "window": "minute", "max": 5}]},
                        "route": {"deny_if": [{"path": "args.region", "op": "regex", "value": "^us"}]}}}
    rec = procs.add(Recording(procs.dir).start())
    envoy = procs.add(Envoy(procs.dir, policy, rec.port).start())
    out = subprocess.run(["node", str(ROOT / "e2e" / "clients" / "ts_client.mjs"), envoy.url, mode],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "TS_CLIENT_DIR": str(TS_CLIENT)})
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["protocol"] == protocol
    assert "echo" in seen["tools"] and "cache_delete" not in seen["tools"]
    assert not seen["echo"]["isError"] and seen["echo"]["text"] == "hello"
    for key, reason in [("notAllowed", "not_allowed"), ("hidden", "not_allowed"), ("routeDenied", "deny_if_matched")]:
        assert seen[key]["isError"] and seen[key]["text"].startswith("Toolgate denied tool"), seen[key]
        assert seen[key]["meta"]["toolgate/decision"]["reason"] == reason
    assert seen["route"]["text"] == "routed to eu-west"
    assert [c["isError"] for c in seen["cas"]] == [False] * 5 + [True]
    assert seen["cas"][5]["meta"]["toolgate/decision"]["reason"] == "rate_limited"
    header = "eu-west" if protocol == "2026-07-28" else None
    assert [(c["name"], c["arguments"].get("header")) for c in rec.calls()] == \
        [("echo", None), ("route", header)] + [("cache_cas", None)] * 5


def test_a_2026_07_28_multi_round_call_is_judged_and_counted_each_round(procs):
    """A call the server answers with `input_required` comes back with `requestState`:
    Toolgate passes both rounds, judges the second like the first (a call the policy
    denies cannot be completed by a retry), and counts each round as a call."""
    policy = {"version": "1", "default": "deny",
              "tools": {"confirm": {"deny_if": [{"path": "args.key", "op": "regex", "value": "^secret"}],
                                    "limits": [{"counter": "confirm", "window": "minute", "max": 3}]}}}
    rec = procs.add(Recording(procs.dir).start())
    envoy = procs.add(Envoy(procs.dir, policy, rec.port).start())

    async def go():
        async with session(envoy.url, {"authorization": "Bearer rounds"}, modern=True) as s:
            async def rounds(key):
                first = await s.call_tool("confirm", {"key": key}, allow_input_required=True, allow_claimed=False)
                if getattr(first, "result_type", None) != "input_required":
                    return first, None
                return first, await s.call_tool("confirm", {"key": key}, request_state=first.request_state,
                                                 allow_input_required=True, allow_claimed=False)
            return await rounds("a"), await rounds("secret-b"), await rounds("c")

    (a1, a2), (b1, b2), (c1, c2) = run(go())
    assert a1.result_type == "input_required" and a1.request_state  # sealed by the SDK
    assert text(a2) == "confirmed a"
    assert b2 is None and b1.is_error and b1.meta["toolgate/decision"]["reason"] == "deny_if_matched"
    # a's two rounds took 2 of 3; c's first round the third; its retry is over the limit.
    assert c1.result_type == "input_required"
    assert c2.is_error and c2.meta["toolgate/decision"]["reason"] == "rate_limited"
    assert [c["arguments"]["key"] for c in rec.calls("confirm")] == ["a"]
