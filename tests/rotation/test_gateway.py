"""Rotation on the vault backend (gateway mode): two stateless instances in front of one real
OpenBao rotate a tenant's upstream `secret/` without ever rotating it twice at once, and the
versions the upstream holds stay contiguous."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tenantvault._core import Core
from tenantvault._request import Operation
from tenantvault.backends import open_backend
from tenantvault.crypto import random_key
from tenantvault.rotation import RotationBusyError, RotationSettings
from tenantvault.upstream._backend import RECORD_CACHE_SECONDS
from tenantvault.upstream.engines import gateway_for
from tests._openbao import OpenBaoDev, unique_root
from tests.conftest import canary
from tests.rotation.conftest import Ops
from tests.upstream._gateway_app import STRATEGIES


@pytest.fixture(params=STRATEGIES)
async def instances(
    request: pytest.FixtureRequest, openbao_dev: OpenBaoDev, tmp_path: Path
) -> AsyncIterator[tuple[Core, Core]]:
    token_file = tmp_path / "upstream-token"
    token_file.write_text(openbao_dev.root_token)
    token_file.chmod(0o600)
    url = (
        f"{openbao_dev.backend_url}?root={unique_root('rot')}&tenancy={request.param}"
        f"&token_file={token_file}"
    )
    master_key = random_key()
    cores: list[Core] = []
    for _ in range(2):
        backend = await open_backend(url, master_key=master_key)
        core = Core(backend, gateway=gateway_for(backend), rotation=RotationSettings())
        await core.start()
        cores.append(core)
    try:
        yield cores[0], cores[1]
    finally:
        for core in cores:
            await core.aclose()
            await core.backend.aclose()


async def test_two_gateway_instances_rotate_one_upstream_secret_one_at_a_time(
    instances: tuple[Core, Core],
) -> None:
    first, second = Ops(instances[0]), Ops(instances[1])
    await first(Operation.UPDATE, "sys/namespaces/acme", tenant=None)
    user = canary("user-")
    assert await first.put("app/db", {"password": "p0", "user": user}) == 1
    await first.configure("secret/app/db", rotator="random", period="1h", field="password")
    results = await asyncio.gather(
        *(ops.rotate("secret/app/db") for ops in [first, second] * 4), return_exceptions=True
    )
    done = sorted(
        int((r.data or {})["version"]) for r in results if not isinstance(r, BaseException)
    )
    assert all(isinstance(r, RotationBusyError) for r in results if isinstance(r, BaseException))
    assert done == list(range(2, 2 + len(done)))
    current = await second.get("app/db")
    assert current["metadata"]["version"] == 1 + len(done)
    assert current["data"]["user"] == user
    # The status is a record of tenantvault's own: another instance sees it within the
    # documented bound of the upstream record cache.
    await asyncio.sleep(RECORD_CACHE_SECONDS + 0.1)
    assert (await second.status("secret/app/db"))["rotations"] == len(done)


async def test_expiring_reads_the_upstream_metadata(instances: tuple[Core, Core]) -> None:
    """`sys/rotation/expiring` reads each secret's metadata from the tenant's upstream-backed
    kv mount (its engine, not a request per secret)."""
    ops = Ops(instances[0])
    await ops(Operation.UPDATE, "sys/namespaces/acme", tenant=None)
    await ops.put("api/key", {"k": "v"})
    await ops.put("api/other", {"k": "v"})
    await ops(
        Operation.UPDATE,
        "secret/metadata/api/key",
        {"custom_metadata": {"expires_at": "2000-01-01T00:00:00Z"}},
    )
    answer = await ops(Operation.READ, "sys/rotation/expiring", {})
    assert [(item["path"], item["expired"]) for item in (answer.data or {})["expiring"]] == [
        ("secret/api/key", True)
    ]
