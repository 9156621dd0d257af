"""The load benchmark: what Toolgate costs in Envoy, side by side with what users would pick
instead, measured interleaved in one run.

Every configuration is an Envoy with `--concurrency 1` and the same listener, route and
static upstream (an Envoy answering with `direct_response`); only the HTTP filters before
the router differ (bench/configs.py). wrk drives each workload against each configuration
in turn, round after round; the medians over rounds are reported with the proxy's CPU time
per request, read from /proc (steadier than requests/s on a shared machine), and ratios to
the configuration without a filter and to the floor module. Every answer is checked to come
from the upstream (or not, for a refused call) by the wrk script.

Then the hostile corpus (host-tests/corpus/) is replayed against each configuration that can
judge a call, in front of the most lenient upstream: what reached it is listed.

    bench/run --instructions        # also instruction counts under callgrind (bench/instructions.py)
    bench/run                       # 5 rounds of 5 s, the table in bench/results/latest.md
    bench/run --rounds 1 --seconds 1 --out /tmp/quick
"""
import argparse
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "e2e"))
import configs  # noqa: E402
import instructions  # noqa: E402
from harness import Lenient, Proc, StaticUpstream, free_port, http_get, venv_bin, wait_port  # noqa: E402
from raw import request  # noqa: E402

GRANT = "Bearer bench"


def call_body(tool, size):
    """A tools/call of `tool` padded by its value argument to exactly `size` bytes."""
    def body(value):
        return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": tool, "arguments": {"key": "k", "value": value, "cas_unique": 1, "expire": 60}}},
            separators=(",", ":"))
    return body("x" * max(0, size - len(body(""))))


# name -> (body, what the answer must be in a configuration that enforces the seed policy)
WORKLOADS = {
    "allowed 1 KB tools/call": (call_body("cache_cas", 1024), "upstream"),
    "denied 1 KB tools/call": (call_body("cache_delete", 1024), "refused"),
    "tools/list": ('{"jsonrpc":"2.0","id":1,"method":"tools/list"}', "upstream"),
}
# Configurations that do not enforce: everything reaches the upstream.
NOT_ENFORCING = {"no filter", "floor module", "floor + host calls", "toolgate shadow"}

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Authorization"] = "%(grant)s"
wrk.body = [==[%(body)s]==]
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) upstream, other = 0, 0 end
function response(status, headers, body)
  if status == 200 and body:find('"text":"ok"', 1, true) then upstream = upstream + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("upstream"); b = b + t:get("other") end
  io.write(string.format('RESULT {"upstream": %%d, "other": %%d}\\n', a, b))
end
"""


class BenchEnvoy(Proc):
    """One configuration: Envoy, one worker, in front of the static upstream."""

    def __init__(self, logdir, name, filters, upstream_port):
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.config_path = Path(logdir) / f"{slug}.yaml"
        self.filters, self.upstream_port = filters, upstream_port
        self._pick_ports()
        super().__init__(slug, [venv_bin("envoy", "envoy"), "-c", self.config_path, "--concurrency", 1,
                                "--disable-hot-restart", "-l", "error"], logdir)

    def _pick_ports(self):
        self.port = free_port()
        self.admin = free_port()
        self.config_path.write_text(configs.render(self.filters, self.port, self.admin, self.upstream_port))
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def start(self, attempts=3):
        super().start()
        deadline = time.time() + 60
        while time.time() < deadline:
            if not self.alive():
                # A free port can be taken by another process between picking and binding.
                if attempts > 1 and "Address already in use" in self.output()[-3000:]:
                    self._pick_ports()
                    return self.start(attempts - 1)
                raise RuntimeError(f"{self.name} exited:\n{self.output()[-3000:]}")
            try:
                if http_get(f"http://127.0.0.1:{self.admin}/ready").strip() == "LIVE":
                    wait_port(self.port)
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready")

    def cpu_ns(self):
        """CPU time of every thread of the process so far, in nanoseconds."""
        total = 0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return total


def micros(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)$", v).groups()
    return float(n) * {"us": 1, "ms": 1000, "s": 1_000_000}[u]


def wrk(envoy, script, seconds, connections):
    """One wrk run: its figures, and the proxy's CPU time per request meanwhile."""
    before = envoy.cpu_ns()
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency",
                          "-s", str(script), envoy.url],
                         check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    cpu = envoy.cpu_ns() - before
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    result = json.loads(re.search(r"RESULT (\{.*\})", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_us": micros(lat["50"]), "p99_us": micros(lat["99"]),
        "cpu_us": cpu / 1000 / max(requests, 1),
        "requests": requests, "upstream": result["upstream"], "other": result["other"],
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def summarise(per):
    """Medians over rounds. On a shared machine the speed of everything drifts from minute to
    minute, so comparisons are made within each round (all configurations ran within a
    couple of minutes of each other) and the median of those is reported."""
    out = {}
    none, floor = per.get("no filter"), per.get("floor module")
    for name, runs in per.items():
        med = {k: statistics.median(s[k] for s in runs) for k in ("rps", "p50_us", "p99_us", "cpu_us")}
        med.update({k: sum(s[k] for s in runs) for k in ("requests", "upstream", "other", "non_2xx")})
        if none:
            med["rps_vs_none"] = statistics.median(a["rps"] / b["rps"] for a, b in zip(runs, none))
            med["added_cpu_us"] = statistics.median(a["cpu_us"] - b["cpu_us"] for a, b in zip(runs, none))
        if floor:
            med["rps_vs_floor"] = statistics.median(a["rps"] / b["rps"] for a, b in zip(runs, floor))
        out[name] = med
    return out


def load_run(logdir, rounds, seconds, connections, only=None):
    procs = []
    try:
        upstream = StaticUpstream(logdir, concurrency=1).start()
        procs.append(upstream)
        envoys = {}
        for name, filters in configs.configurations().items():
            if only and name not in only:
                continue
            envoys[name] = BenchEnvoy(logdir, name, filters, upstream.port).start()
            procs.append(envoys[name])
        scripts = {}
        for w, (body, _) in WORKLOADS.items():
            scripts[w] = Path(logdir) / (re.sub(r"[^a-z0-9]+", "-", w.lower()) + ".lua")
            scripts[w].write_text(WRK_SCRIPT % {"grant": GRANT, "body": body})
        for envoy in envoys.values():  # warm-up: VMs compiled and tiered up, connections open
            for script in scripts.values():
                wrk(envoy, script, 2, connections)
        samples = {w: {n: [] for n in envoys} for w in WORKLOADS}
        names = list(envoys)
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]  # rotate: no fixed position
            for w, script in scripts.items():
                for name in order:
                    samples[w][name].append(wrk(envoys[name], script, seconds, connections))
            print(f"   round {r + 1}/{rounds} done", flush=True)
        return {w: summarise(per) for w, per in samples.items()}
    finally:
        for p in reversed(procs):
            p.stop()


def corpus_run(logdir):
    """Replays the hostile corpus against each configuration in front of the lenient
    upstream; returns configuration -> names of the cases that reached the upstream."""
    manifest = json.loads((configs.CORPUS / "manifest.json").read_text())
    procs = []
    result = {}
    try:
        lenient = Lenient(logdir).start()
        procs.append(lenient)
        for name, filters in configs.corpus_configurations().items():
            envoy = BenchEnvoy(logdir, f"corpus {name}", filters, lenient.port).start()
            procs.append(envoy)
            reached = []
            for case in manifest["cases"]:
                lenient.clear()
                body = (configs.CORPUS / case["file"]).read_bytes()
                chunks = None
                if case.get("chunk_size") or case.get("trailers"):
                    size = case.get("chunk_size") or max(len(body), 1)
                    chunks = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
                try:
                    request(envoy.port, body=body, method=case["method"], path=case["path"],
                            headers=case["headers"], content_type=None, chunks=chunks,
                            trailers=case.get("trailers"))
                except Exception:  # noqa: BLE001  (a reset is a refusal; what matters is the upstream)
                    pass
                if lenient.requests():
                    reached.append(case["name"])
            result[name] = {"cases": len(manifest["cases"]), "reached_upstream": reached}
            envoy.stop()
        return result
    finally:
        for p in reversed(procs):
            p.stop()


def sizes():
    """The shipped module (scripts/build-module: cargo, then wasm-opt -O3 --merge-similar-functions --converge), cargo's artifact
    before wasm-opt, and that artifact after wasm-opt -Oz (the issue's size measure)."""
    out = {"release_bytes": configs.WASM.stat().st_size, "cargo_bytes": configs.CARGO_WASM.stat().st_size,
           "floor_bytes": configs.FLOOR_WASM.stat().st_size}
    with tempfile.TemporaryDirectory() as d:
        opt = Path(d) / "toolgate.opt.wasm"
        try:
            # The feature flags the shipped build gives wasm-opt, from the one place they live.
            flags = subprocess.run([str(configs.ROOT / "scripts" / "build-module"), "--features"], check=True,
                                   capture_output=True, text=True).stdout.split()
            subprocess.run(["wasm-opt", "-Oz", *flags, "--strip-debug", "--strip-producers",
                            str(configs.CARGO_WASM), "-o", str(opt)], check=True, capture_output=True, timeout=300)
            out["wasm_opt_oz_bytes"] = opt.stat().st_size
        except (OSError, subprocess.SubprocessError) as e:
            out["wasm_opt_oz_bytes"] = None
            out["wasm_opt_error"] = str(e)[:300]
    return out


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}×"


def report(load, corpus, size, args, counted=None):
    lines = [f"# Toolgate load benchmark", "",
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
             f"{os.cpu_count()} CPUs. `bench/run --rounds {args.rounds} --seconds {args.seconds} "
             f"--connections {args.connections}`: every Envoy `--concurrency 1`, wrk 1 thread "
             f"{args.connections} connections, medians of {args.rounds} interleaved rounds. "
             "CPU is the proxy process' own time per request (/proc schedstat). Ratios and added "
             "CPU are medians of per-round comparisons. "
             "“added CPU vs floor's” is (CPU − no filter's) / (floor's − no filter's).", ""]
    for w, per in load.items():
        expect = WORKLOADS[w][1]
        floor = per.get("floor module")
        lines += [f"## {w}", "",
                  "| configuration | requests/s | p50 | p99 | CPU/request (+ over no filter) | req/s vs no filter | req/s vs floor | added CPU vs floor's | answers from upstream |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        floor_added = floor.get("added_cpu_us") if floor else None
        for name, r in per.items():
            added = None
            if floor_added and floor_added > 0 and "added_cpu_us" in r:
                added = r["added_cpu_us"] / floor_added
            want = "upstream" if name in NOT_ENFORCING else expect
            ok = (r["upstream"] == r["requests"]) if want == "upstream" else (r["upstream"] == 0)
            mark = "" if ok else " ⚠"
            extra = f" ({r['added_cpu_us']:+.1f})" if "added_cpu_us" in r else ""
            lines.append(f"| {name} | {r['rps']:,.0f} | {r['p50_us']:.0f} µs | {r['p99_us']:.0f} µs | "
                         f"{r['cpu_us']:.1f} µs{extra} | {fmt_ratio(r.get('rps_vs_none'))} | "
                         f"{fmt_ratio(r.get('rps_vs_floor'))} | {fmt_ratio(added)} | "
                         f"{r['upstream']:,}/{r['requests']:,}{mark} |")
        lines.append("")
    if corpus:
        lines += ["## Hostile corpus (host-tests/corpus/, its policy in each configuration)", "",
                  "| configuration | cases | reached the lenient upstream |", "|---|---:|---|"]
        for name, r in corpus.items():
            reached = ", ".join(r["reached_upstream"]) or "none"
            lines.append(f"| {name} | {r['cases']} | {len(r['reached_upstream'])}: {reached} |")
        lines.append("")
    lines += ["## Module size", "",
              f"- release module `target/toolgate.wasm` (`scripts/build-module`: cargo, then `wasm-opt -O3 --merge-similar-functions --converge`): "
              f"{size['release_bytes']:,} bytes",
              f"- cargo's release artifact before wasm-opt: {size['cargo_bytes']:,} bytes",
              f"- that artifact after `wasm-opt -Oz`: {size['wasm_opt_oz_bytes']:,} bytes" if size.get("wasm_opt_oz_bytes")
              else f"- wasm-opt: {size.get('wasm_opt_error')}",
              f"- floor module: {size['floor_bytes']:,} bytes", ""]
    if counted:
        lines += instructions.table(counted)
    lines += targets(load, corpus, size, counted)
    return "\n".join(lines) + "\n"


def targets(load, corpus, size, counted=None):
    """The issue's targets, each measured against this run's own baselines."""
    per = load.get("allowed 1 KB tools/call", {})
    tg, floor = per.get("toolgate seed"), per.get("floor module")
    lua, native = per.get("lua json decoder"), per.get("envoy mcp+rbac+ratelimit")
    out = ["## Targets (allowed 1 KB call)", ""]
    if tg and floor:
        out.append(f"- throughput vs floor: {tg['rps_vs_floor']:.2f}× (target ≥ 0.90×)")
        calls = per.get("floor + host calls")
        if calls:
            out.append(f"- the floor making Toolgate's host calls, no decision: {calls['rps_vs_floor']:.2f}× the "
                       f"floor's throughput (what those calls alone leave)")
        # Added CPU needs "no filter" in the run (absent with --only).
        if floor.get("added_cpu_us", 0) > 0 and "added_cpu_us" in tg:
            out.append(f"- added CPU vs floor's added CPU: {tg['added_cpu_us']:.1f} / {floor['added_cpu_us']:.1f} µs "
                       f"= {tg['added_cpu_us'] / floor['added_cpu_us']:.2f}× (target ≤ 1.3×)")
    # Per-round ratios to whichever baseline the run has (--only may leave one out).
    base = next((k for k in ("rps_vs_none", "rps_vs_floor") if tg and lua and k in tg and k in lua), None)
    if base:
        held = corpus.get("toolgate", {}).get("reached_upstream") == [] if corpus else None
        out.append(f"- throughput vs Lua JSON decoder: {tg[base] / lua[base]:.2f}× "
                   f"(target ≥ 1.00×), every corpus case held: {held}")
    if tg and native and floor and "added_cpu_us" in floor:
        out.append(f"- gap to Envoy's native path: {native['rps_vs_none'] - tg['rps_vs_none']:+.2f} of no filter's "
                   f"throughput, {tg['added_cpu_us'] - native['added_cpu_us']:+.1f} µs CPU; floor's gap to no filter: "
                   f"{1 - floor['rps_vs_none']:.2f}, {floor['added_cpu_us']:+.1f} µs (target: first ≤ second)")
    w = "allowed 1 KB tools/call"
    ins = {n: r[w]["instructions"] for n, r in (counted or {}).items() if w in r}
    if {"no filter", "floor module", "toolgate seed"} <= set(ins):
        none = ins["no filter"]
        floor_added, tg_added = ins["floor module"] - none, ins["toolgate seed"] - none
        out.append(f"- added instructions vs floor's: {tg_added:,.0f} / {floor_added:,.0f} = "
                   f"{tg_added / floor_added:.2f}× (the CPU target, counted exactly; ≤ 1.3×)")
        if "floor + host calls" in ins:
            calls = ins["floor + host calls"] - ins["floor module"]
            out.append(f"- of that, the host calls alone (floor + host calls): {calls:+,.0f} over the floor "
                       f"({(ins['floor + host calls'] - none) / floor_added:.2f}× the floor's added, before any "
                       f"decision); Toolgate's own decision and glue: {ins['toolgate seed'] - ins['floor + host calls']:+,.0f}")
        if "envoy mcp+rbac+ratelimit" in ins:
            out.append(f"- instructions beyond Envoy's native path: {ins['toolgate seed'] - ins['envoy mcp+rbac+ratelimit']:+,.0f}; "
                       f"floor's beyond no filter: {floor_added:+,.0f} (target: first ≤ second)")
    opt = size.get("wasm_opt_oz_bytes")
    out.append(f"- release module: {size['release_bytes']:,} bytes (target < 250,000; cargo's artifact before "
               f"wasm-opt {size['cargo_bytes']:,}" + (f", {opt:,} after wasm-opt -Oz" if opt else "") + ")")
    return out + [""]


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--only", nargs="*", help="configuration names to load (all by default)")
    ap.add_argument("--no-corpus", action="store_true")
    ap.add_argument("--no-load", action="store_true", help="skip the wrk rounds")
    ap.add_argument("--instructions", action="store_true",
                    help="also count instructions per request under callgrind (bench/instructions.py)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="toolgate-bench-") as d:
        size = sizes()
        corpus = {} if args.no_corpus else corpus_run(d)
        load = {} if args.no_load else load_run(d, args.rounds, args.seconds, args.connections, args.only)
    counted = instructions.run(only=args.only) if args.instructions else None
    # The measurements first: a report that fails must not lose a run of many minutes.
    (args.out / "latest.json").write_text(json.dumps({"load": load, "corpus": corpus, "size": size,
                                                      "instructions": counted}, indent=2) + "\n")
    text = report(load, corpus, size, args, counted)
    (args.out / "latest.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
