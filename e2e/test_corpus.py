"""The shared hostile corpus (host-tests/corpus/, also replayed through the module in the
wasmtime host) sent through real Envoy, both arrangements, to the most lenient upstream:
every case gets its expected status and JSON-RPC code, and nothing reaches the upstream."""
import json
from pathlib import Path

import pytest

from harness import Envoy
from raw import request

CORPUS = Path(__file__).resolve().parent.parent / "host-tests" / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
CONFIG = json.loads((CORPUS / MANIFEST["config"]).read_text())


@pytest.fixture(params=["pause", "buffer"])
def envoy(request, procs, lenient):
    settings = {k: v for k, v in CONFIG.items() if k != "policy"}
    return procs.add(Envoy(procs.dir, CONFIG["policy"], lenient.port, settings=settings,
                           variant=request.param).start())


def send(port, case):
    body = (CORPUS / case["file"]).read_bytes()
    chunks = None
    if case.get("chunk_size") or case.get("trailers"):
        size = case.get("chunk_size") or max(len(body), 1)
        chunks = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    return request(port, body=body, method=case["method"], path=case["path"], headers=case["headers"],
                   content_type=None, chunks=chunks, trailers=case.get("trailers"))


def test_every_corpus_case_is_refused_and_nothing_reaches_upstream(envoy, lenient):
    failures = []
    for case in MANIFEST["cases"]:
        lenient.clear()
        name, want = case["name"], case["expect"]
        try:
            r = send(envoy.port, case)
        except Exception as e:  # noqa: BLE001
            failures.append(f"{name}: {e}")
            continue
        if lenient.requests():
            failures.append(f"{name}: reached the upstream")
        if r.status != want["status"]:
            failures.append(f"{name}: status {r.status}, expected {want['status']}: {r.body[:200]!r}")
            continue
        if "code" not in want and r.status != 200:
            continue
        try:
            body = r.json()
        except ValueError:
            failures.append(f"{name}: reply is not JSON: {r.body[:200]!r}")
            continue
        replies = body if isinstance(body, list) else [body]
        if "code" in want:
            if not any(x.get("error", {}).get("code") == want["code"] for x in replies):
                failures.append(f"{name}: expected JSON-RPC {want['code']}: {body}")
        elif not any(x.get("result", {}).get("isError") for x in replies):
            failures.append(f"{name}: not a denial the agent can read: {body}")
    assert len(MANIFEST["cases"]) >= 70
    assert not failures, "\n".join(failures)
