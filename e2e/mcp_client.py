"""The official Python SDK client (mcp 2.x, Streamable HTTP), with request headers."""
import asyncio
import contextlib

import httpx2
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client


@contextlib.asynccontextmanager
async def session(url, headers=None, modern=False):
    """A connected session: `initialize` (2025 protocols), or with `modern` the 2026-07-28
    `server/discover` handshake (no protocol sessions; every request carries `Mcp-Method`
    and `Mcp-Name`, and `x-mcp-header` arguments go in `Mcp-Param-*` headers)."""
    async with httpx2.AsyncClient(headers=headers or {}, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as s:
                if modern:
                    await s.discover()
                else:
                    await s.initialize()
                yield s


@contextlib.asynccontextmanager
async def sse_session(url, headers=None):
    """A session over the 2024-11-05 HTTP+SSE transport: `url` is the server's GET stream,
    whose `endpoint` event names where the client POSTs (a path with a session query)."""
    async with sse_client(url, headers=headers or {}) as streams:
        async with ClientSession(streams[0], streams[1]) as s:
            await s.initialize()
            yield s


def run(coro):
    return asyncio.run(coro)


def text(result):
    """The text content of a tool result."""
    return "".join(getattr(c, "text", "") for c in result.content)
