#!/usr/bin/env python3
"""Renders Toolgate's Envoy bootstrap.

Two arrangements keep a denied call from ever opening an upstream request:

* ``pause`` (default): the plugin sets ``allow_on_headers_stop_iteration: true`` and the
  Toolgate configuration sets ``pause_on_request_headers: true``, so the request headers
  are held until the body has been judged.
* ``buffer``: ``envoy.filters.http.buffer`` after the wasm filter holds the whole request
  until every filter before it let it go (for platforms that cannot set the flag, such as
  Istio's WasmPlugin). Toolgate then lets the headers continue and pauses in the body.

Usage: ``python3 envoy/bootstrap.py [--variant pause|buffer] [--policy FILE] [--settings JSON]
[--listen PORT] [--admin PORT] [--upstream HOST:PORT] [--wasm PATH] [--ratelimit HOST:PORT]
[--host-rewrite] > envoy.yaml``.
"""
import argparse
import json
import sys

# Turn the filter's counters into Prometheus labels. Custom wasm metrics are named
# ``wasmcustom.<name>`` during tag extraction; tool names may contain dots.
STATS_TAGS = [
    {"tag_name": "tool",
     "regex": r"^wasmcustom\.toolgate\.(?:tool_calls|denials)(\.tool\.(.+?))\.(?:decision|reason)\."},
    {"tag_name": "decision",
     "regex": r"^wasmcustom\.toolgate\.(?:tool_calls|resource_reads|prompt_gets)(?:\.tool\..+?)?(\.decision\.([a-z_]+))$"},
    {"tag_name": "reason",
     "regex": r"^wasmcustom\.toolgate\.(?:denials(?:\.tool\..+?)?|rejected)(\.reason\.([a-z_]+))$"},
    {"tag_name": "counter",
     "regex": r"^wasmcustom\.toolgate\.rate_limited(\.counter\.(.+))$"},
]

ACCESS_LOG_FORMAT = (
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(:PATH)%\" %RESPONSE_CODE% %RESPONSE_CODE_DETAILS% "
    "toolgate=%FILTER_STATE(wasm.toolgate.decision:PLAIN)% upstream=%UPSTREAM_HOST% "
    "request_id=%REQ(X-REQUEST-ID)% duration_ms=%DURATION%\n"
)


def wasm_filter(configuration, wasm, variant, vm_id="toolgate"):
    plugin = {
        "name": "toolgate",
        "root_id": "",
        "vm_config": {
            "vm_id": vm_id,
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": wasm}},
        },
        "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": configuration,
        },
        # A VM that fails (a trap) answers 503 to every request until the configuration
        # changes: nothing passes unjudged.
        "failure_policy": "FAIL_CLOSED",
    }
    if variant == "pause":
        plugin["allow_on_headers_stop_iteration"] = True
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": plugin,
        },
    }


def toolgate_configuration(policy, settings, variant):
    """The plugin configuration: the policy, plus settings when any are needed."""
    settings = dict(settings or {})
    if variant == "pause":
        settings["pause_on_request_headers"] = True
    if not settings:
        return json.dumps(policy, separators=(",", ":"))
    doc = dict(settings)
    doc["policy"] = policy
    return json.dumps(doc, separators=(",", ":"))


def bootstrap(policy, settings=None, variant="pause", listen=10000, admin=9901,
              upstream="127.0.0.1:8001", wasm="target/toolgate.wasm",
              ratelimit=None, host_rewrite=False, listen_address="127.0.0.1",
              max_body=1048576, access_log=True, upgrades=()):
    """`upgrades`: protocols the connection manager lets clients upgrade to (as Istio's
    sidecars allow `websocket`); none by default."""
    host, port = upstream.rsplit(":", 1)
    route = {"cluster": "mcp_upstream", "timeout": "0s", "idle_timeout": "0s"}
    if host_rewrite:
        route["host_rewrite_literal"] = upstream
    filters = [wasm_filter(toolgate_configuration(policy, settings, variant), wasm, variant)]
    if variant == "buffer":
        filters.append({
            "name": "envoy.filters.http.buffer",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                # The headroom the connection's buffer has (below): one read can carry a
                # body from under Toolgate's limit to over this one, and then Envoy, not
                # Toolgate, answers (413 in plain text, no JSON-RPC error).
                "max_request_bytes": max_body + 65536,
            },
        })
    filters.append({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    })
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "mcp",
        "codec_type": "AUTO",
        # MCP keeps GET event streams open for as long as a session lives.
        "stream_idle_timeout": "0s",
        "request_timeout": "0s",
        "generate_request_id": True,
        # The client's address is the connection's, not the last X-Forwarded-For entry the
        # client wrote: it is a grant source (requests without a credential header), and a
        # forged header would be a fresh grant per request. Behind a load balancer, set
        # xff_num_trusted_hops to the hops it adds instead.
        "use_remote_address": True,
        "access_log": [] if not access_log else [{
            "name": "envoy.access_loggers.stdout",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
            },
        }],
        "route_config": {
            "name": "mcp",
            "virtual_hosts": [{
                "name": "mcp",
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": route}],
            }],
        },
        "http_filters": filters,
    }
    if upgrades:
        hcm["upgrade_configs"] = [{"upgrade_type": u} for u in upgrades]
    clusters = [{
        "name": "mcp_upstream",
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": "mcp_upstream",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": host, "port_value": int(port)}}}}]}],
        },
    }]
    if ratelimit:
        rhost, rport = ratelimit.rsplit(":", 1)
        clusters.append({
            "name": "ratelimit",
            "type": "STATIC",
            "connect_timeout": "1s",
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}},
                },
            },
            "load_assignment": {
                "cluster_name": "ratelimit",
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                    "socket_address": {"address": rhost, "port_value": int(rport)}}}}]}],
            },
        })
    return {
        "stats_config": {"stats_tags": STATS_TAGS},
        "static_resources": {
            "listeners": [{
                "name": "mcp",
                "address": {"socket_address": {"address": listen_address, "port_value": listen}},
                "per_connection_buffer_limit_bytes": max_body + 65536,
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm,
                }]}],
            }],
            "clusters": clusters,
        },
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
    }


def static_upstream(listen, admin, body):
    """A fast stand-in MCP server: an Envoy answering every request with `body` (JSON), for
    load runs where the upstream must never be the bottleneck."""
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "static",
        "route_config": {"virtual_hosts": [{"name": "static", "domains": ["*"], "routes": [{
            "match": {"prefix": "/"},
            "direct_response": {"status": 200, "body": {"inline_string": body}},
            "response_headers_to_add": [{"header": {"key": "content-type", "value": "application/json"}}],
        }]}]},
        "http_filters": [{
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }],
    }
    return {
        "static_resources": {"listeners": [{
            "name": "static",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}],
        }]},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
    }


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(v)  # a JSON string is a valid YAML double-quoted string


def to_yaml(v, indent=0):
    pad = "  " * indent
    out = []
    if isinstance(v, dict):
        for k, x in v.items():
            key = json.dumps(k) if k.startswith("@") else k
            if isinstance(x, (dict, list)) and x:
                out.append(f"{pad}{key}:")
                out.append(to_yaml(x, indent + 1))
            else:
                out.append(f"{pad}{key}: {_scalar(x) if not isinstance(x, (dict, list)) else ('{}' if isinstance(x, dict) else '[]')}")
    elif isinstance(v, list):
        for x in v:
            if isinstance(x, (dict, list)) and x:
                inner = to_yaml(x, indent + 1).lstrip()
                out.append(f"{pad}- {inner}")
            else:
                out.append(f"{pad}- {_scalar(x)}")
    return "\n".join(out)


def render(**kw):
    header = ("# Rendered by envoy/bootstrap.py: edit that, not this file.\n"
              "# Run from the repository root (the module path is relative to it).\n")
    return header + to_yaml(bootstrap(**kw)) + "\n"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", choices=["pause", "buffer"], default="pause")
    p.add_argument("--policy", default="envoy/policies/seed.json")
    p.add_argument("--settings", default=None, help="Toolgate settings as a JSON object")
    p.add_argument("--listen", type=int, default=10000)
    p.add_argument("--admin", type=int, default=9901)
    p.add_argument("--upstream", default="127.0.0.1:8001")
    p.add_argument("--wasm", default="target/toolgate.wasm")
    p.add_argument("--ratelimit", default=None)
    p.add_argument("--host-rewrite", action="store_true")
    a = p.parse_args(argv)
    with open(a.policy) as f:
        doc = json.load(f)
    settings = json.loads(a.settings) if a.settings else None
    if "policy" in doc:  # a full configuration: its settings come along
        settings = {**{k: v for k, v in doc.items() if k != "policy"}, **(settings or {})}
        doc = doc["policy"]
    sys.stdout.write(render(policy=doc, settings=settings, variant=a.variant, listen=a.listen,
                            admin=a.admin, upstream=a.upstream, wasm=a.wasm,
                            ratelimit=a.ratelimit, host_rewrite=a.host_rewrite))


if __name__ == "__main__":
    main(sys.argv[1:])
