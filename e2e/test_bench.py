"""The load benchmark (bench/) runs end to end, briefly: every configuration starts, every
answer of every workload is what that configuration should give (from the upstream, or
refused), and the hostile corpus replay finds what it should: nothing through Toolgate, the
string-matching Lua filter's escape bypass. The figures themselves come from `bench/run`."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import bench  # noqa: E402


def test_the_benchmark_runs_and_every_answer_is_checked(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--rounds", "1", "--seconds", "1",
                    "--out", str(tmp_path)], check=True, timeout=900)
    result = json.loads((tmp_path / "latest.json").read_text())
    assert (tmp_path / "latest.md").read_text().startswith("# Toolgate load benchmark")
    load = result["load"]
    assert set(load) == set(bench.WORKLOADS)
    for workload, per in load.items():
        expect = bench.WORKLOADS[workload][1]
        assert set(per) == set(bench.configs.configurations()), per.keys()
        for name, cell in per.items():
            assert cell["requests"] > 0, (workload, name)
            if name in bench.NOT_ENFORCING or expect == "upstream":
                assert cell["upstream"] == cell["requests"], (workload, name, cell)
            else:
                assert cell["upstream"] == 0, (workload, name, cell)
            assert cell["cpu_us"] > 0, (workload, name, cell)

    corpus = result["corpus"]
    assert corpus["toolgate"]["reached_upstream"] == []
    # The bypass classes a hand-written filter falls to, shown beside its speed.
    assert "name-escaped" in corpus["lua string match"]["reached_upstream"]
    assert "method-escaped" in corpus["lua string match"]["reached_upstream"]
    assert "name-upper-case" in corpus["envoy mcp+rbac"]["reached_upstream"]

    size = result["size"]
    assert size["release_bytes"] > 0 and size["floor_bytes"] > 0
    assert size["release_bytes"] < size["cargo_bytes"]
    assert size["wasm_opt_oz_bytes"] and size["wasm_opt_oz_bytes"] < size["cargo_bytes"]


def test_instruction_counts_come_from_the_proxy_under_callgrind():
    """A short count (the figures come from `bench/run --instructions`): every answer checked,
    and a denied call, answered by the filter, costs the proxy less than an allowed one."""
    import instructions

    result = instructions.run(requests=20, warmup=20, only=["no filter", "toolgate seed"])
    allowed, denied, listed = (result["toolgate seed"][w] for w in bench.WORKLOADS)
    assert allowed["upstream"] == allowed["requests"] == 20
    assert listed["upstream"] == listed["requests"] == 20
    assert denied["upstream"] == 0
    assert 0 < denied["instructions"] < allowed["instructions"]
    none = result["no filter"]["allowed 1 KB tools/call"]
    assert none["upstream"] == 20 and 0 < none["instructions"] < allowed["instructions"]
