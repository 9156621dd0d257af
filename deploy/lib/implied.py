"""The Envoy configuration each manifest implies, built with envoy/bootstrap.py's functions and
shaped like what the platform's control plane generates for it (the parts that matter to
Toolgate: the wasm filter, what sits after it, the clusters it calls). deploy/check runs
``envoy --mode validate`` on each.

* Istio WasmPlugin / TrafficExtension: istio-agent fetches the module and hands Envoy a local
  file; the filter is named ``NAMESPACE.NAME``, has NO vm_id, root_id = pluginName (empty),
  the pluginConfig as a JSON StringValue, failStrategy as failure_policy, and no
  allow_on_headers_stop_iteration. EnvoyFilter patches of the same directory that insert
  HTTP filters (the buffer filter) are applied to that chain.
* Istio EnvoyFilter with the whole wasm filter: the patch value as is, before the router.
* Envoy Gateway EnvoyExtensionPolicy: the filter named ``envoy.filters.http.wasm/<vm id>``,
  ``vm_id`` = Envoy Gateway's name of the extension
  (``envoyextensionpolicy/NAMESPACE/NAME/wasm/INDEX``), code fetched from Envoy Gateway's own
  module server (``wasm_cluster``) with the module's sha256, ``fail_open`` from failOpen,
  disabled on the listener and enabled on the route by ``typed_per_filter_config``.
* Istio cluster names (``outbound|PORT||HOST``) become STRICT_DNS clusters of that name.
"""
import copy
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "envoy"))
import bootstrap  # noqa: E402

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"
ISTIO_FAIL = {"FAIL_CLOSE": "FAIL_CLOSED", "FAIL_OPEN": "FAIL_OPEN", "FAIL_RELOAD": "FAIL_RELOAD", None: "FAIL_CLOSED"}


def config_json(doc):
    return json.dumps(doc, separators=(",", ":"))


def base():
    """A bootstrap with only the router in the HTTP filter chain."""
    cfg = bootstrap.bootstrap(policy={"version": "1", "default": "deny"}, variant="plain")
    chain(cfg)[:] = [f for f in chain(cfg) if f["name"] == "envoy.filters.http.router"]
    return cfg


def chain(cfg):
    return cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]


def route(cfg):
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"][0]


def insert_before_router(cfg, flt):
    filters = chain(cfg)
    i = next(i for i, f in enumerate(filters) if f["name"] == "envoy.filters.http.router")
    filters.insert(i, flt)


def add_cluster(cfg, name, http2=False):
    """A cluster of the given name: Istio's outbound|PORT||HOST, or HOST:PORT."""
    if name.startswith("outbound|"):
        _, port, _, host = name.split("|")
    else:
        host, port = name, "80"
    for c in cfg["static_resources"]["clusters"]:
        if c["name"] == name:
            return
    c = {
        "name": name, "type": "STRICT_DNS", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": host, "port_value": int(port)}}}}]}]},
    }
    if http2:
        c["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }}
    cfg["static_resources"]["clusters"].append(c)


def ratelimit_cluster(cfg, configuration):
    """The cluster a configuration's rate_limit_service names, if any."""
    try:
        doc = json.loads(configuration)
    except ValueError:
        return
    rls = doc.get("rate_limit_service") if isinstance(doc, dict) else None
    if isinstance(rls, dict) and isinstance(rls.get("cluster"), str):
        add_cluster(cfg, rls["cluster"], http2=True)


def istio_wasm(obj, wasm_path):
    """WasmPlugin or TrafficExtension -> (filter, configuration string)."""
    spec = obj["spec"]
    w = spec.get("wasm", spec)  # TrafficExtension nests the plugin under wasm
    name = f"{obj['metadata'].get('namespace', 'default')}.{obj['metadata']['name']}"
    configuration = config_json(w.get("pluginConfig", {})) if "pluginConfig" in w else ""
    flt = {
        "name": name,
        "typed_config": {"@type": WASM_TYPE, "config": {
            "name": name,
            "root_id": w.get("pluginName", ""),
            # Istio sets no vm_id.
            "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": wasm_path}}},
            "configuration": {"@type": STRING_VALUE, "value": configuration},
            "failure_policy": ISTIO_FAIL[w.get("failStrategy")],
        }},
    }
    return flt, configuration


def envoyfilter_http_patches(obj):
    """The HTTP_FILTER patches (operation, value) of an EnvoyFilter."""
    out = []
    for p in obj["spec"].get("configPatches", []):
        if p.get("applyTo") == "HTTP_FILTER":
            out.append((p["patch"]["operation"], p["patch"].get("value")))
    return out


def apply_envoyfilter(cfg, obj):
    """Applies an EnvoyFilter's HTTP filter patches (matched on the router) to cfg."""
    filters = chain(cfg)
    for op, value in envoyfilter_http_patches(obj):
        value = copy.deepcopy(value)
        i = next(i for i, f in enumerate(filters) if f["name"] == "envoy.filters.http.router")
        if op == "INSERT_BEFORE":
            filters.insert(i, value)
        elif op == "INSERT_AFTER":
            filters.insert(i + 1, value)
        elif op == "INSERT_FIRST":
            filters.insert(0, value)
        else:
            raise ValueError(f"EnvoyFilter operation {op} is not rendered here")
        cfgw = (value.get("typed_config") or {}).get("config") or {}
        remote = cfgw.get("vm_config", {}).get("code", {}).get("remote")
        if remote:
            add_cluster(cfg, remote["http_uri"]["cluster"])
        if "configuration" in cfgw:
            ratelimit_cluster(cfg, cfgw["configuration"].get("value", ""))


def istio(obj, wasm_path, envoyfilters=()):
    cfg = base()
    flt, configuration = istio_wasm(obj, wasm_path)
    insert_before_router(cfg, flt)
    ratelimit_cluster(cfg, configuration)
    for ef in envoyfilters:
        apply_envoyfilter(cfg, ef)
    return cfg


def envoyfilter(obj):
    cfg = base()
    apply_envoyfilter(cfg, obj)
    return cfg


def envoy_gateway(obj, wasm_sha256):
    """EnvoyExtensionPolicy -> the wasm filters Envoy Gateway generates for its route."""
    cfg = base()
    ns, name = obj["metadata"].get("namespace", "default"), obj["metadata"]["name"]
    per_route = {}
    for i, w in enumerate(obj["spec"].get("wasm", [])):
        vm_id = f"envoyextensionpolicy/{ns}/{name}/wasm/{i}"
        code = w["code"]
        sha = (code.get("image") or code.get("http") or {}).get("sha256", "")
        filter_name = f"envoy.filters.http.wasm/{vm_id}"
        config = {
            "name": w.get("name", vm_id),
            "vm_config": {
                "vm_id": vm_id,
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"remote": {
                    # Envoy Gateway fetches (and for images, extracts) the module and serves
                    # it to its Envoys from its own HTTP server.
                    "http_uri": {"uri": f"https://envoy-gateway.envoy-gateway-system.svc.cluster.local:18002/{vm_id.replace('/', '-')}.wasm",
                                 "cluster": "wasm_cluster", "timeout": "10s"},
                    # For an image, Envoy Gateway checks the manifest digest, extracts the
                    # module and pins what it serves by the module's own sha256.
                    "sha256": sha if code["type"] == "HTTP" else wasm_sha256,
                }},
            },
            "configuration": {"@type": STRING_VALUE, "value": config_json(w["config"]) if "config" in w else ""},
            "fail_open": bool(w.get("failOpen", False)),
        }
        if w.get("rootID"):
            config["root_id"] = w["rootID"]
        insert_before_router(cfg, {"name": filter_name, "disabled": True,
                                   "typed_config": {"@type": WASM_TYPE, "config": config}})
        per_route[filter_name] = {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "config": {}}
        ratelimit_cluster(cfg, config["configuration"]["value"])
    add_cluster(cfg, "envoy-gateway.envoy-gateway-system.svc.cluster.local:18002".split(":")[0])
    cfg["static_resources"]["clusters"][-1]["name"] = "wasm_cluster"
    cfg["static_resources"]["clusters"][-1]["load_assignment"]["cluster_name"] = "wasm_cluster"
    cfg["static_resources"]["clusters"][-1]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = 18002
    route(cfg)["typed_per_filter_config"] = per_route
    return cfg


def wasm_configurations(cfg):
    """(filter name, configuration string, plugin config) of every wasm filter in cfg."""
    out = []
    for f in chain(cfg):
        tc = f.get("typed_config", {})
        if tc.get("@type") == WASM_TYPE:
            c = tc.get("config", {})
            out.append((f["name"], c.get("configuration", {}).get("value", ""), c))
    return out
