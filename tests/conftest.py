"""Shared fixtures: a tenantvault on each backend the contract suite covers."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import tenantvault

BACKENDS = ["memory", "sqlite"]


def canary(label: str = "") -> str:
    """A unique marker for a secret value or token: any later sighting of it is a leak."""
    return f"CANARY-{label}{uuid.uuid4()}"


def backend_url(kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory://"
    return f"sqlite://{tmp_path / 'data'}"


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class FakeClock:
    """A wall clock the test moves by hand (nanoseconds since the epoch)."""

    def __init__(self) -> None:
        self.now = time.time_ns()

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000_000)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def tv(
    backend_kind: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tenantvault.TenantVault]:
    async with tenantvault.open(backend_url(backend_kind, tmp_path), clock=clock) as opened:
        yield opened


@pytest.fixture
async def acme(tv: tenantvault.TenantVault) -> tenantvault.Tenant:
    await tv.create_tenant("acme")
    return tv.tenant("acme")
