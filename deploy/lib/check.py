"""deploy/check: every deployment manifest validated as far as this machine allows.

For each object: custom resources against their CRD's openAPIV3Schema (deploy/crds, or
TOOLGATE_CRDS), core objects with kubernetes-validate (strict), Toolgate's own deployment
rules (fail closed, digests pinned to the build, the pause flag only where it can be set).
For each manifest that puts Toolgate into an Envoy: the Envoy configuration it implies
(deploy/lib/implied.py) passes ``envoy --mode validate`` and its plugin configuration passes
``toolgate check``. The OCI layouts pass ``skopeo inspect`` and ``skopeo copy`` and hold the
module. Every manifest in deploy/check-corpus/ must be rejected, for the reason its
``# expect:`` line gives. One line per object; exit status 1 on any failure.
"""
import glob
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import crd  # noqa: E402
import implied  # noqa: E402

DEPLOY = os.path.dirname(HERE)
ROOT = os.path.dirname(DEPLOY)
WASM = os.path.join(ROOT, "target/toolgate.wasm")  # scripts/build-module
ENVOY = os.environ.get("ENVOY", os.path.join(ROOT, ".venv/envoy/bin/envoy"))
TOOLGATE = os.path.join(ROOT, "target/debug/toolgate")
# Vendored copies (deploy/crds/README.md names their sources); TOOLGATE_CRDS points elsewhere.
CRD_DIR = os.environ.get("TOOLGATE_CRDS", os.path.join(DEPLOY, "crds"))
K8S_VERSION = "1.35"
MODULE_IN_POD = "/etc/toolgate/module/plugin.wasm"

RESULTS = {"ok": 0, "failed": 0}


def line(ok, what, detail=""):
    RESULTS["ok" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


# ---- the OCI layouts --------------------------------------------------------------------

def blob(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


def check_oci(d):
    wasm_sha = d["wasm_sha256"]
    out = os.path.join(DEPLOY, "oci", "out")
    for variant, layout_name in (("oci", "toolgate"), ("compat", "toolgate-compat")):
        layout = os.path.join(out, layout_name)
        ref = f"oci:{os.path.relpath(layout, ROOT)}:{d['tag']}"
        errors = []
        r = run(["skopeo", "inspect", "--raw", ref], cwd=ROOT)
        if r.returncode != 0:
            line(False, f"OCI {ref}", "skopeo inspect: " + r.stderr.strip())
            continue
        raw = r.stdout.encode()
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if digest != d[variant]:
            errors.append(f"manifest digest {digest} is not the one built ({d[variant]})")
        m = json.loads(raw)
        layers = m.get("layers", [])
        if variant == "oci":
            if m["config"]["mediaType"] != "application/vnd.module.wasm.config.v1+json":
                errors.append(f"config media type {m['config']['mediaType']}")
            if len(layers) != 1 or layers[0]["mediaType"] != "application/vnd.module.wasm.content.layer.v1+wasm":
                errors.append("not a single application/vnd.module.wasm.content.layer.v1+wasm layer")
            elif layers[0]["digest"] != "sha256:" + wasm_sha:
                errors.append(f"layer {layers[0]['digest']} is not the module (sha256:{wasm_sha})")
        else:
            if len(layers) != 1 or layers[0]["mediaType"] != "application/vnd.oci.image.layer.v1.tar+gzip":
                errors.append("not a single tar+gzip layer")
            else:
                with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(layout, layers[0]["digest"])))) as tar:
                    data = tar.extractfile("plugin.wasm").read()
                if hashlib.sha256(data).hexdigest() != wasm_sha:
                    errors.append("plugin.wasm in the layer is not the module")
        with tempfile.TemporaryDirectory() as tmp:
            r = run(["skopeo", "copy", "--quiet", ref, f"dir:{tmp}/copy"], cwd=ROOT)
            if r.returncode != 0:
                errors.append("skopeo copy: " + r.stderr.strip())
        line(not errors, f"OCI {ref}", "; ".join(errors) or
             f"skopeo inspect+copy, manifest {digest}, {len(layers)} layer, module sha256:{wasm_sha[:16]}...")


# ---- objects ----------------------------------------------------------------------------

def load(path):
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def lint(obj, d):
    """Toolgate's deployment rules: what the schemas allow but a policy gate must not do."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    image_sha = d["compat"].split(":", 1)[1]
    errors = []

    def pinned(where, sha, want, what):
        if not sha:
            errors.append(f"{where}: not pinned (set it to the {what} {want})")
        elif sha != want:
            errors.append(f"{where}: {sha} does not match the build's {what} {want} (run deploy/oci/build and deploy/render)")

    def no_pause(where, cfg):
        if isinstance(cfg, dict) and cfg.get("pause_on_request_headers") is True:
            errors.append(f"{where}.pause_on_request_headers: true needs allow_on_headers_stop_iteration, which this API "
                          "cannot set; drop it and add the buffer filter (istio/envoyfilter-buffer.yaml), or use the pause EnvoyFilter")

    if kind in ("WasmPlugin", "TrafficExtension"):
        w = spec.get("wasm", spec) if kind == "TrafficExtension" else spec
        prefix = "spec.wasm" if kind == "TrafficExtension" else "spec"
        if "url" in w:
            if w.get("failStrategy") != "FAIL_CLOSE":
                errors.append(f"{prefix}.failStrategy: {w.get('failStrategy')!r}, must be FAIL_CLOSE: a policy gate must never pass requests unjudged")
            oci = str(w["url"]).startswith("oci://")
            pinned(f"{prefix}.sha256", w.get("sha256"), image_sha if oci else d["wasm_sha256"],
                   "image manifest digest" if oci else "module sha256")
            no_pause(f"{prefix}.pluginConfig", w.get("pluginConfig"))
            if "pluginConfig" not in w:
                errors.append(f"{prefix}.pluginConfig: missing (the module needs a policy)")
        if spec.get("phase") != "AUTHZ":
            errors.append(f"spec.phase: {spec.get('phase')!r}, must be AUTHZ (after authentication and RBAC)")
        if not (spec.get("selector") or spec.get("targetRefs") or spec.get("targetRef")):
            errors.append("spec: no selector or targetRefs: it would apply to every workload of the namespace")
    elif kind == "EnvoyExtensionPolicy":
        for i, w in enumerate(spec.get("wasm") or []):
            where = f"spec.wasm[{i}]"
            if w.get("failOpen") is not False:
                errors.append(f"{where}.failOpen: {w.get('failOpen')!r}, must be false (set explicitly): a policy gate must never pass requests unjudged")
            code = w.get("code") or {}
            if code.get("type") == "Image" and isinstance(code.get("image"), dict):
                pinned(f"{where}.code.image.sha256", code["image"].get("sha256"), image_sha, "image manifest digest")
            elif code.get("type") == "HTTP" and isinstance(code.get("http"), dict):
                pinned(f"{where}.code.http.sha256", code["http"].get("sha256"), d["wasm_sha256"], "module sha256")
            no_pause(f"{where}.config", w.get("config"))
            if "config" not in w:
                errors.append(f"{where}.config: missing (the module needs a policy)")
    elif kind in ("Deployment", "StatefulSet", "DaemonSet"):
        pod = ((spec.get("template") or {}).get("spec")) or {}
        for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            image = str(c.get("image", ""))
            tag = image.rsplit("/", 1)[-1]
            if "@" not in image and (":" not in tag or tag.endswith(":latest")):
                errors.append(f"container {c.get('name')}: image {image!r} is not pinned to a version")
    return errors


def lint_filter(name, config, d):
    """Rules for a wasm filter as Envoy sees it."""
    errors = []
    if config.get("failure_policy") == "FAIL_OPEN" or config.get("fail_open") is True:
        errors.append(f"{name}: fails open: a policy gate must never pass requests unjudged")
    try:
        doc = json.loads(config.get("configuration", {}).get("value", "") or "null")
    except ValueError:
        doc = None
    pause = isinstance(doc, dict) and doc.get("pause_on_request_headers") is True
    flag = config.get("allow_on_headers_stop_iteration") is True
    if pause != flag:
        errors.append(f"{name}: allow_on_headers_stop_iteration is {flag} but pause_on_request_headers is {pause}: "
                      "they go together (the flag alone pauses nothing; the setting alone is ignored by Envoy)")
    remote = config.get("vm_config", {}).get("code", {}).get("remote")
    if remote and remote.get("http_uri", {}).get("cluster") != "wasm_cluster":
        if remote.get("sha256") != d["wasm_sha256"]:
            errors.append(f"{name}: code.remote.sha256 {remote.get('sha256')!r} does not match the module's {d['wasm_sha256']}")
    return errors


def envoy_validate(cfg, label):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cfg, f)
    try:
        r = run([ENVOY, "--mode", "validate", "-c", f.name, "--log-level", "error"])
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        err = [x for x in (r.stderr + r.stdout).splitlines() if x.strip()]
        msg = err[-1] if err else f"exit {r.returncode}"
        msg = msg.split("error initializing configuration", 1)[-1].split("': ", 1)[-1]
        return [f"envoy --mode validate ({label}): " + " ".join(msg.split())]
    return []


def policy_check(configuration, label):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(configuration)
    try:
        r = run([TOOLGATE, "check", f.name])
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        probs = [x.split(": ", 1)[1] if ": " in x else x for x in r.stdout.splitlines() if not x.endswith("problem") and not x.endswith("problems")]
        return [f"toolgate check ({label}): " + "; ".join(probs or [r.stderr.strip()])], None
    return [], r.stdout.strip().split(": ", 1)[-1]


def implied_configs(obj, peers, d):
    """(label, Envoy bootstrap) for each Envoy configuration the object implies."""
    kind = obj.get("kind")
    if kind in ("WasmPlugin", "TrafficExtension"):
        out = [("as generated", implied.istio(obj, WASM))]
        bufs = [p for p in peers if p.get("kind") == "EnvoyFilter" and not any(
            (v or {}).get("name") == "envoy.filters.http.wasm" for _, v in implied.envoyfilter_http_patches(p))]
        for b in bufs:
            out.append((f"+ EnvoyFilter {b['metadata']['name']}", implied.istio(obj, WASM, [b])))
        return out
    if kind == "EnvoyFilter":
        if any((v or {}).get("name") == "envoy.filters.http.wasm" for _, v in implied.envoyfilter_http_patches(obj)):
            return [("wasm filter patch", implied.envoyfilter(obj))]
        return []  # a buffer patch: rendered with the WasmPlugin it goes with
    if kind == "EnvoyExtensionPolicy":
        return [("as generated", implied.envoy_gateway(obj, d['wasm_sha256']))]
    if kind == "ConfigMap" and "envoy.yaml" in (obj.get("data") or {}):
        text = obj["data"]["envoy.yaml"].replace(MODULE_IN_POD, WASM)
        return [("envoy.yaml", yaml.safe_load(text))]
    return []


def describe(cfg):
    filters = implied.chain(cfg)
    parts = []
    for f in filters:
        c = (f.get("typed_config") or {}).get("config")
        if c is not None and f.get("typed_config", {}).get("@type") == implied.WASM_TYPE:
            vm = c.get("vm_config", {}).get("vm_id")
            parts.append("wasm(" + ("no vm_id" if vm is None else f"vm_id={vm}") +
                         (", pause" if c.get("allow_on_headers_stop_iteration") else "") + ")")
        else:
            parts.append(f["name"].rsplit(".", 1)[-1])
    return " > ".join(parts)


def check_object(obj, peers, crds, d):
    """(object errors, [(implied label, errors, description)])."""
    errors = []
    api, kind = obj.get("apiVersion"), obj.get("kind")
    if crds.has(api, kind):
        errs, n_cel, n_skip = crds.validate(obj)
        errors += [f"CRD schema: {e}" for e in errs]
        how = f"CRD schema ({n_cel} CEL rules{', ' + str(n_skip) + ' skipped' if n_skip else ''})"
    else:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            how = f"kubernetes-validate {K8S_VERSION} strict"
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"no schema for {api} {kind}: neither a CRD in {CRD_DIR} nor a core object")
            how = "no schema"
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path) or "(root)"
            errors.append(f"kubernetes-validate: {path}: {e.message}")
            how = "kubernetes-validate"
    errors += lint(obj, d)
    envoys = []
    if True:  # the Envoy side is checked even when the object has errors
        try:
            configs = implied_configs(obj, peers, d)
        except (KeyError, TypeError, ValueError, StopIteration) as e:
            errors.append(f"cannot render the implied Envoy configuration: {e!r}")
            configs = []
        for label, cfg in configs:
            errs = envoy_validate(cfg, label)
            notes = []
            for fname, configuration, pc in implied.wasm_configurations(cfg):
                errs += lint_filter(fname, pc, d)
                perr, summary = policy_check(configuration, fname)
                errs += perr
                if summary:
                    notes.append(summary)
            envoys.append((label, errs, describe(cfg) + ("; policy " + ", ".join(notes) if notes else "")))
    return errors, how, envoys


def name_of(obj):
    m = obj.get("metadata") or {}
    return f"{obj.get('kind')} {m.get('namespace') + '/' if m.get('namespace') else ''}{m.get('name')}"


def check_files(files, crds, d, expect_reject=False):
    for path in files:
        rel = os.path.relpath(path, DEPLOY)
        try:
            docs = load(path)
        except yaml.YAMLError as e:
            line(expect_reject and False, f"{rel}", f"not YAML: {e}")
            continue
        peer_dir = [p for f in sorted(glob.glob(os.path.join(os.path.dirname(path), "*.yaml"))) if f != path for p in load(f)]
        if expect_reject:
            with open(path) as f:
                expects = [x.split(":", 1)[1].strip() for x in f if x.startswith("# expect:")]
            all_errors = []
            for obj in docs:
                errors, _, envoys = check_object(obj, docs, crds, d)
                all_errors += errors + [e for _, errs, _ in envoys for e in errs]
            missing = [x for x in expects if not any(x in e for e in all_errors)]
            if not expects:
                line(False, f"{rel}", "corpus file without an '# expect:' line")
            elif missing:
                line(False, f"{rel}", f"not rejected for {missing}; errors were: {all_errors or 'none'}")
            else:
                hit = next(e for e in all_errors if expects[0] in e)
                line(True, f"{rel} rejected", hit)
            continue
        for obj in docs:
            errors, how, envoys = check_object(obj, docs + peer_dir, crds, d)
            line(not errors, f"{rel} {name_of(obj)}", "; ".join(errors) or how)
            for label, errs, desc in envoys:
                line(not errs, f"{rel} {name_of(obj)} -> Envoy ({label})", "; ".join(errs) or f"envoy --mode validate ok: {desc}")


def main():
    start = time.time()
    d_path = os.path.join(DEPLOY, "oci", "out", "digests.json")
    with open(d_path) as f:
        d = json.load(f)
    crds = crd.CRDs(sorted(glob.glob(os.path.join(CRD_DIR, "*.yaml"))))
    print(f"deploy/check: module sha256 {d['wasm_sha256']}, compat image {d['compat']}, "
          f"{len(crds.schemas)} CRD versions from {os.path.relpath(CRD_DIR, ROOT)}")

    check_oci(d)

    committed = os.path.join(DEPLOY, "kubernetes", "toolgate-envoy.yaml")
    fresh = os.path.join(DEPLOY, "rendered", "kubernetes", "toolgate-envoy.yaml")
    with open(committed) as a, open(fresh) as b:
        same = a.read() == b.read()
    line(same, "kubernetes/toolgate-envoy.yaml is up to date",
         "" if same else "stale: run deploy/render --write-kubernetes")

    rendered = os.path.join(DEPLOY, "rendered")
    files = sorted(glob.glob(os.path.join(DEPLOY, "kubernetes", "*.yaml")))
    files += sorted(glob.glob(os.path.join(rendered, "istio", "*.yaml")))
    files += sorted(glob.glob(os.path.join(rendered, "envoy-gateway", "*.yaml")))
    check_files(files, crds, d)

    print("-- the broken manifests of deploy/check-corpus/ must be rejected")
    check_files(sorted(glob.glob(os.path.join(rendered, "check-corpus", "*.yaml"))), crds, d, expect_reject=True)

    print(f"deploy: {RESULTS['ok']} passed, {RESULTS['failed']} failed in {time.time() - start:.1f}s")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
