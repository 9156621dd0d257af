"""What the stress runs read off a running Envoy: memory (the process' resident set and
tcmalloc's view from the admin /memory endpoint) and the number of stats."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness import http_get  # noqa: E402


def envoy_figures(envoy):
    """Memory and stats of one Envoy, as plain numbers."""
    memory = json.loads(http_get(f"http://127.0.0.1:{envoy.admin}/memory"))
    stats = envoy.stats()
    status = Path(f"/proc/{envoy.proc.pid}/status").read_text()
    rss_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    return {
        "rss_kib": rss_kib,
        "allocated": int(memory["allocated"]),
        "heap_size": int(memory["heap_size"]),
        "stats": len(stats),
        "toolgate_stats": sum(1 for k in stats if "toolgate" in k),
    }


def toolgate_counters(envoy):
    """The module's own counters, summed over tools: calls by decision, store errors."""
    stats = envoy.stats()
    out = {"allowed": 0, "denied": 0, "rate_limited": 0, "store_errors": 0}
    for k, v in stats.items():
        if "toolgate" not in k:
            continue
        if k.endswith(".decision.allowed"):
            out["allowed"] += v
        elif k.endswith(".decision.denied"):
            out["denied"] += v
        elif ".rate_limited." in k:
            out["rate_limited"] += v
        elif k.endswith("toolgate.store_errors"):
            out["store_errors"] += v
    return out


def mib(n):
    return f"{n / 1048576:.1f} MiB"
