"""What a fleet-wide decision costs: the same allowed, counted `cache_cas` call through Envoy
(1 worker, in front of a static upstream) with no limit, with a local limit (shared data),
and with a fleet-wide limit (`"store": "service"`: a gRPC round trip to toolgate-ratelimit,
counted in Redis), measured interleaved over several rounds with wrk; medians reported with
ratios to the local limit. One connection, so a latency is one request's own. One grant under a limit it never reaches: every call is counted and reaches the upstream
(checked per answer).

    cargo build --release -p toolgate-ratelimit
    .venv/sdk/bin/python e2e/stress/fleet_latency.py --rounds 3 --seconds 10
"""
import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from harness import ROOT, Envoy, RateLimitService, Redis, StaticUpstream  # noqa: E402

# Counted, never exhausted: one grant, a limit it cannot reach.
LIMIT = {"counter": "cache_cas_rate", "window": "minute", "max": 1_000_000_000, "scope": "grant"}
CONFIGS = {
    "no limit": ({"version": "1", "default": "deny", "tools": {"cache_cas": {}}}, None),
    "local limit": ({"version": "1", "default": "deny", "tools": {"cache_cas": {"limits": [LIMIT]}}}, None),
    "fleet-wide limit": ({"version": "1", "default": "deny", "tools": {"cache_cas": {"limits": [dict(LIMIT, store="service")]}}},
                         {"hash_salt": "bench", "rate_limit_service": {"cluster": "ratelimit", "timeout_ms": 1000}}),
}


class ReleaseRateLimitService(RateLimitService):
    """The service as deployed: the release build when there is one."""

    def __init__(self, logdir, redis_port):
        super().__init__(logdir, redis_port)
        release = ROOT / "target" / "release" / "toolgate-ratelimit"
        if release.exists():
            self.argv[0] = str(release)


def unit(v):
    m = re.match(r"([\d.]+)(us|ms|s)$", v)
    n, u = float(m.group(1)), m.group(2)
    return n * {"us": 1, "ms": 1000, "s": 1_000_000}[u]


def wrk(url, seconds, connections=1):
    # One connection: each request's latency is its own, not time queued behind others.
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency",
                          "-s", str(HERE / "counted.lua"), url],
                         check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    result = json.loads(re.search(r"RESULT (\{.*\})", out).group(1))
    return {"rps": rps, "p50_us": unit(lat["50"]), "p99_us": unit(lat["99"]), "not_ok": result["not_ok"]}


def run(rounds, seconds, logdir):
    procs = []
    try:
        upstream = StaticUpstream(logdir, concurrency=1).start()
        procs.append(upstream)
        redis = Redis(logdir).start()
        procs.append(redis)
        rls = ReleaseRateLimitService(logdir, redis.port).start()
        procs.append(rls)
        envoys = {}
        for name, (policy, settings) in CONFIGS.items():
            envoys[name] = Envoy(logdir, policy, upstream.port, settings=settings, concurrency=1,
                                 ratelimit_port=rls.port, name=name.replace(" ", "-"), access_log=False).start()
            procs.append(envoys[name])
        for name, envoy in envoys.items():  # warm-up: connections, VMs, Redis script
            wrk(envoy.url, 1)
        samples = {name: [] for name in CONFIGS}
        for r in range(rounds):
            for name, envoy in envoys.items():
                samples[name].append(wrk(envoy.url, seconds))
        return {name: {k: statistics.median(s[k] for s in runs) for k in ("rps", "p50_us", "p99_us")}
                | {"not_ok": sum(s["not_ok"] for s in runs), "rounds": len(runs)}
                for name, runs in samples.items()}
    finally:
        for p in reversed(procs):
            p.stop()


def table(result):
    base = result["local limit"]
    rows = ["| configuration | requests/s | p50 | p99 | p50 vs local limit | not from upstream |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, r in result.items():
        rows.append(f"| {name} | {r['rps']:,.0f} | {r['p50_us']:.0f} µs | {r['p99_us']:.0f} µs | "
                    f"{r['p50_us'] / base['p50_us']:.2f}× (+{r['p50_us'] - base['p50_us']:.0f} µs) | {r['not_ok']} |")
    return "\n".join(rows)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="toolgate-fleet-") as d:
        result = run(args.rounds, args.seconds, d)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
