"""Short versions of the stress runs in e2e/stress/ (the full ones are documented there and
their figures recorded in SECURITY.md): memory under attack and a soak, through real Envoy
with 2 workers."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "stress"))
import attack  # noqa: E402
import soak  # noqa: E402

MIB = 1024 * 1024


def test_new_grants_sessions_and_tool_names_leave_memory_and_stats_bounded(tmp_path):
    r = attack.run(grants=20_000, names=10_000, logdir=tmp_path)
    print(attack.table(r))
    first, *rest = r["phases"]
    assert r["envoy_alive"]
    for p in rest:
        assert p["answered"] > 0 and p["not_ok"] == 0, p
        # Nothing the attacker sends becomes a stat, a key or an allocation that stays.
        assert p["stats"] == first["stats"] and p["toolgate_stats"] == first["toolgate_stats"], p
        assert p["allocated"] - first["allocated"] < 4 * MIB, p
        assert p["rss_kib"] - first["rss_kib"] < 16 * 1024, p
    assert r["counters"]["store_errors"] == 0


def test_soak_exact_counts_no_errors_flat_memory(tmp_path):
    # Long enough to cross at least one calendar minute, so windows reset mid-run.
    r = soak.run(seconds=70, rate=150, threads=6, warmup=15, logdir=tmp_path, sample_every=10)
    print(soak.summary(r))
    assert r["envoy_alive"]
    assert r["problems"] == []
    assert r["full_windows"] >= soak.GRANTS, "every grant used up at least one window"
    assert not any(k.endswith(":503") or k.endswith(":500") for k in r["kinds"])
    alloc = [s["allocated"] for s in r["samples"]]
    rss = [s["rss_kib"] for s in r["samples"]]
    assert max(alloc) - min(alloc) < 2 * MIB, alloc
    assert max(rss) - min(rss) < 8 * 1024, rss
    assert r["counters"]["store_errors"] == 0
