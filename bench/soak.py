"""Soak: a steady open-loop rate for minutes; the server's RSS and open fds must stay flat.

    .venv/bin/python bench/soak.py                     # 10 minutes (issue 16, acceptance 6)
    .venv/bin/python bench/soak.py --minutes 2 --rate 500

One server (`--server`, default `tenantvault-sqlite`: the embedded store, whose data and
audit store live on disk, so memory has no reason to grow; `tenantvault-dev` keeps both in
memory, its audit store the newest 50,000 entries, so its RSS levels off once that window
is full: at 1,000 requests/s after ~25 s) takes bench/loadgen.py's open loop at `--rate` requests/s
(1,000) over `--connections` (100) for `--minutes`, in the `--scenario` (`mixed`: 80 %
reads, 15 % writes, 5 % encrypts across `--tenants` tenants). The written paths come from
a bounded key space (the generator's counter modulo `--key-space`, 1,000), so the working
set stops growing and steady growth would be a leak. Every `--sample-seconds` (5) the
server's RSS and open file descriptors are read from /proc. After `--warmup-minutes`
(a fifth of the run by default) the RSS is the reference: the report gives the growth from
it to the end of the run (target < 10 %), the spread of the fd count (target: flat) and the
load generator's figures (target: zero errors). One JSON document on stdout, at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _cells
import _scenarios
import _servers


def _sample(server: _servers.Server, began: float) -> dict[str, Any]:
    memory = server.memory_kib()
    return {
        "t_s": round(time.monotonic() - began, 1),
        "rss_kib": memory["rss_kib"],
        "fds": server.open_fds(),
        "cpu_s": round(server.cpu_seconds(), 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the soak; print samples as they come and one JSON document at the end."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup-minutes", type=float, help="default: a fifth of --minutes")
    parser.add_argument("--server", default=_servers.SQLITE)
    parser.add_argument("--scenario", default="mixed", choices=_scenarios.SCENARIOS)
    parser.add_argument("--tenants", type=int, default=_scenarios.MIX_TENANTS)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--key-space", type=int, default=1000)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--output", type=Path, help="also write the JSON document here")
    args = parser.parse_args(argv)
    if args.scenario == "cas-write":
        parser.error("cas-write needs unique keys: a bounded --key-space makes every CAS fail")
    warmup = 60 * (args.minutes / 5 if args.warmup_minutes is None else args.warmup_minutes)
    seconds = 60 * args.minutes

    workdir = Path(tempfile.mkdtemp(prefix="tenantvault-soak-"))
    workdir.chmod(0o700)
    server = _servers.start(args.server, workdir)
    try:
        _scenarios.prepare(server, [args.scenario], tenants=args.tenants, as_root=False)
        requests = _scenarios.render(server, args.scenario, "soak", tenants=args.tenants)
        path = _scenarios.write_file(workdir / "soak.req", requests)
        command = [sys.executable, str(_cells.LOADGEN), "--url", server.url]
        command += ["--requests", str(path), "--rate", f"{args.rate:g}"]
        command += ["--connections", str(args.connections), "--duration", f"{seconds:g}"]
        command += ["--processes", str(args.processes), "--key-space", str(args.key_space)]
        began = time.monotonic()
        samples = [_sample(server, began)]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as load:
            while load.poll() is None:
                time.sleep(args.sample_seconds)
                # A sample after the load ended (its connections closed) is not steady state.
                samples.append(_sample(server, began) | {"under_load": load.poll() is None})
                print(json.dumps(samples[-1]), flush=True)
            output = load.stdout.read() if load.stdout else ""
        if load.returncode != 0 or not output.strip():
            raise SystemExit("error: the load generator failed")
        summary = json.loads(output.strip().splitlines()[-1])
        logs = _servers.log_problems(server)
    finally:
        _servers.stop(server)
    steady = [
        sample for sample in samples if sample.get("under_load") and sample["t_s"] >= warmup
    ] or samples[-1:]
    reference, last = steady[0]["rss_kib"], steady[-1]["rss_kib"]
    fds = [sample["fds"] for sample in steady]
    report = {
        "settings": vars(args) | {"output": str(args.output), "warmup_s": warmup},
        "rss": {
            "after_warmup_kib": reference,
            "end_kib": last,
            "max_kib": max(sample["rss_kib"] for sample in steady),
            "growth_percent": round(100 * (last - reference) / reference, 2),
        },
        "fds": {"min": min(fds), "max": max(fds), "end": fds[-1]},
        "load": summary,
        "server_logs": logs,
        "samples": samples,
    }
    print(json.dumps(report), flush=True)
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
