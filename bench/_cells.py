"""One measured cell: a load (wrk closed loop, or bench/loadgen.py) against one server.

The load runs in a process of its own; around it the server's CPU time and peak RSS are
read from /proc, so every cell reports the same columns whichever tool made the load.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from _servers import Server, program

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "wrk" / "requests.lua"
LOADGEN = BENCH_DIR / "loadgen.py"
WRK_TIMEOUT = "10s"
COLUMNS = ("ops_per_s", "p50_ms", "p99_ms", "p999_ms", "max_ms", "cpu_ms_per_1k", "peak_rss_mib")


def _around(server: Server, load: Any) -> dict[str, Any]:
    """Run `load()` (returns the load's own figures) with the server's /proc figures around."""
    server.reset_peak_rss()
    load1 = os.getloadavg()[0]
    cpu_before = server.cpu_seconds()
    result: dict[str, Any] = load()
    cpu = server.cpu_seconds() - cpu_before
    answered = result["answered"]
    result.update(
        cpu_ms_per_1k=1e6 * cpu / answered if answered else None,
        peak_rss_mib=server.memory_kib()["peak_rss_kib"] / 1024,
        load1_before=load1,
    )
    return result


def wrk(server: Server, requests: Path, connections: int, seconds: float) -> dict[str, Any]:
    """A closed-loop cell under wrk (1 thread for 1 connection, else one per CPU)."""
    threads = 1 if connections == 1 else min(connections, os.cpu_count() or 1)
    command = [program("wrk"), f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s"]
    # A slow answer must count in the percentiles rather than vanish as a timeout.
    command += [f"--timeout={WRK_TIMEOUT}", f"--script={LUA_SCRIPT}", server.url]

    def load() -> dict[str, Any]:
        env = {**os.environ, "BENCH_REQUESTS": str(requests)}
        finished = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False
        )
        line = next(
            (line for line in finished.stdout.splitlines() if line.startswith("BENCH_RESULT ")),
            None,
        )
        if finished.returncode != 0 or line is None:
            raise SystemExit(f"error: wrk failed:\n{finished.stdout}\n{finished.stderr}")
        raw: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
        ok = raw["requests"] - raw["status_errors"]
        # Without a single response wrk reports percentiles of 0, which would read as "instant".
        answered = raw["requests"] > 0

        def ms(key: str) -> float | None:
            return raw[key] / 1000 if answered else None

        socket_errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors"))
        return {
            "answered": raw["requests"],
            "ops_per_s": ok / (raw["duration_us"] / 1e6),
            "p50_ms": ms("p50_us"),
            "p99_ms": ms("p99_us"),
            "p999_ms": ms("p999_us"),
            "max_ms": ms("max_us"),
            "errors": raw["status_errors"] + socket_errors + raw["timeouts"],
            "wrk": raw,
        }

    return _around(server, load)


def loadgen(
    server: Server,
    requests: Path,
    *,
    rate: float,
    connections: int,
    seconds: float,
    processes: int,
    key_space: int = 0,
) -> dict[str, Any]:
    """An open-loop (rate > 0) or closed-loop cell under bench/loadgen.py."""
    command = [sys.executable, str(LOADGEN), "--url", server.url, "--requests", str(requests)]
    command += ["--rate", f"{rate:g}", "--connections", str(connections)]
    command += ["--duration", f"{seconds:g}", "--processes", str(processes)]
    command += ["--key-space", str(key_space)]

    def load() -> dict[str, Any]:
        finished = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 300, check=False
        )
        lines = finished.stdout.strip().splitlines()
        if finished.returncode != 0 or not lines:
            raise SystemExit(f"error: loadgen failed:\n{finished.stdout}\n{finished.stderr}")
        raw: dict[str, Any] = json.loads(lines[-1])
        return {
            "answered": raw["ok"] + raw["non_2xx"],
            **{key: raw[key] for key in ("ops_per_s", "p50_ms", "p99_ms", "p999_ms", "max_ms")},
            "errors": raw["errors"],
            "loadgen": raw,
        }

    return _around(server, load)


def median_cell(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each column over the repeats of a cell; errors are summed."""

    def median(key: str) -> float | None:
        values = [run[key] for run in runs if run[key] is not None]
        return statistics.median(values) if values else None

    return {
        **{key: median(key) for key in COLUMNS},
        "errors": sum(run["errors"] for run in runs),
        "repeats": len(runs),
    }
