"""Configuration: an invalid policy keeps Envoy from starting (and from taking an update),
with the filter's path-precise message in its log; every config in the repo validates."""
import json
import subprocess

import pytest

from harness import ROOT, Envoy, venv_bin
import bootstrap

BAD = '{"version":"1","default":"deny","tools":{"cache_cas":{"limits":[{"counter":"cache_cas_rate","window":"minutes","max":30,"scope":"grant"}]}}}'


def test_invalid_configuration_is_refused_with_its_path(procs, lenient):
    envoy = procs.add(Envoy(procs.dir, {}, lenient.port, configuration=BAD))
    envoy.start(ready=False)
    envoy.proc.wait(60)
    log = envoy.output()
    assert envoy.proc.returncode != 0, "Envoy must not start with an invalid policy"
    assert 'toolgate: configuration: tools.cache_cas.limits[0].window: "minutes" is not a window; expected second, minute, hour or day' in log, log[-3000:]


def test_every_problem_gets_a_line(procs, lenient):
    bad = '{"version":"1","default":"maybe","tools":{"a":{"action":"block","limits":[{"counter":"c","window":"hour","max":0}]}}}'
    envoy = procs.add(Envoy(procs.dir, {}, lenient.port, configuration=bad))
    envoy.start(ready=False)
    envoy.proc.wait(60)
    log = envoy.output()
    for line in ['default: "maybe" is not a default; expected allow or deny',
                 'tools.a.action: "block" is not an action; expected allow, deny or require_approval',
                 "tools.a.limits[0].max: 0 is out of range; expected an integer from 1 to 1000000000000000"]:
        assert f"toolgate: configuration: {line}" in log, log[-3000:]


def committed_configs():
    return sorted((ROOT / "envoy").glob("*.yaml"))


def test_committed_configs_are_rendered_and_valid():
    configs = committed_configs()
    assert len(configs) >= 3, configs
    for path in configs:
        out = subprocess.run([venv_bin("envoy", "envoy"), "--mode", "validate", "-c", str(path)],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert out.returncode == 0 and "OK" in out.stdout + out.stderr, f"{path}: {out.stdout}{out.stderr}"


@pytest.mark.parametrize("name,args", [
    ("envoy.yaml", {}),
    ("envoy-buffer.yaml", {"variant": "buffer"}),
    ("envoy-fleet.yaml", {"policy_file": "fleet.json", "ratelimit": "127.0.0.1:8081"}),
])
def test_committed_configs_match_the_renderer(name, args):
    policy_file = args.pop("policy_file", "seed.json")
    doc = json.loads((ROOT / "envoy" / "policies" / policy_file).read_text())
    settings = None
    if "policy" in doc:
        settings = {k: v for k, v in doc.items() if k != "policy"}
        doc = doc["policy"]
    assert (ROOT / "envoy" / name).read_text() == bootstrap.render(policy=doc, settings=settings, **args), \
        f"envoy/{name} is stale: regenerate it with envoy/render-all"


TOOLGATE = ROOT / "target" / "debug" / "toolgate"
POLICIES = sorted((ROOT / "envoy" / "policies").glob("*.json"))


def split(doc):
    """(policy, settings) of a bare policy or a full configuration."""
    if "policy" in doc:
        return doc["policy"], {k: v for k, v in doc.items() if k != "policy"}
    return doc, None


def test_example_policies_pass_check_and_their_own_tests():
    assert len(POLICIES) >= 6, POLICIES
    for policy in POLICIES:
        out = subprocess.run([TOOLGATE, "check", policy], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, f"{policy.name}: {out.stdout}{out.stderr}"
    cases = sorted((ROOT / "envoy" / "policies" / "tests").glob("*.cases.json"))
    assert len(cases) >= 4, cases
    for c in cases:
        policy = ROOT / "envoy" / "policies" / c.name.replace(".cases.json", ".json")
        out = subprocess.run([TOOLGATE, "test", policy, c], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and out.stdout.rstrip().endswith(" 0 failed"), f"{c.name}: {out.stdout}{out.stderr}"


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_example_policies_load_in_envoy(procs, lenient, policy):
    doc, settings = split(json.loads(policy.read_text()))
    ratelimit = lenient.port if settings and "rate_limit_service" in settings else None
    envoy = procs.add(Envoy(procs.dir, doc, lenient.port, settings=settings, ratelimit_port=ratelimit,
                            name=policy.stem).start())
    assert envoy.alive()
    assert "toolgate: configuration:" not in envoy.output()
