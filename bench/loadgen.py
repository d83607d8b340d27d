"""HTTP/1.1 load generator: open loop at a fixed arrival rate (coordinated-omission corrected)
or closed loop, over keep-alive connections spread across worker processes.

Run by bench/run.py, bench/scale.py and bench/soak.py in a process of its own; by hand:

    python bench/loadgen.py --url http://127.0.0.1:8200 --requests FILE \
        --rate 5000 --connections 1000 --duration 20

`FILE` holds raw HTTP/1.1 requests separated by NUL bytes (bench/_scenarios.py writes it;
tokens live in that 0600 file, never on a command line). They are sent in turn, round robin;
in a request the marker `@@@@@@@@@@` is replaced by a unique 10-digit number (2 digits of
worker, 8 of counter; `--key-space K` takes the counter modulo K, so that a long soak writes
a bounded set of keys).

**Open loop** (`--rate R`): request i of a worker is due at `start + i / rate`; a scheduler
hands each due request to an idle connection, or queues it until one is free. Latency is
measured from the *intended* send time, so time spent waiting behind a slow server counts
(a closed-loop tool such as wrk waits for a response before sending the next request and so
hides exactly that queueing: "coordinated omission"). autocannon's `-R` was not used for the
same reason: it throttles each connection and times a request from its actual send. **Closed
loop** (`--rate 0`): each connection sends its next request as soon as the previous answer
arrived, for `--duration` seconds.

Every scheduled request ends in exactly one bucket: a 2xx, a non-2xx status, a socket error
(the connection failed with the request in flight; it is not retried) or unfinished (no answer
within `--drain` seconds after the schedule ended). Prints one JSON line: counts, achieved
2xx/s, latency percentiles (ms), the scheduler's own lateness (if the generator itself cannot
keep up, its p99 shows it) and the generator's CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import multiprocessing
import queue
import resource
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = b"@@@@@@@@@@"
SEPARATOR = b"\0"
CONNECT_TIMEOUT_SECONDS = 10.0
# Each worker process opens its connections, then all start together at a shared instant.
START_SLACK_SECONDS = 0.2


def read_requests(path: Path) -> list[bytes]:
    """The raw requests of a request file (NUL-separated)."""
    requests = [part for part in path.read_bytes().split(SEPARATOR) if part]
    if not requests:
        raise SystemExit(f"error: no requests in {path}")
    return requests


@dataclass
class _Tally:
    """What one worker observed; merged by the parent."""

    scheduled: int = 0
    ok: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: int = 0
    connect_errors: int = 0
    unfinished: int = 0
    first_send: float = math.inf
    last_answer: float = 0.0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    lateness: array[float] = field(default_factory=lambda: array("d"))
    cpu_seconds: float = 0.0


def _response_length(buffer: bytearray) -> tuple[int, int] | None:
    """(status, total length) of the first complete response in `buffer`, or None."""
    header_end = buffer.find(b"\r\n\r\n")
    if header_end < 0:
        return None
    status = int(buffer[9:12])
    body_start = header_end + 4
    # granian writes header names in lower case, Go's net/http canonically: try both before
    # paying for a lower-cased copy of the head.
    at = buffer.find(b"\r\ncontent-length:", 0, header_end)
    if at < 0:
        at = buffer.find(b"\r\nContent-Length:", 0, header_end)
    head = buffer
    if at < 0:
        head = bytearray(buffer[:header_end].lower())
        at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : end if 0 <= end < header_end else header_end])
        total = body_start + length
        return (status, total) if len(buffer) >= total else None
    head = bytearray(buffer[:header_end].lower())
    if b"\r\ntransfer-encoding: chunked" in head:
        position = body_start
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
            position = line_end + 2 + size + 2
            if len(buffer) < position:
                return None
            if size == 0:
                return status, position
    # 1xx, 204 and 304 have no body; any other framing is not something these servers send.
    return status, body_start


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.intended: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, intended: float) -> None:
        assert self.transport is not None
        self.intended = intended
        self.transport.write(self.worker.next_request())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.intended is not None:
            parsed = _response_length(self.buffer)
            if parsed is None:
                return
            status, length = parsed
            del self.buffer[:length]
            intended, self.intended = self.intended, None
            self.worker.answered(self, status, intended)

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.lost(self)


class _Worker:
    """One process's share of the connections and of the rate."""

    def __init__(
        self,
        *,
        index: int,
        host: str,
        port: int,
        requests: list[bytes],
        connections: int,
        rate: float,
        duration: float,
        drain: float,
        key_space: int,
    ) -> None:
        self.index = index
        self.host, self.port = host, port
        self.requests = requests
        self.has_marker = [MARKER in request for request in requests]
        self.connections = connections
        self.rate = rate
        self.duration = duration
        self.drain = drain
        self.key_space = key_space
        self.counter = 0
        self.tally = _Tally()
        self.idle: list[_Connection] = []
        self.pending: collections.deque[float] = collections.deque()
        self.in_flight = 0
        self.stop_at = math.inf
        self.accepting = True
        self.done = asyncio.Event()
        self.open: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def next_request(self) -> bytes:
        slot = self.counter % len(self.requests)
        request = self.requests[slot]
        self.counter += 1
        if self.has_marker[slot]:
            number = self.counter % self.key_space if self.key_space else self.counter
            unique = f"{self.index:02d}{number % 100_000_000:08d}".encode()
            request = request.replace(MARKER, unique)
        return request

    def dispatch(self, intended: float) -> None:
        self.tally.scheduled += 1
        self.in_flight += 1
        if self.idle:
            self.idle.pop().send(intended)
        else:
            self.pending.append(intended)

    def answered(self, connection: _Connection, status: int, intended: float) -> None:
        now = time.monotonic()
        tally = self.tally
        if 200 <= status < 300:
            tally.ok += 1
        else:
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
        tally.latencies.append(now - intended)
        tally.last_answer = now
        self._finished_one()
        self._next(connection, now)

    def _next(self, connection: _Connection, now: float) -> None:
        if not self.accepting:
            return
        if self.pending:
            connection.send(self.pending.popleft())
        elif self.rate == 0 and now < self.stop_at:
            self.dispatch_closed(connection, now)
        else:
            self.idle.append(connection)

    def dispatch_closed(self, connection: _Connection, now: float) -> None:
        self.tally.scheduled += 1
        self.in_flight += 1
        self.tally.first_send = min(self.tally.first_send, now)
        connection.send(now)

    def lost(self, connection: _Connection) -> None:
        self.open.discard(connection)
        if not self.accepting:
            return  # closed by us at the end: its request, if any, is counted as unfinished
        if connection in self.idle:
            self.idle.remove(connection)
        if connection.intended is not None:
            connection.intended = None
            self.tally.socket_errors += 1
            self._finished_one()
        # Keep the connection count: a server that closes one gets a fresh one.
        task = asyncio.get_running_loop().create_task(self._replace())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _replace(self) -> None:
        connection = await self._open()
        if connection is not None:
            self._next(connection, time.monotonic())

    def _finished_one(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and time.monotonic() >= self.stop_at:
            self.done.set()

    async def _open(self) -> _Connection | None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self), self.host, self.port),
                CONNECT_TIMEOUT_SECONDS,
            )
        except (OSError, TimeoutError):
            self.tally.connect_errors += 1
            return None
        self.open.add(connection)
        return connection

    async def run(self, barrier: Any) -> _Tally:
        opened = await asyncio.gather(*(self._open() for _ in range(self.connections)))
        connections = [connection for connection in opened if connection is not None]
        # All workers start together, once every one of them holds its connections.
        await asyncio.to_thread(barrier.wait, CONNECT_TIMEOUT_SECONDS * 6)
        start = time.monotonic() + START_SLACK_SECONDS
        self.stop_at = start + self.duration
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        cpu_before = _cpu_seconds()
        if self.rate > 0:
            self.idle = list(connections)
            await self._schedule(start)
        else:
            now = time.monotonic()
            for connection in connections:
                self.dispatch_closed(connection, now)
            await asyncio.sleep(max(0.0, self.stop_at - time.monotonic()))
        if self.in_flight > 0:
            self.done.clear()
            remaining = self.stop_at + self.drain - time.monotonic()
            try:
                await asyncio.wait_for(self.done.wait(), max(0.0, remaining))
            except TimeoutError:
                pass
        self.accepting = False
        self.tally.unfinished = self.in_flight
        self.tally.cpu_seconds = _cpu_seconds() - cpu_before
        for connection in list(self.open):
            if connection.transport is not None:
                connection.transport.close()
        return self.tally

    async def _schedule(self, start: float) -> None:
        total = round(self.rate * self.duration)
        interval = 1.0 / self.rate
        lateness = self.tally.lateness
        self.tally.first_send = start
        sent = 0
        while sent < total:
            now = time.monotonic()
            # Every request whose time has come goes out now, however late the wake-up was.
            while sent < total and start + sent * interval <= now:
                intended = start + sent * interval
                lateness.append(now - intended)
                self.dispatch(intended)
                sent += 1
            if sent < total:
                await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker_main(arguments: dict[str, Any], barrier: Any, results: Any) -> None:
    """Entry point of one worker process: run, then send the tally to the parent."""
    requests = read_requests(Path(arguments.pop("requests_file")))
    worker = _Worker(requests=requests, **arguments)
    tally = asyncio.run(worker.run(barrier))
    # Plain types across the process boundary (the arrays as bytes): no class to unpickle.
    fields = {name: getattr(tally, name) for name in tally.__dataclass_fields__}
    fields["latencies"] = tally.latencies.tobytes()
    fields["lateness"] = tally.lateness.tobytes()
    results.put(fields)


def _tally(fields: dict[str, Any]) -> _Tally:
    latencies, lateness = array("d"), array("d")
    latencies.frombytes(fields.pop("latencies"))
    lateness.frombytes(fields.pop("lateness"))
    return _Tally(**fields, latencies=latencies, lateness=lateness)


def _percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _summary(tallies: list[_Tally], *, rate: float, duration: float) -> dict[str, Any]:
    latencies = sorted(value for tally in tallies for value in tally.latencies)
    lateness = sorted(value for tally in tallies for value in tally.lateness)
    statuses: collections.Counter[int] = collections.Counter()
    for tally in tallies:
        statuses.update(tally.statuses)
    ok = sum(tally.ok for tally in tallies)
    first = min(tally.first_send for tally in tallies)
    last = max(tally.last_answer for tally in tallies)
    # Achieved rate over the time it took: the schedule, stretched if answers came in late.
    window = max(duration, last - first) if ok else duration
    non_2xx = sum(statuses.values())
    socket_errors = sum(tally.socket_errors for tally in tallies)
    unfinished = sum(tally.unfinished for tally in tallies)

    def ms(ordered: list[float], fraction: float) -> float | None:
        return round(1000 * _percentile(ordered, fraction), 3) if ordered else None

    return {
        "mode": "open" if rate > 0 else "closed",
        "target_rate": rate,
        "duration_s": duration,
        "scheduled": sum(tally.scheduled for tally in tallies),
        "ok": ok,
        "non_2xx": non_2xx,
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "socket_errors": socket_errors,
        "connect_errors": sum(tally.connect_errors for tally in tallies),
        "unfinished": unfinished,
        "errors": non_2xx + socket_errors + unfinished,
        "ops_per_s": round(ok / window, 1),
        "p50_ms": ms(latencies, 0.50),
        "p99_ms": ms(latencies, 0.99),
        "p999_ms": ms(latencies, 0.999),
        "max_ms": round(1000 * latencies[-1], 3) if latencies else None,
        "generator_lateness_p99_ms": ms(lateness, 0.99),
        "generator_cpu_s": round(sum(tally.cpu_seconds for tally in tallies), 3),
    }


def run(
    *,
    url: str,
    requests_file: Path,
    rate: float,
    connections: int,
    duration: float,
    processes: int,
    drain: float = 10.0,
    key_space: int = 0,
) -> dict[str, Any]:
    """Run the load in `processes` worker processes and return the merged summary."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    processes = max(1, min(processes, connections))
    # spawn, not fork: a worker starts clean, with no copy of this process's state.
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = []
    for index in range(processes):
        share = connections // processes + (1 if index < connections % processes else 0)
        arguments = {
            "index": index,
            "host": host,
            "port": int(port),
            "requests_file": str(requests_file),
            "connections": share,
            "rate": rate * share / connections,
            "duration": duration,
            "drain": drain,
            "key_space": key_space,
        }
        worker = context.Process(target=_worker_main, args=(arguments, barrier, results))
        worker.start()
        workers.append(worker)
    deadline = time.monotonic() + duration + drain + 120
    try:
        tallies = [
            _tally(results.get(timeout=max(1.0, deadline - time.monotonic()))) for _ in workers
        ]
    except queue.Empty:
        raise SystemExit("error: a load generator worker failed (see its traceback)") from None
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    summary = _summary(tallies, rate=rate, duration=duration)
    summary.update(connections=connections, processes=processes)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run, print the summary as one JSON line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", required=True, help="http://HOST:PORT")
    parser.add_argument("--requests", type=Path, required=True, help="NUL-separated requests")
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s; 0: closed loop")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--drain", type=float, default=10.0, help="seconds to wait for answers")
    parser.add_argument("--key-space", type=int, default=0, help="bound on unique numbers")
    args = parser.parse_args(argv)
    summary = run(
        url=args.url,
        requests_file=args.requests,
        rate=args.rate,
        connections=args.connections,
        duration=args.duration,
        processes=args.processes,
        drain=args.drain,
        key_space=args.key_space,
    )
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
