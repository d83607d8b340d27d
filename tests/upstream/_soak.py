"""The upstream-auth soak: record traffic while short-lived upstream tokens expire under it.

Two gateway backends run side by side on one OpenBao, each with its background services
supervised as the server does: one logs in with a token file holding a renewable token of
`ttl_seconds` (the service must renew it), the other with AppRole whose tokens have a max
TTL of twice that (renewal stops extending them, the service must log in again). Both
write and read a record every `interval_seconds` until `seconds` have passed; any error is
collected. `scripts/upstream_auth_soak.py` runs it for 60 s with a 10 s TTL; the suite
runs a short version.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantvault._config import UpstreamOptions
from tenantvault.backends import background_services, open_backend
from tenantvault.crypto import random_key
from tenantvault.services import Supervisor, SupervisorSettings
from tenantvault.upstream import UpstreamClient, UpstreamSettings

__all__ = ["SoakResult", "soak"]


@dataclass
class SoakResult:
    """Operations done and errors seen per login method, and each auth's final report."""

    operations: dict[str, int] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    auth: dict[str, dict[str, Any]] = field(default_factory=dict)


def _private_file(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


async def _credentials(
    addr: str, root_token: str, directory: Path, ttl_seconds: int
) -> dict[str, UpstreamOptions]:
    """A token file and an AppRole, both with short TTLs, under a policy of their own."""
    label = uuid.uuid4().hex[:10]
    policy = f"soak-{label}"
    approle = f"approle-{label}"
    async with UpstreamClient(UpstreamSettings(addr)) as client:
        await client.write(
            f"sys/policies/acl/{policy}",
            {
                "policy": 'path "*" { capabilities = '
                '["create", "read", "update", "delete", "list", "sudo"] }'
            },
            token=root_token,
        )
        created = await client.write(
            "auth/token/create",
            {"policies": [policy], "ttl": f"{ttl_seconds}s", "renewable": True},
            token=root_token,
        )
        assert created is not None
        await client.write(f"sys/auth/{approle}", {"type": "approle"}, token=root_token)
        await client.write(
            f"auth/{approle}/role/tenantvault",
            {
                "token_policies": [policy],
                "token_ttl": f"{ttl_seconds}s",
                "token_max_ttl": f"{2 * ttl_seconds}s",
            },
            token=root_token,
        )
        role = await client.read(f"auth/{approle}/role/tenantvault/role-id", token=root_token)
        secret = await client.write(
            f"auth/{approle}/role/tenantvault/secret-id", {}, token=root_token
        )
        assert role is not None
        assert secret is not None
    return {
        "token": UpstreamOptions(
            root=f"soak{label}t",
            tenancy="prefix",
            token_file=_private_file(directory / f"token-{label}", created["auth"]["client_token"]),
        ),
        "approle": UpstreamOptions(
            root=f"soak{label}a",
            tenancy="prefix",
            approle_mount=approle,
            role_id_file=_private_file(directory / f"role-{label}", role["data"]["role_id"]),
            secret_id_file=_private_file(
                directory / f"secret-{label}", secret["data"]["secret_id"]
            ),
        ),
    }


async def soak(
    addr: str,
    root_token: str,
    directory: Path,
    *,
    seconds: float,
    ttl_seconds: int,
    interval_seconds: float = 0.1,
) -> SoakResult:
    """Run the soak against the OpenBao at `addr` (http://127.0.0.1:PORT); see the module."""
    result = SoakResult()
    credentials = await _credentials(addr, root_token, directory, ttl_seconds)
    deadline = time.monotonic() + seconds

    async def run(method: str, options: UpstreamOptions) -> None:
        backend = await open_backend("vault+" + addr, upstream=options, master_key=random_key())
        errors = result.errors.setdefault(method, [])
        result.operations[method] = 0
        try:
            await backend.create_tenant("acme")
            restarts = SupervisorSettings(base_delay_seconds=0.2, max_delay_seconds=1.0)
            async with Supervisor(restarts) as services:
                for name, (service, detail) in background_services(backend).items():
                    services.add(name, service, detail=detail)
                while time.monotonic() < deadline:
                    try:
                        await backend.write("acme", "m", "k", b"v", expected_revision=None)
                        await backend.read("acme", "m", "k")
                        result.operations[method] += 2
                    except Exception as error:  # noqa: BLE001 -- every failure is a finding
                        errors.append(f"{type(error).__name__}: {error}")
                    await asyncio.sleep(interval_seconds)
                report = services.report()
                result.auth[method] = report["upstream-auth"]["detail"]
        finally:
            with contextlib.suppress(Exception):
                await backend.aclose()

    async with asyncio.TaskGroup() as group:
        for method, options in credentials.items():
            group.create_task(run(method, options))
    return result
