#!/usr/bin/env python3
"""HA drill: two tenantvault instances in front of a 3-node OpenBao Raft cluster; kill things.

    .venv/bin/python scripts/ha_failover.py            # full drill (~2 minutes)
    .venv/bin/python scripts/ha_failover.py --quick    # the shortened one CI runs (~1 minute)

What it does, all on loopback with real processes:

1. Starts a 3-node OpenBao Raft cluster (`scripts/raft_cluster.py`) and, in front of it, a
   small load balancer that sends every connection to the node whose `sys/health` answers 200
   (the active one) — as a deployment's load balancer does with Vault's health check.
2. Starts two `tenantvault serve --backend vault+http://<balancer>` instances (gateway mode,
   namespace tenancy, one master key), creates 5 tenants, each with a policy and a token.
3. Runs steady mixed traffic (writes of new versions and reads, every tenant, both
   instances), remembering every acknowledged write.
4. SIGKILLs the Raft leader; traffic goes on. Prints the error burst (first to last failed
   request) and the recovery time (kill to the first success after it).
5. After re-election checks that every acknowledged write is readable, with its value, through
   *both* instances.
6. SIGKILLs one tenantvault instance; the other must keep serving every tenant.

Exit status 0 only if no acknowledged write was lost and both recoveries happened.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from raft_cluster import Node, RaftCluster, _call, _free_port

from tenantvault.cache._settings import DEFAULT_TTL_SECONDS as CACHE_TTL_SECONDS

_TENANTS = 5


class ActiveNodeBalancer:
    """A TCP load balancer that forwards each new connection to the active OpenBao node."""

    def __init__(self, cluster: RaftCluster) -> None:
        self._cluster = cluster
        self._active: Node | None = None
        self.port = _free_port()
        self._server: asyncio.Server | None = None
        self._probe: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self._probe = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        # Vault's health check: 200 only on the active node (standbys answer 429).
        while True:
            active = None
            for node in self._cluster.alive():
                status, _ = await asyncio.to_thread(
                    _call, node.addr, "GET", "sys/health", None, "", 1.0
                )
                if status == 200:
                    active = node
                    break
            self._active = active
            await asyncio.sleep(0.2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        node = self._active
        if node is None:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", node.api_port)
        except OSError:
            writer.close()
            return

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        if self._server is not None:
            self._server.close()


@dataclass
class Instance:
    """One `tenantvault serve` process."""

    name: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Traffic:
    """What the load saw: acknowledged writes, failures by time, successes by time."""

    acknowledged: dict[tuple[str, str], str] = field(default_factory=dict)
    failures: list[tuple[float, str, str]] = field(default_factory=list)
    successes: list[tuple[float, str]] = field(default_factory=list)
    requests: int = 0


def _tenantvault() -> list[str]:
    sibling = Path(sys.executable).with_name("tenantvault")
    return [str(sibling)] if sibling.is_file() else [sys.executable, "-m", "tenantvault.cli"]


def _log_tail(instance: Instance) -> str:
    """The end of an instance's server log (why it stopped)."""
    if instance.log is None or not instance.log.is_file():
        return ""
    return instance.log.read_text(errors="replace")[-3000:]


def _start_instance(
    instance: Instance, directory: Path, balancer_port: int, upstream_token: Path, master_key: Path
) -> None:
    data = directory / instance.name
    data.mkdir(mode=0o700, exist_ok=True)
    instance.log = data / "server.log"
    log = instance.log.open("ab")
    instance.process = subprocess.Popen(  # noqa: S603 -- our own CLI, our own flags
        [
            *_tenantvault(),
            "serve",
            *("--listen", f"127.0.0.1:{instance.port}"),
            *("--backend", f"vault+http://127.0.0.1:{balancer_port}"),
            *("--upstream-token-file", str(upstream_token)),
            *("--upstream-tenancy", "namespace", "--upstream-root", "ha"),
            *("--master-key-file", str(master_key)),
            *("--data-dir", str(data / "data")),
            *("--root-token-file", str(directory / "root-token")),
            "--no-access-log",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()


async def _wait_ready(session: aiohttp.ClientSession, instance: Instance) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if instance.process is not None and instance.process.poll() is not None:
            raise SystemExit(
                f"{instance.name} exited with {instance.process.returncode}:\n{_log_tail(instance)}"
            )
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(f"{instance.url}/v1/sys/health") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise SystemExit(f"{instance.name} did not become ready")


async def _call_tv(
    session: aiohttp.ClientSession,
    instance: Instance,
    method: str,
    path: str,
    token: str,
    *,
    namespace: str | None = None,
    body: Any = None,
) -> tuple[int, Any]:
    headers = {"X-Vault-Token": token}
    if namespace is not None:
        headers["X-Vault-Namespace"] = namespace
    async with session.request(
        method, f"{instance.url}/v1/{path}", headers=headers, json=body
    ) as response:
        payload = await response.json(content_type=None) if response.content_length != 0 else None
        return response.status, payload


async def _setup_tenants(
    session: aiohttp.ClientSession, instance: Instance, root_token: str
) -> dict[str, str]:
    tokens: dict[str, str] = {}
    policy = 'path "secret/*" { capabilities = ["create", "read", "update", "list"] }'
    for i in range(_TENANTS):
        tenant = f"t{i}"
        status, _ = await _call_tv(
            session, instance, "POST", f"sys/namespaces/{tenant}", root_token
        )
        if status != 200:
            raise SystemExit(f"creating tenant {tenant}: {status}")
        await _call_tv(
            session,
            instance,
            "PUT",
            "sys/policies/acl/app",
            root_token,
            namespace=tenant,
            body={"policy": policy},
        )
        status, body = await _call_tv(
            session,
            instance,
            "POST",
            "auth/token/create",
            root_token,
            namespace=tenant,
            body={"policies": ["app"], "ttl": "1h"},
        )
        tokens[tenant] = body["auth"]["client_token"]
    return tokens


async def _worker(
    session: aiohttp.ClientSession,
    instances: list[Instance],
    tokens: dict[str, str],
    traffic: Traffic,
    stop: asyncio.Event,
    worker: int,
) -> None:
    n = 0
    while not stop.is_set():
        live = [i for i in instances if i.process is not None and i.process.poll() is None]
        instance = live[n % len(live)]
        tenant = f"t{(worker + n) % _TENANTS}"
        key = f"w{worker}/k{n % 20}"
        value = f"{worker}-{n}"
        n += 1
        traffic.requests += 1
        started = time.monotonic()
        try:
            status, _body = await _call_tv(
                session,
                instance,
                "POST",
                f"secret/data/{key}",
                tokens[tenant],
                namespace=tenant,
                body={"data": {"v": value}},
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            traffic.failures.append((started, instance.name, type(error).__name__))
            continue
        if status == 200:
            traffic.acknowledged[(tenant, key)] = value
            traffic.successes.append((time.monotonic(), instance.name))
        else:
            traffic.failures.append((started, instance.name, str(status)))
        # A read of what was just acknowledged, through the other instance when there is one.
        other = live[n % len(live)]
        with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
            status, _ = await _call_tv(
                session, other, "GET", f"secret/data/{key}", tokens[tenant], namespace=tenant
            )
            if status == 200:
                traffic.successes.append((time.monotonic(), other.name))


async def _verify(
    session: aiohttp.ClientSession,
    instances: list[Instance],
    tokens: dict[str, str],
    traffic: Traffic,
) -> list[str]:
    """Every acknowledged write, read back through every given instance."""
    lost = []
    for (tenant, key), value in sorted(traffic.acknowledged.items()):
        for instance in instances:
            for _attempt in range(20):
                try:
                    status, body = await _call_tv(
                        session,
                        instance,
                        "GET",
                        f"secret/data/{key}",
                        tokens[tenant],
                        namespace=tenant,
                    )
                except (aiohttp.ClientError, OSError):
                    await asyncio.sleep(0.25)
                    continue
                if status in (502, 503, 504):
                    await asyncio.sleep(0.25)
                    continue
                break
            got = body["data"]["data"]["v"] if status == 200 else f"<{status}>"
            # A later write of the same key may have landed without its acknowledgement
            # reaching us (the leader died mid-answer): the value is then newer, never older.
            if got != value and not _newer(got, value):
                lost.append(f"{instance.name} {tenant}/{key}: {got!r}, acknowledged {value!r}")
    return lost


def _newer(got: str, acknowledged: str) -> bool:
    try:
        gw, gn = (int(x) for x in got.split("-"))
        aw, an = (int(x) for x in acknowledged.split("-"))
    except ValueError:
        return False
    return gw == aw and gn > an


def _burst(traffic: Traffic, since: float) -> tuple[int, float, float]:
    """(failed requests after `since`, their burst length, time to the first success after
    the last failure)."""
    failed = [t for t, _, _ in traffic.failures if t >= since]
    if not failed:
        first_ok = min((t for t, _ in traffic.successes if t >= since), default=since)
        return 0, 0.0, first_ok - since
    last = max(failed)
    recovered = min((t for t, _ in traffic.successes if t > last), default=float("nan"))
    return len(failed), last - min(failed), recovered - since


async def drill(args: argparse.Namespace) -> int:
    """Run the drill; 0 if nothing acknowledged was lost and service recovered."""
    directory = Path(tempfile.mkdtemp(prefix="ha-drill-"))
    cluster = RaftCluster(directory / "raft", 3)
    print("starting a 3-node OpenBao Raft cluster ...", flush=True)
    cluster.start()
    balancer = ActiveNodeBalancer(cluster)
    await balancer.start()
    upstream_token = directory / "upstream-token"
    upstream_token.write_text(cluster.root_token + "\n")
    upstream_token.chmod(0o600)
    master_key = directory / "master.key"
    master_key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    master_key.chmod(0o600)
    instances = [Instance("tv-a", _free_port()), Instance("tv-b", _free_port())]
    status = 1
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            _start_instance(instances[0], directory, balancer.port, upstream_token, master_key)
            await _wait_ready(session, instances[0])
            _start_instance(instances[1], directory, balancer.port, upstream_token, master_key)
            await _wait_ready(session, instances[1])
            root_token = (directory / "root-token").read_text().strip()
            tokens = await _setup_tenants(session, instances[0], root_token)
            traffic = Traffic()
            stop = asyncio.Event()
            workers = [
                asyncio.create_task(_worker(session, instances, tokens, traffic, stop, w))
                for w in range(args.workers)
            ]
            await asyncio.sleep(args.warmup)
            leader = cluster.leader()
            if leader is None:
                raise SystemExit("the cluster has no leader")
            killed_at = time.monotonic()
            print(f"SIGKILL the Raft leader {leader.name} ...", flush=True)
            cluster.kill(leader)
            new_leader = await asyncio.to_thread(cluster.wait_for_leader)
            elected = time.monotonic() - killed_at
            await asyncio.sleep(args.after)
            stop.set()
            await asyncio.gather(*workers)
            failed, burst, recovery = _burst(traffic, killed_at)
            print(f"new leader {new_leader.name} elected after {elected:.1f} s")
            print(
                f"leader kill: {failed} failed requests of {traffic.requests}, error burst "
                f"{burst:.1f} s, service recovered {recovery:.1f} s after the kill"
            )
            # An instance's read cache may hold a value written through the other instance
            # for up to its TTL (the documented cross-instance staleness bound): wait it out,
            # so what is read back is what the store holds.
            await asyncio.sleep(CACHE_TTL_SECONDS + 0.5)
            lost = await _verify(session, instances, tokens, traffic)
            print(
                f"acknowledged writes: {len(traffic.acknowledged)} keys, each read through both "
                f"instances: {len(lost)} lost"
            )
            for line in lost[:10]:
                print("  LOST", line)

            # Now one tenantvault instance dies; the other keeps serving every tenant.
            survivor, victim = instances
            print(f"SIGKILL the tenantvault instance {victim.name} ...", flush=True)
            if victim.process is not None:
                victim.process.send_signal(signal.SIGKILL)
                victim.process.wait()
            second = Traffic()
            stop = asyncio.Event()
            workers = [
                asyncio.create_task(_worker(session, [survivor], tokens, second, stop, w))
                for w in range(args.workers)
            ]
            await asyncio.sleep(args.after)
            stop.set()
            await asyncio.gather(*workers)
            ok = len(second.successes)
            print(
                f"after the instance kill: {survivor.name} served {ok} requests, "
                f"{len(second.failures)} failed"
            )
            lost_after = await _verify(session, [survivor], tokens, second)
            recovered = recovery == recovery  # not NaN
            status = 0 if not lost and not lost_after and recovered and ok > 0 else 1
        finally:
            for instance in instances:
                if instance.process is not None and instance.process.poll() is None:
                    instance.process.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        instance.process.wait(timeout=20)
            await balancer.stop()
            cluster.stop()
    print("PASS" if status == 0 else "FAIL")
    return status


def main() -> int:
    """Parse the options and run the drill."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the shortened drill CI runs")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    args.warmup, args.after = (3.0, 8.0) if args.quick else (10.0, 30.0)
    return asyncio.run(drill(args))


if __name__ == "__main__":
    raise SystemExit(main())
