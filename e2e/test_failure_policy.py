"""Envoy's `failure_policy` for a wasm VM that traps, in real Envoy. Toolgate never traps by
design (no panics, fail closed on anything unexpected), so the trap comes from the test
probe module (host-tests/probe: header `x-probe: trap` panics in the request-headers
callback). The policies Envoy offers:

* FAIL_CLOSED (what Toolgate's configs set): that worker's VM is dead and answers 503 to
  every request until the configuration changes. Nothing passes unjudged.
* FAIL_OPEN: the failing request still gets 503, later requests skip the dead filter and
  reach the upstream unjudged: never for a policy gate.
* FAIL_RELOAD: the failing request gets 503, and so does every request until Envoy
  recreates the VM after its reload backoff (about a second by default); counters in
  shared data survive, they live outside the VM.
"""
import subprocess
import time

import pytest

from harness import ROOT, Envoy, venv_bin
from raw import request
import bootstrap

PROBE = ROOT / "target" / "wasm32-wasip1" / "release" / "host_tests_probe.wasm"


@pytest.fixture(scope="module")
def probe():
    subprocess.run(["cargo", "build", "-q", "--release", "--target", "wasm32-wasip1", "-p", "host-tests-probe"],
                   cwd=ROOT, check=True, timeout=900)
    return PROBE


def probe_envoy(procs, upstream_port, failure_policy):
    envoy = Envoy(procs.dir, {"version": "1", "default": "allow"}, upstream_port, concurrency=1)
    doc = bootstrap.bootstrap(policy={"version": "1", "default": "allow"}, listen=envoy.port, admin=envoy.admin,
                              upstream=f"127.0.0.1:{upstream_port}", wasm=str(PROBE))
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    plugin = hcm["http_filters"][0]["typed_config"]["config"]
    plugin["configuration"]["value"] = ""
    plugin["failure_policy"] = failure_policy
    envoy.config_path.write_text(bootstrap.to_yaml(doc) + "\n")
    return procs.add(envoy.start())


def get(envoy, probe_header=None):
    headers = [("x-probe", probe_header)] if probe_header else []
    return request(envoy.port, method="GET", path="/mcp", headers=headers, content_type=None)


def test_fail_closed_a_trapped_vm_answers_503_from_then_on(procs, lenient, probe):
    envoy = probe_envoy(procs, lenient.port, "FAIL_CLOSED")
    assert get(envoy).status != 503, "healthy before the trap"
    assert get(envoy, "trap").status == 503
    for _ in range(3):
        assert get(envoy).status == 503, "a dead VM lets nothing through"
    assert "probe: trap requested" in envoy.output()


def test_fail_open_lets_requests_skip_the_dead_filter(procs, lenient, probe):
    envoy = probe_envoy(procs, lenient.port, "FAIL_OPEN")
    assert get(envoy, "trap").status == 503, "the stream that trapped fails"
    before = len(lenient.requests())
    assert get(envoy, "trap").status != 503, "the dead filter is skipped: even its trap header passes"
    assert len(lenient.requests()) == before + 1, "reached the upstream unjudged"


def test_fail_reload_recreates_the_vm_after_the_failing_request(procs, lenient, probe):
    envoy = probe_envoy(procs, lenient.port, "FAIL_RELOAD")
    assert get(envoy, "trap").status == 503
    statuses = []
    deadline = time.time() + 15
    while time.time() < deadline:
        statuses.append(get(envoy).status)
        if statuses[-1] != 503:
            break
        time.sleep(0.2)
    assert statuses[-1] != 503, f"a new VM after the backoff: {statuses}"
    assert envoy.output().count("probe: vm_start") > 3, "the VM was created again"
