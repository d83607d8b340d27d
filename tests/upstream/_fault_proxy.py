"""A small asyncio TCP proxy between tenantvault and OpenBao that injects upstream faults.

Modes (`FaultProxy.mode`), switched at any time; each applies to connections opened after
the switch, and `pass` also frees connections held by `slow`:

Every switch first cuts the connections already open (the client's pooled keep-alive
connections included), so the next request meets the new mode.

- `pass`: bytes flow both ways unchanged.
- `down`: the listening socket is closed; connecting is refused, as with a stopped server.
- `slow`: the request is held, never forwarded, until the mode changes (beyond any timeout).
- `reset`: the connection is accepted and reset (RST) as soon as the request arrives.
- `garbage`: the request is read and answered with bytes that are no HTTP at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from typing import Final, Literal

__all__ = ["FaultProxy", "Mode", "fault_proxy"]

Mode = Literal["pass", "down", "slow", "reset", "garbage"]
_CHUNK: Final = 65536
_GARBAGE: Final = b"\x16\x03\x01 this is not HTTP \xff\xfe\r\n\r\n"


class FaultProxy:
    """Listens on 127.0.0.1 (a free port, kept across `down`) and forwards to `target`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.StreamWriter] = set()
        self._resume = asyncio.Event()
        self._mode: Mode = "pass"
        self.port = 0

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mode(self) -> Mode:
        return self._mode

    async def set_mode(self, mode: Mode) -> None:
        """Switch the fault; `down` stops listening, leaving it starts listening again."""
        previous, self._mode = self._mode, mode
        for writer in list(self._open):
            writer.transport.abort()
        if mode == "down" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if previous == "down" and mode != "down":
            await self._listen()
        if mode != "slow":
            self._resume.set()
            self._resume = asyncio.Event()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        await self._listen()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._open.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._open.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self._mode
        if mode == "reset":
            await reader.read(1)
            sock = writer.get_extra_info("socket")
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        if mode == "garbage":
            await reader.read(_CHUNK)
            writer.write(_GARBAGE)
            await writer.drain()
            return
        if mode == "slow":
            await reader.read(1)  # the request has arrived; it goes nowhere
            await self._resume.wait()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._open.add(upstream_writer)
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            self._open.discard(upstream_writer)
            upstream_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError):
            writer.write_eof()


@contextlib.asynccontextmanager
async def fault_proxy(target: str) -> AsyncIterator[FaultProxy]:
    """A running proxy to `target` (`http://HOST:PORT`)."""
    host, _, port = target.removeprefix("http://").partition(":")
    proxy = FaultProxy(host, int(port))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.aclose()
