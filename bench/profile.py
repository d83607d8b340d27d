"""Profile a tenantvault server under closed-loop load: py-spy hot frames, CPU per request."""

from __future__ import annotations

import argparse
import collections
import subprocess
import tempfile
from pathlib import Path

import _cells
import _scenarios
import _servers


def _summarise(raw: Path, top: int) -> str:
    """Inclusive and self shares of the event loop thread's frames from py-spy's raw output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        # Active (non-idle) samples per thread: where the process's CPU goes besides the loop.
        threads[stack.split(";", 1)[0]] += count
        if "MainThread" not in stack.split(";", 1)[0]:
            continue
        frames = stack.split(";")[1:]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    every = sum(threads.values()) or 1
    lines = ["active samples by thread:"]
    lines += [f"{100 * n / every:5.1f}% {name}" for name, n in threads.most_common(8)]
    lines += ["", f"main-thread samples: {total}", "", "inclusive:"]
    lines += [f"{100 * n / total:5.1f}% {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"{100 * n / total:5.1f}% {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    """Start the server, load it with wrk, sample it with py-spy, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="tenantvault-dev")
    parser.add_argument("--scenario", default="read")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--raw", type=Path, help="also keep py-spy's raw samples here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        server = _servers.start(args.server, workdir, access_log=not args.no_access_log)
        try:
            _scenarios.prepare(server, [args.scenario], tenants=50, as_root=False)
            requests = _scenarios.write_file(
                workdir / "requests", _scenarios.render(server, args.scenario, "p", tenants=50)
            )
            _cells.wrk(server, requests, args.connections, 3)  # warm-up
            raw = workdir / "profile.txt"
            spy = subprocess.Popen(
                [
                    _servers.program("py-spy"),
                    "record",
                    "--threads",
                    "--format",
                    "raw",
                    "-r",
                    "200",
                    "-d",
                    str(int(args.seconds)),
                    "-o",
                    str(raw),
                    "-p",
                    str(server.process.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            result = _cells.wrk(server, requests, args.connections, args.seconds)
            spy.wait()
            print(
                f"{args.server} {args.scenario}: {result['ops_per_s']:,.0f}/s, "
                f"{result['cpu_ms_per_1k']:,.0f} ms CPU per 1,000 (py-spy attached)"
            )
            print(_summarise(raw, args.top))
            if args.raw:
                args.raw.write_text(raw.read_text())
        finally:
            _servers.stop(server)


if __name__ == "__main__":
    main()
