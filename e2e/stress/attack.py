"""Memory under attack, through real Envoy (2 workers) with the module in front of a static
upstream: GRANTS requests each with a new grant and a new session, then NAMES calls each to
a new unknown tool name. Reads Envoy's memory and number of stats after a warm-up and after
each phase; prints them (and writes them as JSON with --json). Bounded means: no new stats,
memory flat, no request failed.

    .venv/sdk/bin/python e2e/stress/attack.py --grants 1000000 --names 100000
"""
import argparse
import itertools
import json
import signal
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from harness import Envoy, StaticUpstream  # noqa: E402
from measure import envoy_figures, mib, toolgate_counters  # noqa: E402

# The seed policy, with a session-scoped limit too, so both scopes meet new values.
POLICY = {"version": "1", "default": "deny", "tools": {"cache_cas": {"limits": [
    {"counter": "cache_cas_rate", "window": "minute", "max": 30, "scope": "grant"},
    {"counter": "cache_cas_session", "window": "minute", "max": 30, "scope": "session"}]}}}


RUNS = itertools.count()


def wrk(url, mode, count, threads=2, connections=32, seconds=5):
    """Sends at least `count` requests of `mode` with wrk, in runs of `seconds`; returns
    (answered, not_ok)."""
    answered = not_ok = 0
    while answered < count:
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
             "-s", str(HERE / "unique.lua"), url, "--", mode, str(next(RUNS))],
            check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
        m = re.search(r"RESULT (\{.*\})", out)
        if not m:
            raise RuntimeError(f"wrk printed no result:\n{out}")
        r = json.loads(m.group(1))
        if r["answered"] == 0:
            raise RuntimeError(f"wrk got no answers:\n{out}")
        answered += r["answered"]
        not_ok += r["not_ok"]
    return answered, not_ok


def run(grants, names, logdir):
    procs = []
    try:
        upstream = StaticUpstream(logdir, concurrency=2).start()
        procs.append(upstream)
        envoy = Envoy(logdir, POLICY, upstream.port, access_log=False).start()
        procs.append(envoy)
        # Warm-up: every path (allowed, rate limited, unknown tool) taken at least once.
        warm = max(grants // 50, 2000)
        wrk(envoy.url, "grants", warm)
        wrk(envoy.url, "names", warm)
        phases = [("after warm-up", envoy_figures(envoy), 0, 0)]
        answered, not_ok = wrk(envoy.url, "grants", grants)
        phases.append((f"after {answered:,} new grants and sessions", envoy_figures(envoy), answered, not_ok))
        answered, not_ok = wrk(envoy.url, "names", names)
        phases.append((f"after {answered:,} unknown tool names", envoy_figures(envoy), answered, not_ok))
        return {"phases": [{"phase": p, **f, "answered": a, "not_ok": n} for p, f, a, n in phases],
                "counters": toolgate_counters(envoy), "envoy_alive": envoy.alive()}
    finally:
        for p in reversed(procs):
            p.stop()


def table(result):
    rows = ["| phase | requests | not 200 | Envoy RSS | allocated | heap | stats | toolgate stats |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for p in result["phases"]:
        rows.append(f"| {p['phase']} | {p['answered']:,} | {p['not_ok']} | {p['rss_kib'] / 1024:.1f} MiB | "
                    f"{mib(p['allocated'])} | {mib(p['heap_size'])} | {p['stats']} | {p['toolgate_stats']} |")
    c = result["counters"]
    rows.append(f"\nmodule counters: allowed {c['allowed']:,}, denied {c['denied']:,}, "
                f"rate limited {c['rate_limited']:,}, store errors {c['store_errors']}")
    return "\n".join(rows)


def main():
    # A terminated run still stops the Envoys it started (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grants", type=int, default=1_000_000)
    ap.add_argument("--names", type=int, default=100_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="toolgate-attack-") as d:
        result = run(args.grants, args.names, d)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
