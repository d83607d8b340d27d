"""Upstream faults through a TCP fault proxy between tenantvault and OpenBao: each answers
its documented status within the timeout, leaves nothing half-written, and service comes
back by itself when the fault ends.

| fault                 | read | KV write | new key | why                                      |
|-----------------------|------|----------|---------|------------------------------------------|
| down (refused)        | 503  | 503      | 503     | nothing was sent: "try again" is true    |
| slow (beyond timeout) | 504  | 504      | 504     | no answer in time: the outcome unknown   |
| resetting connections | 503  | 503      | 504     | reads are retried, then refused; a bare  |
|                       |      |          |         | write may have landed: outcome unknown   |
| garbage               | 502  | 502      | 502     | the upstream's answer is not HTTP        |
| sealed                | 503  | 503      | 503     | as Vault: a sealed server is unavailable |

"KV write" is `POST secret/data/<path>`, whose existence check (create or update?) goes
upstream first; "new key" is `POST transit/keys/<name>`, a write with no check before it.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault.upstream import UpstreamSettings
from tests._openbao import OpenBaoDev, running_openbao
from tests.conftest import canary
from tests.integration._support import bao_executable, clean_env
from tests.server.conftest import BASE_URL, Vault
from tests.upstream._fault_proxy import FaultProxy, Mode, fault_proxy
from tests.upstream._gateway_app import gateway_app, tenancy_for

# Short enough to keep the suite fast, long enough for a loaded CI machine's dev server.
_TIMEOUT_SECONDS = 1.0
# A bound on how long any faulty request may take: the timeout, a retry and its backoff.
_ANSWER_BOUND_SECONDS = 10 * _TIMEOUT_SECONDS
_RECOVERY_ATTEMPTS = 200


@dataclass
class Faulty:
    """tenantvault whose upstream is reached through `proxy`; tenant `acme` exists."""

    vault: Vault
    proxy: FaultProxy

    async def timed(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request in acme, which must be answered (never hang) within the bound."""
        request = self.vault.root(method, path, namespace="acme", **kwargs)
        return await asyncio.wait_for(request, _ANSWER_BOUND_SECONDS)

    async def recovered(self) -> httpx.Response:
        """Read until the service answers again by itself (the breaker lets a probe in)."""
        for _ in range(_RECOVERY_ATTEMPTS):
            response = await self.vault.root("GET", "secret/data/seed", namespace="acme")
            if response.status_code == 200:
                return response
            await asyncio.sleep(0.05)
        pytest.fail("tenantvault did not recover after the fault ended")


def _client_settings(address: str, breaker_threshold: int) -> UpstreamSettings:
    return UpstreamSettings(
        address,
        timeout_seconds=_TIMEOUT_SECONDS,
        connect_timeout_seconds=_TIMEOUT_SECONDS,
        retries=1,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.05,
        breaker_threshold=breaker_threshold,
        breaker_reset_seconds=0.2,
    )


async def _faulty(
    server: OpenBaoDev, root_token: str, strategy: str, *, breaker_threshold: int = 50
) -> AsyncIterator[Faulty]:
    """A fresh tenantvault behind a fresh proxy; the breaker trips only past
    `breaker_threshold` failures in a row (high by default: each status shows unmasked)."""
    settings = ServerSettings(dev=True, dev_root_token=root_token)
    async with fault_proxy(server.addr) as proxy:
        async with gateway_app(
            settings,
            server,
            tenancy_for(strategy),
            client_settings=_client_settings(proxy.addr, breaker_threshold),
        ) as (app, _):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                vault = Vault(client, root_token)
                await vault.create_tenant("acme")
                await vault.put("acme", "seed", {"v": "0"})
                yield Faulty(vault, proxy)


@pytest.fixture(params=["namespace", "prefix"])
async def faulty(
    request: pytest.FixtureRequest, openbao_dev: OpenBaoDev, root_token: str
) -> AsyncIterator[Faulty]:
    async for value in _faulty(openbao_dev, root_token, str(request.param)):
        yield value


@pytest.fixture
def root_token() -> str:
    return canary("root-")


async def _nothing_half_written(faulty: Faulty) -> None:
    """After the fault: the key written during it has no version, or exactly one."""
    read = await faulty.vault.root("GET", "secret/metadata/during", namespace="acme")
    if read.status_code == 404:
        return
    versions = read.json()["data"]["versions"]
    assert list(versions) == ["1"], versions


@pytest.mark.parametrize(
    ("mode", "read_status", "write_status", "create_status"),
    [
        ("down", 503, 503, 503),
        ("slow", 504, 504, 504),
        ("reset", 503, 503, 504),
        ("garbage", 502, 502, 502),
    ],
)
async def test_an_upstream_fault_answers_its_status_and_service_resumes(
    faulty: Faulty, mode: Mode, read_status: int, write_status: int, create_status: int
) -> None:
    await faulty.proxy.set_mode(mode)
    read = await faulty.timed("GET", "secret/data/seed")
    assert read.status_code == read_status, read.text
    assert read.json()["errors"], "a fault is answered with Vault's error shape"
    if read_status == 503:
        assert "retry-after" in read.headers
    written = await faulty.timed("POST", "secret/data/during", json={"data": {"v": canary("kv-")}})
    assert written.status_code == write_status, written.text
    created = await faulty.timed("POST", "transit/keys/during", json={})
    assert created.status_code == create_status, created.text
    await faulty.proxy.set_mode("pass")
    assert (await faulty.recovered()).json()["data"]["data"] == {"v": "0"}
    await _nothing_half_written(faulty)
    # The proxy forwarded nothing during the fault: the key was never made.
    missing = await faulty.vault.root("GET", "transit/keys/during", namespace="acme")
    assert missing.status_code == 404, missing.text
    again = await faulty.vault.root(
        "POST", "secret/data/after", namespace="acme", json={"data": {"v": "1"}}
    )
    assert again.status_code == 200, again.text


async def test_a_slow_upstream_fails_fast_once_the_breaker_opens(
    openbao_dev: OpenBaoDev, root_token: str
) -> None:
    """Past the breaker's threshold, requests are refused at once with 503 and say when to
    come back, instead of each waiting for the upstream's timeout."""
    async for faulty in _faulty(openbao_dev, root_token, "prefix", breaker_threshold=3):
        await faulty.proxy.set_mode("slow")
        for _ in range(3):
            assert (await faulty.timed("GET", "secret/data/seed")).status_code == 504
        refused = await faulty.timed("GET", "secret/data/seed")
        assert refused.status_code == 503, refused.text
        assert "circuit open" in refused.json()["errors"][0]
        assert "retry-after" in refused.headers
        await faulty.proxy.set_mode("pass")
        await faulty.recovered()


async def _unseal_key(log: Path) -> str:
    """The dev server's unseal key, from its output (printed around the time it serves)."""
    for _ in range(100):
        text = await asyncio.to_thread(log.read_text, errors="replace")
        found = re.search(r"Unseal Key: (\S+)", text)
        if found:
            return found.group(1)
        await asyncio.sleep(0.05)
    pytest.fail("bao server -dev printed no unseal key")


async def test_a_sealed_upstream_answers_503_and_service_resumes_when_unsealed(
    tmp_path: Path, root_token: str
) -> None:
    """A private dev server (sealing the session's one would fail other tests)."""
    with running_openbao(tmp_path) as server:
        unseal_key = await _unseal_key(tmp_path / "bao-server.log")

        def operator(*args: str) -> None:
            env = clean_env(tmp_path, BAO_ADDR=server.addr, BAO_TOKEN=server.root_token)
            subprocess.run(
                [str(bao_executable()), "operator", *args],
                check=True,
                capture_output=True,
                env=env,
                timeout=60,
            )

        async for faulty in _faulty(server, root_token, "namespace"):
            await asyncio.to_thread(operator, "seal")
            read = await faulty.timed("GET", "secret/data/seed")
            assert read.status_code == 503, read.text
            assert "retry-after" in read.headers
            written = await faulty.timed(
                "POST", "secret/data/during", json={"data": {"v": canary("kv-")}}
            )
            assert written.status_code == 503, written.text
            created = await faulty.timed("POST", "transit/keys/during", json={})
            assert created.status_code == 503, created.text
            await asyncio.to_thread(operator, "unseal", unseal_key)
            assert (await faulty.recovered()).json()["data"]["data"] == {"v": "0"}
            await _nothing_half_written(faulty)
