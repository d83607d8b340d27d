"""A/B of two source trees on one server kind, side by side: CPU per request and ops/s.

A is `--baseline-src` (default: `git archive HEAD` of src/, i.e. the last commit), B is
`--candidate-src` (default: the working tree). Both servers run at once and take the load
alternately, cell by cell, so a busy machine slows both alike; compare the ratio, not the
absolute numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import _cells
import _scenarios
import _servers

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def _python_path(path: str | None) -> Iterator[None]:
    """Servers started inside import tenantvault from `path` (None: the installed tree)."""
    before = os.environ.get("PYTHONPATH")
    if path is not None:
        os.environ["PYTHONPATH"] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def _head_src(folder: Path) -> Path:
    """src/ of the last commit, unpacked into `folder`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "HEAD", "src"], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "src"


def _requests(server: _servers.Server, scenario: str, tag: str, workdir: Path) -> Path:
    """The request file of one cell of `scenario` on `server`."""
    requests = _scenarios.render(server, scenario, tag, tenants=50)
    return _scenarios.write_file(workdir / f"{server.name}-{server.url[-5:]}-{tag}", requests)


def main() -> None:
    """Run the A/B and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-src", help="a src/ directory (default: HEAD's)")
    parser.add_argument("--candidate-src", help="a src/ directory (default: the working tree)")
    parser.add_argument("--server", default="tenantvault-dev")
    parser.add_argument("--scenario", default="read")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-access-log", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        baseline = args.baseline_src or str(_head_src(workdir))
        servers = {}
        try:
            for label, path in (("A", baseline), ("B", args.candidate_src)):
                (workdir / label).mkdir()
                with _python_path(path):
                    servers[label] = _servers.start(
                        args.server, workdir / label, access_log=not args.no_access_log
                    )
            for server in servers.values():
                _scenarios.prepare(server, [args.scenario], tenants=50, as_root=False)
                _cells.wrk(server, _requests(server, args.scenario, "warm", workdir), 64, 2)

            cells: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
            for repeat in range(args.repeats):
                order = ("A", "B") if repeat % 2 == 0 else ("B", "A")
                for label in order:
                    # A tag per cell: writes go to new paths (a CAS create would fail else).
                    requests = _requests(servers[label], args.scenario, f"c{repeat}", workdir)
                    cell = _cells.wrk(servers[label], requests, args.connections, args.seconds)
                    cells[label].append(cell)
            medians = {
                label: {
                    key: statistics.median(float(c[key]) for c in results)
                    for key in ("ops_per_s", "cpu_ms_per_1k", "p99_ms")
                }
                for label, results in cells.items()
            }
            for label in ("A", "B"):
                m = medians[label]
                print(
                    f"{label}: {m['ops_per_s']:8,.0f} ops/s  {m['cpu_ms_per_1k']:6,.0f} ms CPU/1k"
                    f"  p99 {m['p99_ms']:6,.1f} ms"
                )
            a, b = medians["A"], medians["B"]
            print(
                f"B/A: ops/s {b['ops_per_s'] / a['ops_per_s']:.3f}x, "
                f"CPU per request {b['cpu_ms_per_1k'] / a['cpu_ms_per_1k']:.3f}x"
            )
        finally:
            for server in servers.values():
                _servers.stop(server)


if __name__ == "__main__":
    main()
