"""Tenant scale on the embedded store: creation rate, memory per tenant, load, cold start.

    .venv/bin/python bench/scale.py                          # 10,000 tenants (issue 16)
    .venv/bin/python bench/scale.py --tenants 2000 --duration 5   # a few minutes
    .venv/bin/python bench/scale.py --tenants 20 --duration 1     # the CI smoke size

Two `tenantvault serve --data-dir` servers run side by side: *large* gets `--tenants`
tenants, *small* `--baseline-tenants` (10). Every tenant gets `--secrets` secrets (3),
`--policies` policies (2) and `--tokens` tokens (2), created over HTTP with the root token,
`--concurrency` tenants at a time (16), as an operator's provisioning script would.
Reported (one JSON document on stdout, the lines before it for people):

- **creation rate**: tenants fully set up per second on *large* (target >= 50/s);
- **memory per idle tenant**: large's RSS after creating all tenants minus its RSS after the
  first `--baseline-tenants` and a warm-up load, over the tenants in between (target <= 20 KiB);
- **load at scale**: the same closed-loop reads (bench/loadgen.py, `--connections` 64, with
  tenant tokens, each tenant reading its own secret) on both servers, spread over
  `--load-tenants` (10) tenants evenly chosen among each server's tenants, alternating
  servers over `--repeats` (3): median ops/s and p99 of large relative to small (target: within
  10 %);
- **cold start**: each store stopped (SIGTERM) and started again; the time from the process
  start until a tenant token's first read answers 200 (target <= 2 s), for large and, as
  the reference for what starting Python and tenantvault costs anyway, for small.

Creating 10,000 tenants takes minutes: `--save-store DIR` keeps the large store (its data
directory, root token and the tenants' tokens, owner-only) after the run, and `--reuse-store
DIR` runs the load and cold start on a copy of it instead of creating the tenants again
(no creation or memory figures then; the copy is thrown away, DIR stays as it was).
A store that was just started runs its background passes over every tenant once at start:
`--settle` waits that long before the load, as a store that has been up for a while would.

    .venv/bin/python bench/scale.py --tenants 10000 --save-store /tmp/scale-10000
    .venv/bin/python bench/scale.py --reuse-store /tmp/scale-10000 --settle 30 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _cells
import _scenarios
import _servers
import aiohttp
from _servers import Server

POLL_SECONDS = 0.01
COLD_START_LIMIT_SECONDS = 60.0


def _policy(index: int) -> str:
    return f'path "secret/data/app{index}/*" {{ capabilities = ["create", "read", "update"] }}'


async def _tenant(
    session: aiohttp.ClientSession, server: Server, name: str, args: argparse.Namespace
) -> str:
    """Create and equip one tenant; return the token its load will use."""
    root = {"X-Vault-Token": server.root_token}
    inside = {**root, "X-Vault-Namespace": name}

    async def call(path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Any:
        async with session.post(f"{server.url}/v1/{path}", json=body, headers=headers) as answer:
            text = await answer.text()
            if answer.status >= 300:
                raise SystemExit(f"error: {server.name}: POST {path}: {answer.status} {text[:200]}")
            return json.loads(text) if text else {}

    await call(f"sys/namespaces/{name}", None, root)
    for index in range(args.policies):
        await call(f"sys/policies/acl/app{index}", {"policy": _policy(index)}, inside)
    for index in range(args.secrets):
        data = {"data": {"username": f"{name}-{index}", "password": "p4ssw0rd-" + "x" * 24}}
        await call(f"secret/data/app0/s{index}", data, inside)
    tokens = []
    for index in range(args.tokens):
        body = {"policies": [f"app{index % max(1, args.policies)}"], "ttl": "768h"}
        created = await call("auth/token/create", body, inside)
        tokens.append(created["auth"]["client_token"])
    first: str = tokens[0]
    return first


async def _create(server: Server, names: list[str], args: argparse.Namespace) -> dict[str, str]:
    """Create `names` with `--concurrency` at a time; return tenant -> its first token."""
    tokens: dict[str, str] = {}
    pending = iter(names)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for name in pending:
                tokens[name] = await _tenant(session, server, name, args)

        async with asyncio.TaskGroup() as group:
            for _ in range(args.concurrency):
                group.create_task(worker())
    return tokens


def _names(first: int, last: int) -> list[str]:
    return [f"t{index:05d}" for index in range(first, last)]


def _spread(names: list[str], count: int) -> list[str]:
    """`count` names evenly spread over `names` (first and last included)."""
    if count >= len(names):
        return names
    step = (len(names) - 1) / max(1, count - 1)
    return [names[round(index * step)] for index in range(count)]


def _first(tokens: dict[str, str], count: int) -> dict[str, str]:
    """The first `count` tenants of `tokens` by name (a saved store's baseline tenants)."""
    return {name: tokens[name] for name in sorted(tokens)[:count]}


def _load_file(tokens: dict[str, str], path: Path) -> Path:
    """A request file of reads, each tenant of `tokens` reading its own secret."""
    requests = [
        _scenarios.request("GET", "secret/data/app0/s0", token=token, tenant=name)
        for name, token in tokens.items()
    ]
    return _scenarios.write_file(path, requests)


def _read_once(url: str, tenant: str, token: str) -> int:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        headers = {"X-Vault-Token": token, "X-Vault-Namespace": tenant}
        connection.request("GET", "/v1/secret/data/app0/s0", headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _cold_start(server: Server, workdir: Path, tenant: str, token: str) -> dict[str, Any]:
    """Restart `server` on its store; time until `token` reads its secret."""
    _servers.stop(server)
    data_dir = workdir / f"{server.name}-data"
    began = time.monotonic()
    restarted = _servers.start(server.name, workdir, data_dir=data_dir, wait=False)
    status = 0
    while time.monotonic() - began < COLD_START_LIMIT_SECONDS:
        if restarted.process.poll() is not None:
            raise SystemExit(f"error: restart exited; its log: {restarted.log}")
        try:
            status = _read_once(restarted.url, tenant, token)
        except OSError:
            status = 0
        if status == 200:
            break
        time.sleep(POLL_SECONDS)
    seconds = time.monotonic() - began
    memory = restarted.memory_kib()
    _servers.stop(restarted)
    return {"seconds": round(seconds, 3), "status": status, "rss_kib": memory["rss_kib"]}


def _create_rest(large: Server, args: argparse.Namespace, report: dict[str, Any]) -> dict[str, str]:
    """Create the tenants after the baseline ones on `large`: the creation and memory figures."""
    before = large.memory_kib()["rss_kib"]
    rest = _names(args.baseline_tenants, args.tenants)
    began = time.monotonic()
    tokens = asyncio.run(_create(large, rest, args))
    seconds = time.monotonic() - began
    after = large.memory_kib()["rss_kib"]
    report["creation"] = {
        "tenants": len(rest),
        "seconds": round(seconds, 2),
        "tenants_per_s": round(len(rest) / seconds, 1),
        "requests_per_tenant": 1 + args.policies + args.secrets + args.tokens,
    }
    report["memory"] = {
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_tenant": round((after - before) / len(rest), 2),
    }
    print(f"creation: {report['creation']}\nmemory: {report['memory']}", flush=True)
    return tokens


def _measure_load(
    servers: dict[str, Server], files: dict[str, Path], args: argparse.Namespace
) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    for repeat in range(args.repeats):
        order = list(servers) if repeat % 2 == 0 else list(reversed(servers))
        for name in order:
            run = _cells.loadgen(
                servers[name],
                files[name],
                rate=0,
                connections=args.connections,
                seconds=args.duration,
                processes=args.processes,
            )
            runs[name].append(run)
            print(
                f"load {name:<6} repeat {repeat + 1}: {run['ops_per_s']:,.0f} ops/s "
                f"p99 {run['p99_ms']} ms cpu {run['cpu_ms_per_1k'] or 0:.0f} ms/1k "
                f"errors {run['errors']} (load {run['load1_before']:.1f})",
                flush=True,
            )
    result: dict[str, Any] = {}
    for name, cells in runs.items():
        result[name] = {
            "ops_per_s": statistics.median(cell["ops_per_s"] for cell in cells),
            "p99_ms": statistics.median(cell["p99_ms"] or 0.0 for cell in cells),
            # Server CPU per request: less sensitive than ops/s to what else the machine runs.
            "cpu_ms_per_1k": statistics.median(cell["cpu_ms_per_1k"] or 0.0 for cell in cells),
            "errors": sum(cell["errors"] for cell in cells),
            "requests": sum(cell["loadgen"]["scheduled"] for cell in cells),
            "answered": sum(cell["answered"] for cell in cells),
        }
    large, small = result["large"], result["small"]
    result["ops_ratio"] = large["ops_per_s"] / small["ops_per_s"] if small["ops_per_s"] else None
    result["p99_ratio"] = large["p99_ms"] / small["p99_ms"] if small["p99_ms"] else None
    cpu = small["cpu_ms_per_1k"]
    result["cpu_ratio"] = large["cpu_ms_per_1k"] / cpu if cpu else None
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the scale bench; print the figures and one JSON document."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--baseline-tenants", type=int, default=10)
    parser.add_argument("--secrets", type=int, default=3)
    parser.add_argument("--policies", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="tenants created at once")
    parser.add_argument("--load-tenants", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load cell")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load first")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--output", type=Path, help="also write the JSON document here")
    parser.add_argument("--save-store", type=Path, help="keep the large store here afterwards")
    parser.add_argument(
        "--reuse-store", type=Path, help="load a copy of a store saved by --save-store"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds to wait before the load (a reused store's start-up passes)",
    )
    args = parser.parse_args(argv)
    if args.reuse_store is None and args.tenants <= args.baseline_tenants:
        parser.error("--tenants must exceed --baseline-tenants")
    if args.save_store is not None and args.save_store.exists():
        if not (args.save_store / _SAVED_TOKENS).is_file():  # found out before, not after
            parser.error(f"--save-store {args.save_store} exists and is not a saved store")

    workdir = Path(tempfile.mkdtemp(prefix="tenantvault-scale-"))
    workdir.chmod(0o700)
    settings = {"output": str(args.output), "save_store": str(args.save_store)}
    report: dict[str, Any] = {
        "settings": vars(args) | settings | {"reuse_store": str(args.reuse_store)}
    }
    started: list[Server] = []
    try:
        if args.reuse_store is not None:
            large, large_tokens = _reuse_store(args.reuse_store, workdir)
            report["settings"]["tenants"] = len(large_tokens)
        else:
            large = _servers.start(_servers.SQLITE, workdir)
        started.append(large)
        small = _start_small(workdir)
        started.append(small)
        first = _names(0, args.baseline_tenants)
        small_tokens = asyncio.run(_create(small, first, args))
        if args.reuse_store is None:
            large_tokens = asyncio.run(_create(large, first, args))
        # Warm both up (pools, allocator, caches) before the memory baseline is taken.
        warm = {"large": _first(large_tokens, len(first)), "small": small_tokens}
        servers = {"large": large, "small": small}
        server_dirs = {"large": workdir, "small": workdir / "small"}
        for name, server in servers.items():
            path = _load_file(warm[name], workdir / f"{name}-warm.req")
            _cells.loadgen(server, path, rate=0, connections=16, seconds=args.warmup, processes=1)
        if args.reuse_store is None:
            large_tokens |= _create_rest(large, args, report)
        every = sorted(large_tokens)
        chosen = {
            "large": {name: large_tokens[name] for name in _spread(every, args.load_tenants)},
            "small": {name: small_tokens[name] for name in _spread(first, args.load_tenants)},
        }
        files = {name: _load_file(chosen[name], workdir / f"{name}.req") for name in servers}
        time.sleep(args.settle)
        report["load"] = _measure_load(servers, files, args)
        print(f"load: {report['load']}", flush=True)
        report["server_logs"] = {name: _servers.log_problems(servers[name]) for name in servers}
        # Both stores restart, so that the time the large one needs beyond the small one's
        # (interpreter start and imports are most of it) is what the tenant count costs.
        report["cold_start"] = {}
        for name, server in servers.items():
            tenant, token = next(iter(chosen[name].items()))
            report["cold_start"][name] = _cold_start(server, server_dirs[name], tenant, token)
            started.remove(server)
        print(f"cold start: {report['cold_start']}", flush=True)
        if args.save_store is not None:
            _save_store(workdir, large_tokens, args.save_store)
            print(f"large store saved in {args.save_store}", flush=True)
    finally:
        for server in started:
            _servers.stop(server)
    print(json.dumps(report), flush=True)
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


# A saved store's files (`--save-store`, `--reuse-store`).
_SAVED_DATA, _SAVED_ROOT, _SAVED_TOKENS = "data", "root-token", "tokens.json"


def _large_paths(workdir: Path) -> tuple[Path, Path]:
    """Where `_servers.start` keeps the large store's data and root token in `workdir`."""
    return workdir / f"{_servers.SQLITE}-data", workdir / f"{_servers.SQLITE}-root-token"


def _save_store(workdir: Path, tokens: dict[str, str], target: Path) -> None:
    """Keep the (stopped) large store, its root token and tenant tokens in `target`."""
    data, root = _large_paths(workdir)
    if target.exists():
        # Only ever replace an earlier saved store, never whatever else the path names.
        if not (target / _SAVED_TOKENS).is_file():
            raise SystemExit(f"error: --save-store {target} exists and is not a saved store")
        shutil.rmtree(target)
    target.mkdir(mode=0o700, parents=True)
    shutil.copytree(data, target / _SAVED_DATA)
    shutil.copy2(root, target / _SAVED_ROOT)
    saved = target / _SAVED_TOKENS
    saved.write_text(json.dumps(tokens, sort_keys=True) + "\n")
    saved.chmod(0o600)


def _reuse_store(source: Path, workdir: Path) -> tuple[Server, dict[str, str]]:
    """Start the large server on a copy of a saved store; return it and its tenant tokens."""
    data, root = _large_paths(workdir)
    try:
        tokens: dict[str, str] = json.loads((source / _SAVED_TOKENS).read_text())
        shutil.copytree(source / _SAVED_DATA, data)
        shutil.copy2(source / _SAVED_ROOT, root)
    except OSError as error:
        raise SystemExit(f"error: --reuse-store {source}: {error}") from None
    return _servers.start(_servers.SQLITE, workdir, data_dir=data), tokens


def _start_small(workdir: Path) -> Server:
    """The 10-tenant comparison store, in a directory of its own."""
    small_dir = workdir / "small"
    small_dir.mkdir(mode=0o700)
    return _servers.start(_servers.SQLITE, small_dir)


if __name__ == "__main__":
    sys.exit(main())
