"""Shared fixtures: a tenantvault on each backend the contract suite covers."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import tenantvault
from tests._openbao import OpenBaoDev, running_openbao

BACKENDS = ["memory", "sqlite"]


def canary(label: str = "") -> str:
    """A unique marker for a secret value or token: any later sighting of it is a leak."""
    return f"CANARY-{label}{uuid.uuid4()}"


def backend_url(kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory://"
    return f"sqlite://{tmp_path / 'data'}"


@pytest.fixture(autouse=True)
def _strict_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every suite runs with the Core's handler check: a handler that asks its data for a
    parameter its route did not declare fails the test (`UndeclaredParameterError`)."""
    from tenantvault._core import Core

    monkeypatch.setattr(Core, "strict_parameters", True)


@pytest.fixture(scope="session")
def openbao_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoDev]:
    """One real `bao server -dev` for the session (gateway mode tests; see tests/_openbao)."""
    with running_openbao(tmp_path_factory.mktemp("openbao-dev")) as server:
        yield server


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


_ARTIFACT_LEAK = re.compile(rb"CANARY|tvs\.[A-Za-z0-9_-]{43}")


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_artifact(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """L-1 / issue 4 acceptance 2: after the whole suite, no audit file, audit store or server
    log any test produced holds a canary or a raw token. Secrets in this suite carry `CANARY`;
    tokens are found by their shape. OpenBao's own dev-server logs are not ours (it prints its
    root token by design) and are left out."""
    yield
    leaks = []
    for path in tmp_path_factory.getbasetemp().rglob("*"):
        name = path.name
        if "bao" in name or not path.is_file():
            continue
        if name.endswith(".log") or name.startswith("audit.db"):
            if _ARTIFACT_LEAK.search(path.read_bytes()):
                leaks.append(str(path))
    assert not leaks, f"secrets or tokens in artifacts: {leaks}"
