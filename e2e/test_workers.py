"""Counters live in shared data: both Envoy workers count against one limit, exactly."""
from concurrent.futures import ThreadPoolExecutor

from harness import Envoy, Recording
from raw import call, request

POLICY = {"version": "1", "default": "deny",
          "tools": {"cache_cas": {"limits": [{"counter": "cas", "window": "hour", "max": 30, "scope": "grant"}]}}}


def test_two_workers_share_one_count(procs):
    rec = procs.add(Recording(procs.dir, json_response=True, stateless=True).start())
    envoy = procs.add(Envoy(procs.dir, POLICY, rec.port, concurrency=2).start())
    body = call("cache_cas", {"key": "k", "value": "v", "cas": 1, "expire": 60})

    def one(_):
        return request(envoy.port, body=body, headers=[("authorization", "Bearer fleet-of-agents")]).json()

    # 120 calls over many concurrent connections: the kernel spreads them over both workers.
    with ThreadPoolExecutor(max_workers=24) as pool:
        replies = list(pool.map(one, range(120)))
    denied = [r for r in replies if r.get("result", {}).get("isError")]
    assert len(denied) == 90, f"{len(denied)} denied"
    assert len(rec.calls("cache_cas")) == 30, "exactly max executed upstream"
    stats = envoy.stats()
    per_worker = [v for k, v in stats.items() if ".worker_" in k and k.endswith("downstream_cx_total")]
    assert len(per_worker) == 2 and all(v > 0 for v in per_worker), per_worker
