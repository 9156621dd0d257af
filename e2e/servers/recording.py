"""An MCP server on the official Python SDK (mcp 2.x ``MCPServer``) whose tools record
every call they actually execute, so tests can prove what reached the upstream.

Usage: python recording.py --port PORT --record FILE [--json-response] [--stateless] [--sse]

With --sse it speaks the 2024-11-05 HTTP+SSE transport instead: GET /sse opens the stream,
whose `endpoint` event names `/messages/?session_id=...` for the client's POSTs.
"""
import argparse
import asyncio
import ipaddress
import json
import os
import socket
import threading
from typing import Annotated

import httpx2
import uvicorn
from pydantic import BaseModel, Field
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import Completion, InputRequiredResult, SamplingMessage, TextContent
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.path_security import safe_join

server = MCPServer("recording", instructions="Records every tool call it executes.")
_lock = threading.Lock()
RECORD = os.environ.get("RECORD_FILE", "recorded.jsonl")


def record(kind, name, args):
    with _lock, open(RECORD, "a") as f:
        f.write(json.dumps({"kind": kind, "name": name, "arguments": args}) + "\n")


@server.tool()
def cache_cas(key: str, value: str, cas: int, expire: int = 0) -> str:
    """Set a value if its CAS token still matches (a write)."""
    record("tool", "cache_cas", {"key": key, "value": value, "cas": cas, "expire": expire})
    return f"stored {key}"


@server.tool()
def cache_get(key: str) -> str:
    """Read a value."""
    record("tool", "cache_get", {"key": key})
    return f"value of {key}"


@server.tool()
def cache_set(key: str, value: str, expire: int = 0) -> str:
    """Write a value."""
    record("tool", "cache_set", {"key": key, "value": value, "expire": expire})
    return f"set {key}"


@server.tool()
def cache_delete(key: str) -> str:
    """Delete a value."""
    record("tool", "cache_delete", {"key": key})
    return f"deleted {key}"


@server.tool()
def route(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], payload: str,
          ctx: Context) -> str:
    """Send a payload to a region. The schema marks `region` with `x-mcp-header`, so
    2026-07-28 clients mirror it in an `Mcp-Param-Region` header (recorded as `header`)."""
    header = {k.lower(): v for k, v in (ctx.headers or {}).items()}.get("mcp-param-region")
    record("tool", "route", {"region": region, "payload": payload, "header": header})
    return f"routed to {region}"


@server.tool()
def confirm(key: str, ctx: Context):
    """Delete-like write that first asks for confirmation (2026-07-28: the first call answers
    `resultType: "input_required"`; the client calls again with the echoed `requestState`)."""
    if ctx.request_state != f"confirm:{key}":
        return InputRequiredResult(request_state=f"confirm:{key}")
    record("tool", "confirm", {"key": key})
    return f"confirmed {key}"


@server.tool()
def echo(text: str) -> str:
    """Echo text back."""
    record("tool", "echo", {"text": text})
    return text


@server.tool()
def big(kb: int) -> str:
    """Answer with `kb` KiB of text."""
    record("tool", "big", {"kb": kb})
    return "x" * (kb * 1024)


@server.tool()
def spend(amount: float, currency: str = "usd") -> str:
    """Spend money."""
    record("tool", "spend", {"amount": amount, "currency": currency})
    return f"spent {amount} {currency}"


@server.tool()
async def slow(steps: int, ctx: Context) -> str:
    """Report progress `steps` times, 100 ms apart, then finish."""
    record("tool", "slow", {"steps": steps})
    for i in range(steps):
        await ctx.report_progress(i + 1, steps, f"step {i + 1}")
        await asyncio.sleep(0.1)
    return f"done after {steps} steps"


@server.tool()
async def pay(to: str, amount: int, ctx: Context) -> str:
    """Pays, then asks the client's model for a receipt: on a 2026-07-28 request, which has
    no back-channel, the SDK answers the call that ran with HTTP 400."""
    record("tool", "pay", {"to": to, "amount": amount})
    receipt = await ctx.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=f"receipt for {amount}"))],
        max_tokens=50)
    return f"paid; {receipt.content}"


@server.tool()
def share(path: str, expires_at: int | None = 3600) -> str:
    """Shares a file by link, expiring after `expires_at` seconds (never, if None)."""
    record("tool", "share", {"path": path, "expires_at": expires_at})
    return f"shared {path}"


class DeployOptions(BaseModel):
    force: bool = False


@server.tool()
def deploy(service: str, options: DeployOptions) -> str:
    """Deploys a service."""
    record("tool", "deploy", {"service": service, "options": options.model_dump()})
    return f"deployed {service}"


@server.tool()
def read_file(path: str) -> str:
    """Reads a file: records the path the server would open (as `os.path.normpath` reads it)."""
    record("tool", "read_file", {"path": path, "opens": os.path.normpath(path)})
    return f"contents of {path}"


@server.tool()
def fetch(url: str) -> str:
    """Fetches a URL: records the address and path an HTTP client would ask (httpx parses
    the URL, the system's resolver reads its host), without connecting."""
    u = httpx2.URL(url)
    try:
        address = socket.gethostbyname(u.host)
    except OSError:
        address = u.host
    try:
        # An IPv6 literal: an IPv4-mapped one connects to the IPv4 host.
        ip = ipaddress.IPv6Address(u.host)
        address = str(ip.ipv4_mapped or f"[{ip}]")
    except ValueError:
        pass
    record("tool", "fetch", {"url": url, "fetches": f"{u.scheme}://{address}{u.path}"})
    return f"fetched {u}"


@server.resource("file://docs/{+path}")
def doc(path: str) -> str:
    """A document, opened as the SDK's own `safe_join` pattern opens it (records which)."""
    docs = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(RECORD)), "docs"))
    opened = os.path.relpath(safe_join(docs, path), docs)
    record("resource", f"file://docs/{opened}", {"path": path})
    return f"document {opened}"


@server.resource("file:///srv/readme.md")
def readme() -> str:
    """The public readme."""
    record("resource", "file:///srv/readme.md", {})
    return "read me"


@server.resource("file:///secret/key.pem")
def key() -> str:
    """A private key."""
    record("resource", "file:///secret/key.pem", {})
    return "-----BEGIN KEY-----"


@server.resource("file:///srv/{name}")
def srv_file(name: str) -> str:
    """A served file."""
    record("resource", f"file:///srv/{name}", {})
    return f"contents of {name}"


@server.resource("file:///secret/{name}")
def secret_file(name: str) -> str:
    """A secret file."""
    record("resource", f"file:///secret/{name}", {})
    return f"secret {name}"


@server.resource("notes://{name}{?v}")
def note(name: str, v: str = "") -> str:
    """A note, at version `v` (the SDK matches the query expansion whatever follows)."""
    record("resource", f"notes://{name}", {"v": v})
    return f"note {name}"


@server.prompt()
def summarize(text: str) -> str:
    """Summarize text."""
    record("prompt", "summarize", {"text": text})
    return f"Summarize: {text}"


@server.prompt()
def admin_reset() -> str:
    """An administrative prompt."""
    record("prompt", "admin_reset", {})
    return "reset everything"


@server.completion()
async def complete(ref, argument, context):
    """Completes a prompt's or template's argument: a template's completions name its files."""
    name = getattr(ref, "name", None) or getattr(ref, "uri", None)
    record("completion", name, {"argument": argument.name, "value": argument.value})
    if name == "file:///secret/{name}":
        return Completion(values=["key.pem", "db-password.txt"])
    return Completion(values=[f"{argument.value}1", f"{argument.value}2"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--json-response", action="store_true")
    p.add_argument("--stateless", action="store_true")
    p.add_argument("--sse", action="store_true")
    a = p.parse_args()
    global RECORD
    RECORD = a.record
    if a.sse:
        app = server.sse_app(
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            host="127.0.0.1",
        )
        uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning")
        return
    app = server.streamable_http_app(
        json_response=a.json_response,
        stateless_http=a.stateless,
        # Behind Envoy the Host header names Envoy's listener.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        host="127.0.0.1",
    )
    uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
