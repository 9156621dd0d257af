"""The Envoy configurations the load benchmark compares, rendered from envoy/bootstrap.py so
that listener, route, upstream and buffer limits are the same for all of them: only the
HTTP filters in front of the router differ.

Two policies are expressed in every way a configuration can:

* ``seed``: Toolgate's recommended policy for the memcached server (``cache_cas`` allowed and
  counted per grant per minute, every other tool denied) with a limit no run can reach, so
  every allowed call is counted and none is refused for its rate.
* ``corpus``: the policy of the shared hostile corpus (host-tests/corpus/config.json:
  ``cache_delete`` hidden, ``cache_get`` denied when its key starts with ``secret``, every
  other tool allowed), for replaying the corpus against each configuration.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))
import bootstrap  # noqa: E402

WASM = ROOT / "target" / "toolgate.wasm"  # scripts/build-module
CARGO_WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "toolgate.wasm"  # before wasm-opt
FLOOR_WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "floor.wasm"
LUA_TEMPLATE = (Path(__file__).resolve().parent / "lua" / "filter.lua").read_text()
CORPUS = ROOT / "host-tests" / "corpus"

# A per-minute limit no run reaches: every call is counted, none is refused for its rate.
UNREACHABLE = 1_000_000_000

SEED = {"version": "1", "default": "deny", "tools": {"cache_cas": {"limits": [
    {"counter": "cache_cas_rate", "window": "minute", "max": UNREACHABLE, "scope": "grant"}]}}}


def hundred_tools():
    """The seed with 99 more tools, each with its own limit (the allowed call's tool is the
    last of the 100 in the document)."""
    tools = {f"tool_{i:02}": {"limits": [{"counter": f"tool_{i:02}_rate", "window": "minute",
                                          "max": UNREACHABLE, "scope": "grant"}]} for i in range(99)}
    tools["cache_cas"] = SEED["tools"]["cache_cas"]
    return dict(SEED, tools=tools)


def corpus_config():
    return json.loads((CORPUS / "config.json").read_text())


# ---------------------------------------------------------------------------------------
# The filters of each kind.

def wasm_plugin(name, wasm, configuration):
    """A wasm HTTP filter set up as Toolgate's is (V8, paused headers, fail closed)."""
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": "",
                "vm_config": {"vm_id": name, "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": str(wasm)}}},
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": configuration},
                "failure_policy": "FAIL_CLOSED",
                "allow_on_headers_stop_iteration": True,
            },
        },
    }


def toolgate_filters(policy, settings=None):
    config = bootstrap.toolgate_configuration(policy, settings, "pause")
    return [wasm_plugin("toolgate", WASM, config)]


def floor_filters(host_calls=False, without=()):
    """The floor module; with ``host_calls``, making the host calls Toolgate makes for an
    allowed, counted call, less those named in ``without`` (see bench/floor/src/lib.rs)."""
    config = ("host-calls" + (" without " + ",".join(without) if without else "")) if host_calls else ""
    return [wasm_plugin("floor", FLOOR_WASM, config)]


# The host calls the floor module can leave out, in the order Toolgate makes them.
HOST_CALLS = {
    "headers": "read the request headers (one buffer of pairs)",
    "clock": "read the clock",
    "shared": "read the counter from shared data and write it back with its CAS token",
    "metric": "increment a counter metric",
    "property": "set the filter-state decision",
    "response": "add RateLimit-Policy and RateLimit to the response",
    "read": "of the counter's 'shared' pair, the read (left out: the write carries the token predicted from this worker's last write)",
}


def host_call_configurations():
    """The floor, the floor making every host call, and one configuration leaving out each."""
    out = {"floor module": floor_filters(), "floor + host calls": floor_filters(host_calls=True)}
    for call in HOST_CALLS:
        out[f"floor + host calls without {call}"] = floor_filters(host_calls=True, without=[call])
    return out


def lua_policy(kind):
    """The policy as the Lua filter's table (a Lua table constructor)."""
    if kind == "seed":
        return '{ default = "deny", tools = { cache_cas = { limit = %d } } }' % UNREACHABLE
    return ('{ default = "allow", tools = { cache_delete = { deny = true }, '
            'cache_get = { deny_key = "^secret" } } }')


def lua_filters(reader, kind):
    code = LUA_TEMPLATE.replace("@READER@", reader).replace("@POLICY@", lua_policy(kind))
    return [{
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": code},
        },
    }]


MCP_NS = "envoy.filters.http.mcp"


def _md(path, match):
    return {"metadata": {"filter": MCP_NS, "path": [{"key": k} for k in path], "value": match}}


def _exact(s):
    return {"string_match": {"exact": s}}


def native_filters(kind):
    """Envoy's own path: the MCP filter at its strictest settings, RBAC on the metadata it
    writes, and local_ratelimit with descriptors from it (per grant = Authorization)."""
    mcp = {
        "name": MCP_NS,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.mcp.v3.Mcp",
            "traffic_mode": "REJECT_NO_MCP",
            "reject_duplicate_keys": True,
            "max_request_body_size": 1048576,
            "request_storage_mode": "DYNAMIC_METADATA",
            "attribute_source": "VERIFY",
        },
    }
    is_call = _md(["method"], _exact("tools/call"))
    if kind == "seed":
        # Allowlist: anything that is not a call, and calls of cache_cas.
        rules = {"action": "ALLOW", "policies": {
            "not-a-call": {"permissions": [{"not_rule": is_call}], "principals": [{"any": True}]},
            "cache_cas": {"permissions": [{"and_rules": {"rules": [
                is_call, _md(["params", "name"], _exact("cache_cas"))]}}],
                "principals": [{"any": True}]},
        }}
    else:
        # Denylist: cache_delete (hidden); cache_get's arguments are not in the metadata,
        # so its argument rule cannot be expressed.
        rules = {"action": "DENY", "policies": {
            "cache_delete": {"permissions": [{"and_rules": {"rules": [
                is_call, _md(["params", "name"], _exact("cache_delete"))]}}],
                "principals": [{"any": True}]},
        }}
    rbac = {
        "name": "envoy.filters.http.rbac",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
                         "rules": rules},
    }
    percent = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    ratelimit = {
        "name": "envoy.filters.http.local_ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "mcp_ratelimit",
            # Requests no descriptor matches are not limited.
            "token_bucket": {"max_tokens": UNREACHABLE, "tokens_per_fill": UNREACHABLE,
                             "fill_interval": "60s"},
            "filter_enabled": dict(percent, runtime_key="mcp_ratelimit_enabled"),
            "filter_enforced": dict(percent, runtime_key="mcp_ratelimit_enforced"),
            "descriptors": [{
                "entries": [{"key": "tool", "value": "cache_cas"}, {"key": "grant"}],
                # A token bucket refilled every minute: the nearest to a calendar window.
                "token_bucket": {"max_tokens": UNREACHABLE if kind == "seed" else 30,
                                 "tokens_per_fill": UNREACHABLE if kind == "seed" else 30,
                                 "fill_interval": "60s"},
            }],
            "max_dynamic_descriptors": 10000,
            "rate_limits": [{"actions": [
                {"metadata": {"descriptor_key": "tool", "source": "DYNAMIC",
                              "metadata_key": {"key": MCP_NS, "path": [{"key": "params"}, {"key": "name"}]}}},
                {"request_headers": {"header_name": "authorization", "descriptor_key": "grant"}},
            ]}],
        },
    }
    return [mcp, rbac, ratelimit]


def configurations():
    """Every configuration of the load run: name -> HTTP filters before the router."""
    return {
        "no filter": [],
        "floor module": floor_filters(),
        "floor + host calls": floor_filters(host_calls=True),
        "toolgate seed": toolgate_filters(SEED),
        "toolgate shadow": toolgate_filters(SEED, {"mode": "shadow"}),
        "toolgate 100 tools": toolgate_filters(hundred_tools()),
        "lua json decoder": lua_filters("json", "seed"),
        "lua string match": lua_filters("string", "seed"),
        "envoy mcp+rbac+ratelimit": native_filters("seed"),
    }


def corpus_configurations():
    """The corpus policy in each configuration that can judge a call."""
    config = corpus_config()
    settings = {k: v for k, v in config.items() if k != "policy"}
    return {
        "toolgate": toolgate_filters(config["policy"], settings),
        "lua json decoder": lua_filters("json", "corpus"),
        "lua string match": lua_filters("string", "corpus"),
        "envoy mcp+rbac": native_filters("corpus"),
    }


def render(filters, listen, admin, upstream_port):
    """A complete bootstrap: Toolgate's listener and route with `filters` before the router."""
    doc = bootstrap.bootstrap(policy=SEED, listen=listen, admin=admin,
                              upstream=f"127.0.0.1:{upstream_port}", wasm=str(WASM), access_log=False)
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"] = list(filters) + [hcm["http_filters"][-1]]
    return bootstrap.to_yaml(doc) + "\n"
