"""Operators' view: Prometheus metrics with labels, and the decision in the access log."""
import re

from harness import Envoy, Recording, prometheus_value as value
from raw import call, request

POLICY = {"version": "1", "default": "deny",
          "tools": {"cache_cas": {"limits": [{"counter": "cache_cas_rate", "window": "hour", "max": 2}]}, "echo": {}}}


def test_metrics_and_access_log(procs):
    rec = procs.add(Recording(procs.dir, json_response=True, stateless=True).start())
    envoy = procs.add(Envoy(procs.dir, POLICY, rec.port).start())
    h = [("authorization", "Bearer ops")]
    for _ in range(3):
        request(envoy.port, body=call("cache_cas", {"key": "k", "value": "v", "cas": 1}), headers=h)
    request(envoy.port, body=call("echo", {"text": "x"}), headers=h)
    request(envoy.port, body=call("cache_delete", {"key": "k"}), headers=h)
    request(envoy.port, body="{", headers=h)
    request(envoy.port, body=call("echo"), content_type="text/plain")
    prom = envoy.prometheus()
    assert value(prom, "toolgate_tool_calls", tool="cache_cas", decision="allowed") == 2
    assert value(prom, "toolgate_tool_calls", tool="cache_cas", decision="denied") == 1
    assert value(prom, "toolgate_tool_calls", tool="echo", decision="allowed") == 1
    assert value(prom, "toolgate_tool_calls", tool="_other", decision="denied") == 1
    assert value(prom, "toolgate_denials", tool="cache_cas", reason="rate_limited") == 1
    assert value(prom, "toolgate_denials", tool="_other", reason="not_allowed") == 1
    assert value(prom, "toolgate_rate_limited", counter="cache_cas_rate") == 1
    assert value(prom, "toolgate_rejected", reason="parse_error") == 1
    assert value(prom, "toolgate_rejected", reason="unsupported_media_type") == 1
    # Only policy names and "_other" ever become labels.
    tools = set(re.findall(r'tool="([^"]+)"', prom))
    assert tools <= {"cache_cas", "echo", "_other"}, tools
    # The access log names each decision (Envoy flushes it on shutdown).
    envoy.stop()
    log = envoy.output()
    for decision in ["toolgate=allowed", "toolgate=denied:rate_limited:cache_cas", "toolgate=denied:not_allowed:cache_delete",
                     "toolgate=rejected:parse_error", "toolgate=rejected:unsupported_media_type"]:
        assert decision in log, decision
    # One log line per denial, with grant fingerprint and request id, never credentials.
    denials = [l for l in log.splitlines() if "toolgate: denied" in l]
    assert len(denials) == 2
    assert all(re.search(r"grant=[0-9a-f]{16} request_id=[0-9a-f-]{36}", l) for l in denials), denials
    assert "Bearer ops" not in log
