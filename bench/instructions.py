"""Instructions per request in Envoy, per configuration and workload: the steady figure on a
shared machine, where requests/s and even CPU time drift with the neighbours.

Each configuration's Envoy (the real binary from the venv, `--concurrency 1`) runs under
`valgrind --tool=callgrind` (with `--smc-check=all-non-file`, as V8 writes its own code);
after a warm-up that lets V8 tier the module up, the counters are zeroed, N requests are
sent one after another on one connection, and the counters are dumped. The count covers
every thread of the proxy: HTTP codec, routing, the upstream connection, the filter and V8.
The same binary, configuration and requests give the same count to within a fraction of a
percent, whatever else the machine is doing.

    bench/run --instructions                 # every configuration and workload, ~12 minutes
    .venv/sdk/bin/python bench/instructions.py --requests 300 --only "no filter" "toolgate seed"
    .venv/sdk/bin/python bench/instructions.py --host-calls  # what each host call costs, ~4 minutes
"""
import argparse
import glob
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "e2e"))
import bench  # noqa: E402
import configs  # noqa: E402
from harness import ROOT, StaticUpstream, free_port, wait_port  # noqa: E402


def envoy_binary():
    """The real binary: the venv's `envoy` is a Python launcher valgrind would measure instead."""
    found = sorted(glob.glob(str(ROOT / ".venv" / "envoy" / "lib" / "python3*" / "site-packages" / "envoy" / "_bin" / "envoy")))
    if not found:
        raise FileNotFoundError("no envoy binary under .venv/envoy (run scripts/setup)")
    return found[0]


def send(port, body, n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    upstream = 0
    for _ in range(n):
        conn.request("POST", "/mcp", body, {"content-type": "application/json",
                                            "accept": "application/json, text/event-stream",
                                            "authorization": bench.GRANT})
        r = conn.getresponse()
        upstream += int(r.status == 200 and b'"text":"ok"' in r.read())
    conn.close()
    return upstream


def count(logdir, name, filters, upstream_port, workloads, requests, warmup):
    """Instructions per request of one configuration, for each workload."""
    port, admin = free_port(), free_port()
    slug = name.replace(" ", "-").replace("+", "-")
    config = Path(logdir) / f"cg-{slug}.yaml"
    config.write_text(configs.render(filters, port, admin, upstream_port))
    out = Path(logdir) / f"cg-{slug}.out"
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--smc-check=all-non-file",
                             f"--callgrind-out-file={out}", envoy_binary(), "-c", str(config),
                             "--concurrency", "1", "--disable-hot-restart", "-l", "error"],
                            stdout=open(Path(logdir) / f"cg-{slug}.log", "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    result = {}
    try:
        wait_port(port, timeout=600, proc=proc)
        for w in workloads:
            body = bench.WORKLOADS[w][0].encode()
            send(port, body, warmup)
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
            upstream = send(port, body, requests)
            before = set(glob.glob(f"{out}.*"))
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
            deadline = time.time() + 60
            while not (set(glob.glob(f"{out}.*")) - before) and time.time() < deadline:
                time.sleep(0.2)
            dump = max(set(glob.glob(f"{out}.*")) - before, key=os.path.getmtime)
            total = 0
            for line in open(dump):
                if line.startswith(("summary:", "totals:")):
                    total = max(total, int(line.split()[1]))
            result[w] = {"instructions": total / requests, "upstream": upstream, "requests": requests}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return result


def run(requests=300, warmup=300, only=None, configurations=None, workloads=None):
    with tempfile.TemporaryDirectory(prefix="toolgate-cg-") as d:
        upstream = StaticUpstream(d, concurrency=1).start()
        try:
            out = {}
            for name, filters in (configurations or configs.configurations()).items():
                if only and name not in only:
                    continue
                out[name] = count(d, name, filters, upstream.port, workloads or list(bench.WORKLOADS), requests, warmup)
                print(f"   {name}: " + ", ".join(f"{w} {r['instructions']:,.0f}" for w, r in out[name].items()),
                      flush=True)
            return out
        finally:
            upstream.stop()


def table(result):
    lines = ["## Instructions per request (callgrind)", "",
             "The proxy Envoy's instructions per request, all threads, after warm-up "
             "(`bench/instructions.py`). “added” is over no filter; the last column divides it "
             "by the floor module's.", ""]
    for w in bench.WORKLOADS:
        none = result.get("no filter", {}).get(w, {}).get("instructions")
        floor = result.get("floor module", {}).get(w, {}).get("instructions")
        lines += [f"### {w}", "", "| configuration | instructions | added | added vs floor's |", "|---|---:|---:|---:|"]
        for name, per in result.items():
            r = per.get(w)
            if not r:
                continue
            added = r["instructions"] - none if none else None
            vs = added / (floor - none) if none and floor and floor > none else None
            lines.append(f"| {name} | {r['instructions']:,.0f} | "
                         f"{'–' if added is None else f'{added:+,.0f}'} | {'–' if vs is None else f'{vs:.2f}×'} |")
        lines.append("")
    return lines


# The workload the host calls are measured on: an allowed, counted call makes all of them.
HOST_CALL_WORKLOAD = "allowed 1 KB tools/call"


def host_call_table(result):
    """What each host call of an allowed, counted call costs: the floor making all of them
    minus the floor leaving that one out."""
    w = HOST_CALL_WORKLOAD
    all_calls = result["floor + host calls"][w]["instructions"]
    floor = result["floor module"][w]["instructions"]
    lines = ["## What each host call costs (allowed 1 KB call)", "",
             f"The floor module making every host call Toolgate makes: {all_calls:,.0f} instructions per "
             f"request, {all_calls - floor:+,.0f} over the floor ({floor:,.0f}). Each row leaves one out.", "",
             "| host call | instructions |", "|---|---:|"]
    for call, what in configs.HOST_CALLS.items():
        without = result[f"floor + host calls without {call}"][w]["instructions"]
        lines.append(f"| {what} | {all_calls - without:,.0f} |")
    return lines + [""]


def build_modules():
    """Toolgate as it ships and the floor module (both quick when nothing changed): run on
    its own, this script must not measure a missing or stale module."""
    root = HERE.parent
    subprocess.run([str(root / "scripts" / "build-module")], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cargo", "build", "-q", "--release", "--target", "wasm32-wasip1",
                    "-p", "toolgate-bench-floor"], check=True, cwd=root)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--host-calls", action="store_true",
                    help="instead: what each host call of an allowed, counted call costs (the floor module "
                         "making all of them, then leaving out one at a time)")
    args = ap.parse_args()
    build_modules()
    if args.host_calls:
        result = run(args.requests, args.warmup, configurations=configs.host_call_configurations(),
                     workloads=[HOST_CALL_WORKLOAD])
        print("\n".join(host_call_table(result)))
    else:
        result = run(args.requests, args.warmup, args.only)
        print("\n".join(table(result)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
