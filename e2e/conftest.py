"""Fixtures: every test gets a log directory; process fixtures stop what they start and
print the logs of a failed test."""
import pytest

from harness import WASM, Lenient, Memcached, MemcachedMcp, Recording


def pytest_sessionstart(session):
    if not WASM.exists():
        raise pytest.UsageError(f"{WASM} is missing: run `scripts/build-module`")


@pytest.fixture
def procs(tmp_path, request):
    """Start processes with `procs.add(p.start())`; all stop at the end of the test."""

    class Procs(list):
        dir = tmp_path

        def add(self, p):
            self.append(p)
            return p

    started = Procs()
    yield started
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for p in reversed(started):
        p.stop()
        if failed:
            print(f"\n===== {p.name} log =====\n{p.output()[-6000:]}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(scope="module")
def memcached_mcp(tmp_path_factory):
    """The real memcached MCP server behind mcp-proxy, shared by a module's tests."""
    d = tmp_path_factory.mktemp("memcached")
    mc = Memcached(d).start()
    srv = MemcachedMcp(d, mc.port).start()
    yield srv
    srv.stop()
    mc.stop()


@pytest.fixture
def recording(procs):
    return procs.add(Recording(procs.dir).start())


@pytest.fixture
def lenient(procs):
    return procs.add(Lenient(procs.dir).start())
