"""Soak: steady mixed MCP traffic through real Envoy (2 workers) with the module in front of a
static upstream, for a bounded time on loopback. Checks, for the whole run:

* no 5xx, and every request answered as its kind expects (allowed, denied, rate limited,
  malformed refused with 400);
* counters exact for every window: for each grant and each calendar minute, the allowed
  calls carry `RateLimit` remaining values that are distinct and contiguous from max-1 down,
  and a call is rate limited only once the window's last slot (r=0) was given out;
* memory flat after warm-up (Envoy's resident set and tcmalloc's allocated bytes sampled
  along the way).

    .venv/sdk/bin/python e2e/stress/soak.py --seconds 600 --rate 200
"""
import argparse
import collections
import json
import signal
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from harness import Envoy, StaticUpstream  # noqa: E402
from measure import envoy_figures, mib, toolgate_counters  # noqa: E402
from raw import read_reply  # noqa: E402

import socket  # noqa: E402

MAX = 30
POLICY = {"version": "1", "default": "deny", "hide": ["cache_delete"],
          "tools": {"cache_cas": {"limits": [{"counter": "cache_cas_rate", "window": "minute",
                                              "max": MAX, "scope": "grant"}]},
                    "cache_get": {},
                    "cache_set": {"action": "deny", "reason": "read-only agents"}}}
GRANTS = 8
RATELIMIT = re.compile(r'^"cache_cas_rate";r=(\d+);t=(\d+)$')


def body(i, method, params=None):
    msg = {"jsonrpc": "2.0", "id": i, "method": method}
    if params is not None:
        msg["params"] = params
    return json.dumps(msg).encode()


def traffic(i):
    """The i-th request of the mix: (kind, grant, body)."""
    slot = i % 10
    grant = f"soak-{i % GRANTS}"
    if slot < 4:  # each grant asks for cache_cas more often than its limit allows
        return "cas", grant, body(i, "tools/call", {"name": "cache_cas", "arguments": {
            "key": f"k{i}", "value": "v", "cas_unique": i, "expire": 60}})
    if slot == 4:
        return "allowed", grant, body(i, "tools/call", {"name": "cache_get", "arguments": {"key": "k"}})
    if slot == 5:
        return "denied", grant, body(i, "tools/call", {"name": "cache_set", "arguments": {"key": "k"}})
    if slot == 6:
        return "denied", grant, body(i, "tools/call", {"name": "cache_delete", "arguments": {"key": "k"}})
    if slot == 7:
        return "denied", grant, body(i, "tools/call", {"name": f"unknown_{i % 50}", "arguments": {}})
    if slot == 8:
        return "allowed", grant, body(i, "tools/list", {})
    return "malformed", grant, b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_cas"'


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects when Envoy closes it."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.file = None

    def send(self, grant, payload):
        for attempt in range(2):
            try:
                if self.sock is None:
                    self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                    self.file = self.sock.makefile("rb")
                head = (f"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\ncontent-type: application/json\r\n"
                        f"accept: application/json, text/event-stream\r\nauthorization: Bearer {grant}\r\n"
                        f"content-length: {len(payload)}\r\n\r\n").encode()
                self.sock.sendall(head + payload)
                reply = read_reply(self.file)
                if (reply.header("connection") or "").lower() == "close":
                    self.close()
                return reply
            except (ConnectionError, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = self.file = None


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.kinds = collections.Counter()
        self.problems = []
        # (grant, window) -> remaining values of allowed calls; rate-limited arrival times
        self.remaining = collections.defaultdict(list)
        self.limited = collections.defaultdict(int)

    def problem(self, text):
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(text)

    def check(self, kind, grant, reply, now):
        with self.lock:
            self.kinds[f"{kind}:{reply.status}"] += 1
        if reply.status >= 500:
            return self.problem(f"{kind}: HTTP {reply.status} {reply.body[:200]!r}")
        if kind == "malformed":
            if reply.status != 400:
                self.problem(f"malformed answered {reply.status}")
            return
        if reply.status != 200:
            return self.problem(f"{kind}: HTTP {reply.status} {reply.body[:200]!r}")
        doc = json.loads(reply.body)
        refused = bool(doc.get("error")) or bool(doc.get("result", {}).get("isError"))
        if kind == "allowed" and refused:
            self.problem(f"allowed call refused: {reply.body[:200]!r}")
        elif kind == "denied" and not refused:
            self.problem(f"denied call answered by the upstream: {reply.body[:200]!r}")
        elif kind == "cas":
            if refused:
                retry = reply.header("retry-after")
                if retry is None:
                    return self.problem(f"refused cache_cas without Retry-After: {reply.body[:200]!r}")
                window = round((now + int(retry)) / 60)
                with self.lock:
                    self.limited[(grant, window)] += 1
            else:
                m = RATELIMIT.match(reply.header("ratelimit") or "")
                if not m:
                    return self.problem(f"allowed cache_cas without a RateLimit header: {reply.headers}")
                window = round((now + int(m.group(2))) / 60)
                with self.lock:
                    self.remaining[(grant, window)].append(int(m.group(1)))

    def windows(self):
        """Checks every (grant, window); returns (windows checked, full windows, problems)."""
        problems, full = [], 0
        for key in sorted(set(self.remaining) | set(self.limited)):
            values = sorted(self.remaining.get(key, []), reverse=True)
            expected = list(range(MAX - 1, MAX - 1 - len(values), -1))
            if values != expected:
                problems.append(f"{key}: remaining values {values}")
            if self.limited.get(key) and (not values or values[-1] != 0):
                problems.append(f"{key}: {self.limited[key]} limited before the window was used up ({len(values)} allowed)")
            if len(values) == MAX:
                full += 1
        return len(set(self.remaining) | set(self.limited)), full, problems


def run(seconds, rate, threads, warmup, logdir, sample_every=15):
    upstream = StaticUpstream(logdir, concurrency=1).start()
    envoy = None
    try:
        envoy = Envoy(logdir, POLICY, upstream.port, access_log=False).start()
        tally = Tally()
        samples = []
        start = time.time()
        stop_at = start + seconds
        counter = iter(range(10**12))
        counter_lock = threading.Lock()
        interval = threads / rate

        def worker(n):
            client = Client(envoy.port)
            due = start + n * interval / threads
            while True:
                due += interval
                delay = due - time.time()
                if delay > 0:
                    time.sleep(delay)
                if time.time() >= stop_at:
                    break
                with counter_lock:
                    i = next(counter)
                kind, grant, payload = traffic(i)
                try:
                    reply = client.send(grant, payload)
                except OSError as e:
                    tally.problem(f"{kind}: connection failed: {e}")
                    continue
                tally.check(kind, grant, reply, time.time())
            client.close()

        pool = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
        for t in pool:
            t.start()
        next_sample = start + warmup
        while any(t.is_alive() for t in pool):
            if time.time() >= next_sample:
                samples.append({"at": round(time.time() - start), **envoy_figures(envoy)})
                next_sample += sample_every
            time.sleep(0.5)
        samples.append({"at": round(time.time() - start), **envoy_figures(envoy)})
        checked, full, window_problems = tally.windows()
        return {
            "seconds": seconds, "rate": rate, "requests": sum(tally.kinds.values()),
            "kinds": dict(tally.kinds), "problems": tally.problems + window_problems,
            "windows_checked": checked, "full_windows": full, "samples": samples,
            "counters": toolgate_counters(envoy), "envoy_alive": envoy.alive(),
        }
    finally:
        if envoy is not None:
            envoy.stop()
        upstream.stop()


def summary(r):
    s = r["samples"]
    rss = [x["rss_kib"] for x in s]
    alloc = [x["allocated"] for x in s]
    lines = [
        f"{r['requests']:,} requests in {r['seconds']} s at {r['rate']}/s: {r['kinds']}",
        f"windows checked {r['windows_checked']} ({r['full_windows']} used up exactly), problems {len(r['problems'])}",
        f"after warm-up ({len(s)} samples): RSS {min(rss) / 1024:.1f}..{max(rss) / 1024:.1f} MiB, "
        f"allocated {mib(min(alloc))}..{mib(max(alloc))}, stats {sorted({x['stats'] for x in s})}",
        f"module counters: {r['counters']}",
    ]
    lines += [f"  problem: {p}" for p in r["problems"][:20]]
    return "\n".join(lines)


def main():
    # A terminated run still stops the Envoys it started (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--rate", type=int, default=200, help="requests per second, all kinds")
    ap.add_argument("--threads", type=int, default=8, help="client connections")
    ap.add_argument("--warmup", type=int, default=60, help="seconds before memory sampling starts")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="toolgate-soak-") as d:
        r = run(args.seconds, args.rate, args.threads, args.warmup, d)
    print(summary(r))
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n")
    sys.exit(1 if r["problems"] or not r["envoy_alive"] else 0)


if __name__ == "__main__":
    main()
