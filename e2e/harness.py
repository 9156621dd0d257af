"""Processes for the end-to-end tests: Envoy with the built module, the MCP servers, the
lenient recorder, Redis and the rate limit service. Each runs in its own session on free
loopback ports, logs to a file, and is killed with its process group."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
WASM = ROOT / "target" / "toolgate.wasm"  # scripts/build-module
SERVERS = ROOT / "e2e" / "servers"
sys.path.insert(0, str(ROOT / "envoy"))
import bootstrap  # noqa: E402  (envoy/bootstrap.py renders every Envoy the tests start)


def venv_bin(venv, exe):
    return str(VENV / venv / "bin" / exe)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class Proc:
    """A child process in its own session, logging to a file."""

    def __init__(self, name, argv, logdir, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(logdir) / f"{name}.log"
        self.env = {**os.environ, **(env or {})}
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True, cwd=ROOT)
        return self

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def output(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Memcached(Proc):
    def __init__(self, logdir):
        self.port = free_port()
        argv = ["memcached", "-l", "127.0.0.1", "-p", self.port, "-U", "0", "-m", "64"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        super().__init__("memcached", argv, logdir)

    def start(self):
        super().start()
        wait_port(self.port, proc=self.proc)
        return self


class MemcachedMcp(Proc):
    """The AWS Labs memcached MCP server (stdio) behind mcp-proxy (Streamable HTTP)."""

    def __init__(self, logdir, memcached_port):
        self.port = free_port()
        argv = [venv_bin("proxy", "mcp-proxy"), "--port", self.port, "--host", "127.0.0.1",
                "-e", "MEMCACHED_HOST", "127.0.0.1", "-e", "MEMCACHED_PORT", memcached_port,
                "--", venv_bin("memcached", "awslabs.memcached-mcp-server")]
        super().__init__("memcached-mcp", argv, logdir)
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def start(self):
        super().start()
        wait_port(self.port, timeout=60, proc=self.proc)
        return self


class Recording(Proc):
    """The recording SDK server; `calls()` lists what it executed."""

    def __init__(self, logdir, json_response=False, stateless=False, name="recording", sse=False):
        self.port = free_port()
        self.record = Path(logdir) / f"{name}.jsonl"
        argv = [venv_bin("sdk", "python"), SERVERS / "recording.py", "--port", self.port, "--record", self.record]
        if json_response:
            argv.append("--json-response")
        if stateless:
            argv.append("--stateless")
        if sse:
            argv.append("--sse")  # the 2024-11-05 HTTP+SSE transport, at /sse
        super().__init__(name, argv, logdir)
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def start(self):
        super().start()
        wait_port(self.port, timeout=60, proc=self.proc)
        return self

    def calls(self, name=None):
        if not self.record.exists():
            return []
        rows = [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]
        return [r for r in rows if name is None or r["name"] == name]


class TsResources(Proc):
    """The TypeScript SDK's McpServer serving resources; `reads()` lists the URIs it read."""

    def __init__(self, logdir):
        self.port = free_port()
        self.record = Path(logdir) / "ts-resources.jsonl"
        super().__init__("ts-resources", ["node", SERVERS / "ts_resources.cjs", self.port, self.record], logdir)

    def start(self):
        super().start()
        wait_port(self.port, timeout=30, proc=self.proc)
        return self

    def reads(self):
        if not self.record.exists():
            return []
        return [json.loads(line)["uri"] for line in self.record.read_text().splitlines() if line.strip()]


class Lenient(Proc):
    """Records every request whatever it is; `requests()` lists them."""

    def __init__(self, logdir):
        self.port = free_port()
        self.record = Path(logdir) / "lenient.jsonl"
        super().__init__("lenient", [venv_bin("sdk", "python"), SERVERS / "lenient.py", "--port", self.port,
                                     "--record", self.record], logdir)

    def start(self):
        super().start()
        wait_port(self.port, proc=self.proc)
        return self

    def requests(self):
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]

    def clear(self):
        if self.record.exists():
            self.record.unlink()


class Redis(Proc):
    def __init__(self, logdir, port=None):
        self.port = port or free_port()
        super().__init__(f"redis-{self.port}", ["redis-server", "--port", self.port, "--bind", "127.0.0.1",
                                                "--save", "", "--appendonly", "no"], logdir)

    def start(self):
        super().start()
        wait_port(self.port, proc=self.proc)
        return self


class RateLimitService(Proc):
    def __init__(self, logdir, redis_port, port=None):
        self.port = port or free_port()
        exe = ROOT / "target" / "debug" / "toolgate-ratelimit"
        super().__init__(f"ratelimit-{self.port}", [exe, "--listen", f"127.0.0.1:{self.port}",
                                                    "--redis", f"redis://127.0.0.1:{redis_port}"], logdir)

    def start(self):
        super().start()
        wait_port(self.port, proc=self.proc)
        return self


class StaticUpstream(Proc):
    """An Envoy answering every request at once with a fixed JSON-RPC result: an upstream
    that is never the bottleneck of a load run."""

    BODY = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}],"isError":false}}'

    def __init__(self, logdir, concurrency=1):
        self.port = free_port()
        self.admin = free_port()
        path = Path(logdir) / "static.yaml"
        path.write_text(bootstrap.to_yaml(bootstrap.static_upstream(self.port, self.admin, self.BODY)) + "\n")
        super().__init__("static", [venv_bin("envoy", "envoy"), "-c", path, "--concurrency", concurrency,
                                    "--disable-hot-restart", "-l", "warning"], logdir)

    def start(self):
        super().start()
        wait_port(self.port, proc=self.proc)
        return self


class Envoy(Proc):
    """Envoy (`--concurrency 2` by default) with the Toolgate module in front of `upstream`."""

    def __init__(self, logdir, policy, upstream_port, settings=None, variant="pause", concurrency=2,
                 ratelimit_port=None, name="envoy", configuration=None, access_log=True, upgrades=()):
        self.port = free_port()
        self.admin = free_port()
        self.config_path = Path(logdir) / f"{name}.yaml"
        text = bootstrap.render(policy=policy, settings=settings, variant=variant, listen=self.port,
                                admin=self.admin, upstream=f"127.0.0.1:{upstream_port}", wasm=str(WASM),
                                ratelimit=f"127.0.0.1:{ratelimit_port}" if ratelimit_port else None,
                                access_log=access_log, upgrades=upgrades)
        if configuration is not None:  # a raw configuration string (for invalid ones)
            doc = bootstrap.bootstrap(policy=policy, variant=variant, listen=self.port, admin=self.admin,
                                      upstream=f"127.0.0.1:{upstream_port}", wasm=str(WASM))
            filt = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            filt["typed_config"]["http_filters"][0]["typed_config"]["config"]["configuration"]["value"] = configuration
            text = bootstrap.to_yaml(doc) + "\n"
        self.config_path.write_text(text)
        super().__init__(name, [venv_bin("envoy", "envoy"), "-c", self.config_path, "--concurrency", concurrency,
                                "--disable-hot-restart", "-l", "info"], logdir)
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def start(self, ready=True):
        super().start()
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.alive():
                raise RuntimeError(f"envoy exited:\n{self.output()[-4000:]}")
            with contextlib.suppress(OSError):
                if http_get(f"http://127.0.0.1:{self.admin}/ready").strip() == "LIVE":
                    wait_port(self.port)
                    return
            time.sleep(0.1)
        raise TimeoutError(f"envoy not ready:\n{self.output()[-4000:]}")

    def stats(self):
        out = {}
        for line in http_get(f"http://127.0.0.1:{self.admin}/stats").splitlines():
            k, _, v = line.partition(": ")
            with contextlib.suppress(ValueError):
                out[k] = int(v)
        return out

    def prometheus(self):
        return http_get(f"http://127.0.0.1:{self.admin}/stats/prometheus")


def prometheus_value(prom, metric, **labels):
    """The value of the one series of `metric` with these labels in Envoy's Prometheus text."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in prom.splitlines():
        named = line.startswith(f"{metric}{{") or line.startswith(f"{metric} ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return int(float(line.rsplit(" ", 1)[1]))
    raise AssertionError(f"no {metric}{{{want}}} in\n{prom}")
