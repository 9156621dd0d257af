"""Fleet-wide limits: two Envoy processes, one rate limit service, one Redis."""
import json
import time

import pytest

from harness import ROOT, Envoy, RateLimitService, Recording, Redis, free_port
from raw import call, request

FLEET = json.loads((ROOT / "envoy" / "policies" / "fleet.json").read_text())


@pytest.fixture
def fleet(procs):
    redis = procs.add(Redis(procs.dir).start())
    rls = procs.add(RateLimitService(procs.dir, redis.port).start())
    rec = procs.add(Recording(procs.dir, json_response=True, stateless=True).start())
    settings = {k: v for k, v in FLEET.items() if k != "policy"}
    settings["rate_limit_service"] = dict(settings["rate_limit_service"], timeout_ms=500)
    envoys = [procs.add(Envoy(procs.dir, FLEET["policy"], rec.port, settings=settings, ratelimit_port=rls.port,
                              name=f"envoy-{i}").start()) for i in range(2)]
    return redis, rls, rec, envoys


def cas(envoy, grant):
    return request(envoy.port, body=call("cache_cas", {"key": "k", "value": "v", "cas": 1}),
                   headers=[("authorization", grant)]).json()


def denied(reply):
    return reply.get("result", {}).get("isError", False)


def test_thirty_per_minute_per_grant_across_both_envoys(fleet):
    redis, rls, rec, (a, b) = fleet
    # Keep clear of a minute boundary so all calls share one window.
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)
    replies = [cas(a if i % 2 else b, "Bearer fleet") for i in range(40)]
    assert sum(not denied(r) for r in replies) == 30
    assert len(rec.calls("cache_cas")) == 30, "exactly 30 executed across both Envoys"
    last = replies[-1]["result"]
    assert last["_meta"]["toolgate/decision"]["reason"] == "rate_limited"
    # Another grant has its own count.
    assert not denied(cas(a, "Bearer other"))


def test_redis_down_denies_and_the_log_says_why_then_restarts_continue(fleet, procs):
    redis, rls, rec, (a, b) = fleet
    assert not denied(cas(a, "Bearer r"))
    redis.stop()
    r = cas(b, "Bearer r")
    assert denied(r) and r["result"]["_meta"]["toolgate/decision"]["reason"] == "store_error"
    assert "the rate limit service did not answer" in r["result"]["content"][0]["text"]
    # Redis back on the same port; the service reconnects.
    procs.add(Redis(procs.dir, port=redis.port).start())
    deadline = time.time() + 15
    while denied(cas(a, "Bearer r2")) and time.time() < deadline:
        time.sleep(0.3)
    assert not denied(cas(a, "Bearer r2"))
    # The service restarted: counts live in Redis, limits continue.
    for _ in range(5):
        cas(b, "Bearer r3")
    rls.stop()
    procs.add(RateLimitService(procs.dir, redis.port, port=rls.port).start())
    got = [not denied(cas(a if i % 2 else b, "Bearer r3")) for i in range(30)]
    assert sum(got) == 25, "the restarted service continued from 5"
    for e in (a, b):
        e.stop()
    logs = a.output() + b.output()
    assert "toolgate: counter store failure (rate limit service:" in logs


def test_fail_open_when_configured(procs):
    rec = procs.add(Recording(procs.dir, json_response=True, stateless=True).start())
    settings = {k: v for k, v in FLEET.items() if k != "policy"}
    settings["rate_limit_service"] = dict(settings["rate_limit_service"], failure_mode="allow")
    dead = free_port()  # nothing listens there
    envoy = procs.add(Envoy(procs.dir, FLEET["policy"], rec.port, settings=settings, ratelimit_port=dead).start())
    assert not denied(cas(envoy, "Bearer open"))
    assert len(rec.calls("cache_cas")) == 1
