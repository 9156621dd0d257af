"""Hidden tools vanish from what the agent sees (JSON and SSE responses), calling them is
denied as calling a tool the policy does not allow would be (operators see "hidden" in the
metrics), and resources and prompts follow their own rules."""
import asyncio
import json

import pytest
from mcp.client.subscriptions import listen
from mcp.shared.exceptions import MCPError
from mcp_types import PromptReference, ResourceTemplateReference

from harness import Envoy, Recording, TsResources, prometheus_value
from mcp_client import run, session, text
from raw import request

HIDE = {"version": "1", "default": "allow", "hide": ["cache_delete"]}


def listed_and_denied(url, modern=False):
    async def go():
        async with session(url, {"authorization": "Bearer lists"}, modern=modern) as s:
            names = [t.name for t in (await s.list_tools()).tools]
            r = await s.call_tool("cache_delete", {"key": "k"})
            return names, r

    return run(go())


def test_memcached_server_list_hides_cache_delete(procs, memcached_mcp):
    envoy = procs.add(Envoy(procs.dir, HIDE, memcached_mcp.port).start())
    names, r = listed_and_denied(envoy.url)
    assert "cache_delete" not in names and "cache_cas" in names and "cache_get" in names
    assert r.is_error and text(r) == 'Toolgate denied tool "cache_delete": it is not allowed by policy.', text(r)
    assert prometheus_value(envoy.prometheus(), "toolgate_denials", reason="hidden") == 1


@pytest.mark.parametrize("modern", [False, True], ids=["2025", "2026"])
@pytest.mark.parametrize("json_response", [True, False], ids=["json", "sse"])
def test_recording_server_list_hides_cache_delete(procs, json_response, modern):
    rec = procs.add(Recording(procs.dir, json_response=json_response).start())
    envoy = procs.add(Envoy(procs.dir, HIDE, rec.port).start())
    names, r = listed_and_denied(envoy.url, modern)
    assert "cache_delete" not in names and {"cache_get", "cache_cas", "echo", "slow"} <= set(names)
    assert r.is_error and r.meta["toolgate/decision"] == {"reason": "not_allowed", "rule": "default"}
    assert prometheus_value(envoy.prometheus(), "toolgate_denials", reason="hidden") == 1
    assert rec.calls("cache_delete") == [], "the hidden tool never ran"


@pytest.mark.parametrize("json_response, fits, over, limit",
                         [(True, 1200, 2000, 3 << 20), (False, 300, 900, 1 << 20)], ids=["json", "sse"])
def test_large_answers_pass_while_anything_is_hidden(procs, json_response, fits, over, limit):
    """While anything is hidden every answer is read before it goes on. A JSON answer larger
    than the connection's buffer limit (1 MiB here, as Envoy's default) still arrives whole,
    and one larger than `max_response_bytes` (an event, in a stream) is withheld with an error
    answering the call's id, which the client reads as the call's error, not as a cut
    connection or a wait for its timeout. (The answer's JSON holds the text twice; the SDK
    client takes events up to 1 MiB.)"""
    rec = procs.add(Recording(procs.dir, json_response=json_response).start())
    envoy = procs.add(Envoy(procs.dir, HIDE, rec.port, settings={"max_response_bytes": limit}).start())

    async def go(kb):
        async with session(envoy.url, {"authorization": "Bearer big"}) as s:
            try:
                r = await asyncio.wait_for(s.call_tool("big", {"kb": kb}), 20)
                return len(text(r))
            except MCPError as e:
                return e.error.data["reason"]

    assert run(go(fits)) == fits * 1024
    assert run(go(over)) == "list_unfilterable"
    assert [c["arguments"]["kb"] for c in rec.calls("big")] == [fits, over]
    assert prometheus_value(envoy.prometheus(), "toolgate_list_unfilterable") == 1
    envoy.stop()
    assert "toolgate: a response was withheld: " in envoy.output()


def test_hide_denied_tools_setting(procs):
    rec = procs.add(Recording(procs.dir, json_response=True).start())
    policy = {"version": "1", "default": "deny", "tools": {"echo": {}, "cache_get": {}, "spend": {"action": "require_approval"}}}
    envoy = procs.add(Envoy(procs.dir, policy, rec.port, settings={"hide_denied_tools": True}).start())
    names, _ = listed_and_denied(envoy.url)
    assert sorted(names) == ["cache_get", "echo"], "only tools the agent may call are listed"


POLICY = {"version": "1", "default": "allow",
          "resources": {"hide": ["file:///secret/*"], "rules": {"file:///srv/*": {"limits": [{"counter": "reads", "window": "minute", "max": 2}]}}},
          "prompts": {"default": "deny", "hide": ["admin_*"], "rules": {"summarize": {}}}}


@pytest.mark.parametrize("modern", [False, True], ids=["2025", "2026"])
@pytest.mark.parametrize("json_response", [True, False], ids=["json", "sse"])
def test_resources_and_prompts(procs, json_response, modern):
    rec = procs.add(Recording(procs.dir, json_response=json_response).start())
    envoy = procs.add(Envoy(procs.dir, POLICY, rec.port).start())

    async def go():
        async with session(envoy.url, {"authorization": "Bearer res"}, modern=modern) as s:
            resources = [str(r.uri) for r in (await s.list_resources()).resources]
            prompts = [p.name for p in (await s.list_prompts()).prompts]
            ok = await s.read_resource("file:///srv/readme.md")
            errors = {}
            for uri in ["file:///secret/key.pem", "file:///srv/../secret/key.pem", "file:///srv/readme.md"]:
                try:
                    await s.read_resource(uri)
                    errors[uri] = None
                except MCPError as e:
                    errors[uri] = e.error.data["reason"]
            got = await s.get_prompt("summarize", {"text": "x"})
            try:
                await s.get_prompt("admin_reset", {})
                admin = None
            except MCPError as e:
                admin = e.error.data["reason"]
            return resources, prompts, ok, errors, got, admin

    resources, prompts, ok, errors, got, admin = run(go())
    assert resources == ["file:///srv/readme.md"], resources
    assert prompts == ["summarize"], prompts
    assert ok.contents[0].text == "read me"
    # Hidden ones are refused as names the policy does not allow.
    assert errors == {"file:///secret/key.pem": "not_allowed", "file:///srv/../secret/key.pem": "not_allowed", "file:///srv/readme.md": None}
    assert "Summarize: x" in got.messages[0].content.text
    assert admin == "not_allowed"
    # The third read went over the limit of 2 on file:///srv/*.
    r = request(envoy.port, body=json.dumps({"jsonrpc": "2.0", "id": 9, "method": "resources/read", "params": {"uri": "file:///srv/readme.md"}}),
                headers=[("authorization", "Bearer res"), ("mcp-protocol-version", "2025-06-18")])
    assert r.json()["error"]["data"]["reason"] == "rate_limited"
    assert [c["name"] for c in rec.calls() if c["kind"] == "resource"] == ["file:///srv/readme.md", "file:///srv/readme.md"]


@pytest.mark.parametrize("modern", [False, True], ids=["2025", "2026"])
def test_hidden_templates_are_neither_listed_nor_completed(procs, modern):
    """The SDK server lists every template and completes any template's arguments, so
    without Toolgate a hidden template is listed and its completions name its secret files;
    through Toolgate it vanishes from the list, its completions are refused as names the
    policy does not allow, and the server completes only what the agent may use."""
    rec = procs.add(Recording(procs.dir, json_response=True).start())
    envoy = procs.add(Envoy(procs.dir, POLICY, rec.port).start())

    async def go(url):
        async with session(url, {"authorization": "Bearer res"}, modern=modern) as s:
            out = {"templates": sorted(t.uri_template for t in (await s.list_resource_templates()).resource_templates)}
            for ref, arg in [(ResourceTemplateReference(uri="file:///secret/{name}"), "name"),
                             (ResourceTemplateReference(uri="file:///srv/{name}"), "name"),
                             (PromptReference(name="admin_reset"), "x"),
                             (PromptReference(name="summarize"), "text")]:
                key = getattr(ref, "uri", None) or ref.name
                try:
                    out[key] = (await s.complete(ref, {"name": arg, "value": "k"})).completion.values
                except MCPError as e:
                    out[key] = e.error.data["reason"]
            return out

    direct = run(go(f"http://127.0.0.1:{rec.port}/mcp"))
    assert direct["file:///secret/{name}"] == ["key.pem", "db-password.txt"], direct
    assert direct["templates"] == ["file:///secret/{name}", "file:///srv/{name}", "file://docs/{+path}", "notes://{name}{?v}"], direct
    before = len(rec.calls())
    got = run(go(envoy.url))
    assert got == {"templates": ["file:///srv/{name}", "file://docs/{+path}", "notes://{name}{?v}"],
                   "file:///secret/{name}": "not_allowed", "file:///srv/{name}": ["k1", "k2"],
                   "admin_reset": "not_allowed", "summarize": ["k1", "k2"]}, got
    assert [c["name"] for c in rec.calls()[before:]] == ["file:///srv/{name}", "summarize"]
    envoy.stop()
    log = envoy.output()
    assert "toolgate=denied:hidden:file:///secret/{name}" in log and "toolgate=denied:hidden:admin_reset" in log


def test_a_2026_07_28_listen_cannot_subscribe_to_a_hidden_resource(procs):
    """2026-07-28 subscribes to resource updates with `subscriptions/listen`. The SDK server
    honours a subscription to any URI, so without Toolgate the agent would be told whenever a
    hidden file changes; through Toolgate a listen naming a hidden URI is refused as reading
    it would be, and one naming only allowed URIs is honoured."""
    rec = procs.add(Recording(procs.dir, json_response=True).start())
    envoy = procs.add(Envoy(procs.dir, POLICY, rec.port).start())

    async def go(url, uris):
        async with session(url, {"authorization": "Bearer res"}, modern=True) as s:
            try:
                async with listen(s, resource_subscriptions=uris) as sub:
                    return sorted(sub.honored.resource_subscriptions or [])
            except MCPError as e:
                return e.error.data["reason"]

    hidden = ["file:///srv/readme.md", "file:///secret/key.pem"]
    assert run(go(rec.url, hidden)) == sorted(hidden), "the server alone honours it"
    assert run(go(envoy.url, hidden)) == "not_allowed"
    assert run(go(envoy.url, ["file:///srv/readme.md"])) == ["file:///srv/readme.md"]
    envoy.stop()
    assert "toolgate=denied:hidden:file:///secret/key.pem" in envoy.output()


def test_resource_spellings_a_real_server_reads_as_the_denied_one(procs):
    """The Python SDK matches `notes://{name}{?v}` whatever query or fragment follows the
    name: each such spelling of a denied note is denied, and the server reads none."""
    rec = procs.add(Recording(procs.dir, json_response=True).start())
    policy = {"version": "1", "default": "allow",
              "resources": {"rules": {"notes://secret": {"action": "deny"}}}}
    envoy = procs.add(Envoy(procs.dir, policy, rec.port).start())

    async def go():
        async with session(envoy.url, {"authorization": "Bearer notes"}) as s:
            out = {}
            for uri in ["notes://secret", "notes://secret?v=1", "notes://secret#x",
                        "notes://secret?", "NOTES://%73ecret", "notes://public?v=2"]:
                try:
                    await s.read_resource(uri)
                    out[uri] = None
                except MCPError as e:
                    out[uri] = e.error.data["reason"]
            return out

    got = run(go())
    assert got == {"notes://secret": "tool_denied", "notes://secret?v=1": "tool_denied",
                   "notes://secret#x": "tool_denied", "notes://secret?": "tool_denied",
                   "NOTES://%73ecret": "tool_denied", "notes://public?v=2": None}, got
    read = [c["name"] for c in rec.calls() if c["kind"] == "resource"]
    assert read == ["notes://public"], read

    # Without Toolgate, the server reads the secret under those spellings.
    async def direct():
        async with session(rec.url, {}) as s:
            for uri in ["notes://secret?v=1", "notes://secret#x"]:
                await s.read_resource(uri)

    run(direct())
    read = [c["name"] for c in rec.calls() if c["kind"] == "resource"]
    assert read == ["notes://public", "notes://secret", "notes://secret"], read


def test_resource_spellings_the_typescript_sdk_reads_as_the_denied_one(procs):
    """The TypeScript SDK looks resources up by `new URL(uri).toString()`: each spelling the
    URL parser rewrites to a denied or hidden resource is denied, and the server reads none."""
    ts = procs.add(TsResources(procs.dir).start())
    policy = {"version": "1", "default": "allow",
              "resources": {"hide": ["https://internal.example/*"],
                            "rules": {"file:///srv/secret.txt": {"action": "deny"},
                                      "notes://secret": {"action": "deny"}}}}
    envoy = procs.add(Envoy(procs.dir, policy, ts.port).start())
    spellings = {
        "file://localhost/srv/secret.txt": "tool_denied",
        "file:/srv/secret.txt": "tool_denied",
        "file:srv/secret.txt": "tool_denied",
        "notes://secret:": "tool_denied",
        # Hidden: refused as names the policy does not allow.
        "https://internal.example:443/secret": "not_allowed",
        "https:internal.example/secret": "not_allowed",
        "https:/internal.example/secret": "not_allowed",
        "https://@internal.example/secret": "not_allowed",
        "https://internal.example:/secret": "not_allowed",
        # Hosts URL parsers map from Unicode (a soft hyphen dropped, a full-width letter
        # folded) are refused rather than followed.
        "https://int\u00adernal.example/secret": "invalid_name",
        "https://\uff49nternal.example/secret": "invalid_name",
    }

    def read(port, uri):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri}})
        return request(port, body).json()

    got = {uri: read(envoy.port, uri).get("error", {}).get("data", {}).get("reason") for uri in spellings}
    assert got == spellings
    assert "result" in read(envoy.port, "file:///srv/readme.txt")
    assert ts.reads() == ["file:///srv/readme.txt"], "no denied resource was read"
    # Without Toolgate, each spelling reads the protected resource.
    for uri in spellings:
        assert "result" in read(ts.port, uri), uri
    assert set(ts.reads()[1:]) == {"file:///srv/secret.txt", "notes://secret", "https://internal.example/secret"}
