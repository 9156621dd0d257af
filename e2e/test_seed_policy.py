"""The seed policy in front of the real AWS Labs memcached MCP server, driven by the
official Python SDK client through Envoy with two workers."""
import json
import time

import pytest
from mcp.shared.exceptions import MCPError

from harness import ROOT, Envoy
from raw import request
from mcp_client import run, session, text

SEED = json.loads((ROOT / "envoy" / "policies" / "seed.json").read_text())


def seed_with(**limit):
    p = json.loads(json.dumps(SEED))
    p["tools"]["cache_cas"]["limits"][0].update(limit)
    return p


@pytest.fixture
def envoy(procs, memcached_mcp):
    return procs.add(Envoy(procs.dir, SEED, memcached_mcp.port).start())


def cas_args(i):
    return {"key": f"k{i}", "value": "v", "cas": 1, "expire": 60}


def test_list_tools_passes(envoy):
    async def go():
        async with session(envoy.url, {"authorization": "Bearer agent-1"}) as s:
            return [t.name for t in (await s.list_tools()).tools]

    names = run(go())
    assert "cache_cas" in names and "cache_get" in names and "cache_delete" in names


def test_thirty_calls_execute_and_the_thirty_first_is_refused(envoy):
    async def go():
        async with session(envoy.url, {"authorization": "Bearer agent-1"}) as s:
            return [await s.call_tool("cache_cas", cas_args(i)) for i in range(31)]

    results = run(go())
    executed = results[:30]
    # The memcached server ran every one of the 30 (a CAS on a missing key says so).
    assert all("Toolgate" not in text(r) for r in executed), [text(r) for r in executed]
    last = results[30]
    assert last.is_error
    assert 'Toolgate denied tool "cache_cas": rate limit of 30 calls per minute reached' in text(last)
    meta = last.meta["toolgate/decision"]
    assert meta["reason"] == "rate_limited" and meta["rule"] == "tools.cache_cas.limits[0]"
    assert 1 <= meta["retry_after"] <= 60


def test_other_tools_are_refused_under_default_deny(envoy):
    async def go():
        async with session(envoy.url, {"authorization": "Bearer agent-2"}) as s:
            return [await s.call_tool(name, {"key": "k"}) for name in ("cache_get", "cache_delete", "cache_flush_all")]

    for r in run(go()):
        assert r.is_error
        assert "it is not allowed by policy" in text(r)
        assert r.meta["toolgate/decision"]["reason"] == "not_allowed"


def test_error_style_reaches_the_sdk_as_an_error(procs, memcached_mcp):
    envoy = procs.add(Envoy(procs.dir, SEED, memcached_mcp.port, settings={"denial_style": "error"}).start())

    async def go():
        async with session(envoy.url) as s:
            with pytest.raises(MCPError) as e:
                await s.call_tool("cache_delete", {"key": "k"})
            return e.value

    err = run(go())
    assert err.error.code == -32003
    assert 'Toolgate denied tool "cache_delete": it is not allowed by policy.' in err.error.message
    assert err.error.data["reason"] == "not_allowed"


def test_calls_execute_again_after_the_window(procs, memcached_mcp):
    envoy = procs.add(Envoy(procs.dir, seed_with(window="second", max=2), memcached_mcp.port).start())

    async def go():
        async with session(envoy.url, {"authorization": "Bearer agent-3"}) as s:
            # Start at the beginning of a second so three calls fall in one window.
            time.sleep(1 - time.time() % 1 + 0.02)
            first = [await s.call_tool("cache_cas", cas_args(i)) for i in range(3)]
            time.sleep(1 - time.time() % 1 + 0.02)
            again = await s.call_tool("cache_cas", cas_args(9))
            return first, again

    first, again = run(go())
    assert [r.is_error for r in first] == [False, False, True], [text(r) for r in first]
    assert not again.is_error, text(again)


def test_one_bearer_token_respelled_is_one_grant(procs, memcached_mcp):
    # A day's window: the test cannot straddle its boundary the way it could a minute's.
    envoy = procs.add(Envoy(procs.dir, seed_with(window="day", max=2), memcached_mcp.port).start())

    async def calls(authorization, n, headers=None):
        grant = headers if headers is not None else {"authorization": authorization}
        async with session(envoy.url, grant) as s:
            return [await s.call_tool("cache_cas", cas_args(i)) for i in range(n)]

    first = run(calls("Bearer agent-4", 2))
    assert [r.is_error for r in first] == [False, False], [text(r) for r in first]
    # Schemes are case-insensitive, and the TypeScript SDK's bearer check reads only the
    # first word after the scheme: each of these is the same credential, already at its limit.
    # Servers that also take a bare token read "agent-4" as "Bearer agent-4".
    for spelling in ("bearer agent-4", "BEARER agent-4", "Bearer agent-4 x", "Bearer  agent-4", "agent-4"):
        (r,) = run(calls(spelling, 1))
        assert r.is_error and r.meta["toolgate/decision"]["reason"] == "rate_limited", (spelling, text(r))
    # Grant headers are one namespace: the same key sent as X-Api-Key is the same grant.
    (r,) = run(calls(None, 1, {"x-api-key": "agent-4"}))
    assert r.is_error and r.meta["toolgate/decision"]["reason"] == "rate_limited", text(r)
    # Another token is another grant.
    (r,) = run(calls("Bearer agent-5", 1))
    assert not r.is_error, text(r)
    # A JWT signature's last character carries bits beyond its bytes, which atob (and so
    # JavaScript's jose) ignores: those spellings are the same grant.
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnQQ"
    assert [r.is_error for r in run(calls(f"Bearer {jwt}", 2))] == [False, False]
    (r,) = run(calls(f"Bearer {jwt[:-1]}Z", 1))
    assert r.is_error and r.meta["toolgate/decision"]["reason"] == "rate_limited", text(r)
    # Words after the scheme joined by a tab are refused: the TypeScript SDK passes
    # "agent-4\tx" whole to its verifier and atob drops the tab, so every split is a grant.
    with pytest.raises(Exception):
        run(calls("Bearer agent-4\tx", 1))
    # Two grant headers with different credentials: the server might authenticate by either.
    with pytest.raises(Exception) as refused:
        run(calls(None, 1, {"authorization": "Bearer agent-6", "x-api-key": "agent-4"}))
    assert "different credentials" in repr(refused.value) or "different credentials" in str(
        getattr(refused.value, "exceptions", "")
    ), repr(refused.value)


def test_callers_without_a_credential_are_one_grant_per_address_whatever_they_forward(procs, memcached_mcp):
    # Without a credential header the grant is the client's address: X-Forwarded-For, which
    # the client writes, must not make each request another grant.
    envoy = procs.add(Envoy(procs.dir, seed_with(window="day", max=2), memcached_mcp.port).start())

    async def calls(headers, n):
        async with session(envoy.url, headers) as s:
            return [await s.call_tool("cache_cas", cas_args(i)) for i in range(n)]

    first = run(calls({}, 2))
    assert [r.is_error for r in first] == [False, False], [text(r) for r in first]
    for forged in ("198.51.100.7", "203.0.113.9, 198.51.100.8"):
        (r,) = run(calls({"x-forwarded-for": forged}, 1))
        assert r.is_error and r.meta["toolgate/decision"]["reason"] == "rate_limited", (forged, text(r))


def test_calls_the_server_turns_away_use_no_shared_quota(procs, memcached_mcp):
    """The memcached server (behind mcp-proxy) refuses a call from a client that accepts
    neither JSON nor an event stream with 406, before running anything: such calls give
    their global counts back, so callers the server refuses cannot spend a limit every
    caller shares."""
    envoy = procs.add(Envoy(procs.dir, seed_with(max=2, scope="global"), memcached_mcp.port).start())
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "cache_cas", "arguments": cas_args(0)}})
    for _ in range(4):
        r = request(envoy.port, body=body, headers=[("authorization", "Bearer refused")], accept="text/html")
        assert r.status == 406, (r.status, r.body)

    async def go():
        async with session(envoy.url, {"authorization": "Bearer refused"}) as s:
            return [(await s.call_tool("cache_cas", cas_args(i))) for i in range(3)]

    results = run(go())
    assert [r.is_error and "rate limit" in text(r) for r in results] == [False, False, True], \
        [text(r) for r in results]


def test_calls_that_ran_keep_their_global_counts_whatever_the_status(procs):
    """The Python SDK's 2026-07-28 transport answers a handler's error with 400: a tool that
    pays and then asks for sampling (no back-channel there) runs and is answered 400. Its
    global count stays, so the limit holds: two payments, then denials."""
    from harness import Recording
    rec = procs.add(Recording(procs.dir, json_response=True, stateless=True).start())
    policy = {"version": "1", "default": "deny",
              "tools": {"pay": {"limits": [{"counter": "payments", "window": "hour", "max": 2, "scope": "global"}]}}}
    envoy = procs.add(Envoy(procs.dir, policy, rec.port).start())
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "1"}}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "pay", "arguments": {"to": "mallory", "amount": 1000}, "_meta": meta}})
    headers = [("authorization", "Bearer payer"), ("mcp-protocol-version", "2026-07-28"),
               ("mcp-method", "tools/call"), ("mcp-name", "pay")]
    statuses = [request(envoy.port, body=body, headers=headers).status for _ in range(4)]
    assert statuses == [400, 400, 200, 200], statuses
    assert len(rec.calls("pay")) == 2
