"""Fixtures of the observability tests: a real loopback webhook receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, asyncio.Queue[dict[str, Any]]]]:
    """A real loopback HTTP server receiving alerts: (its URL, what it received)."""
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put(await request.json())
        return web.Response(status=204)

    server = web.Application()
    server.router.add_post("/alerts", hook)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/alerts", received
    finally:
        await runner.cleanup()
