"""Shared fixtures: a tenantvault on each backend the contract suite covers."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import tenantvault
from tests._openbao import OpenBaoDev, running_openbao

BACKENDS = ["memory", "sqlite"]

# Hypothesis' wall-clock checks (a 200 ms deadline per example, the too_slow health check) are
# timed assertions: on a loaded machine, or with xdist workers sharing CI's two cores, they fail
# correct tests ("Unreliable test timings"). Off for the whole suite, as the slow property tests
# already had it; a test that sets its own deadline keeps it.
settings.register_profile(
    "tenantvault", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("tenantvault")

# The tests with the longest wall time (the fuzzer's time budget, the Raft failover drill,
# hvac's own suite, the property suites) and those marked `slow`: under pytest-xdist
# (`scripts/test` runs `-n ... --dist worksteal`) each worker starts its share of the suite
# with an equal share of them, so they run while the short tests fill the gaps, instead of
# queueing on one worker or starting near the end and holding up the whole run.
_LONG_FIRST = (
    "tests/fuzz/",
    "tests/upstream/test_ha_drill.py",
    "tests/integration/test_hvac_suite.py",
    "tests/property/",
)


def _is_long(item: pytest.Item) -> bool:
    return item.nodeid.startswith(_LONG_FIRST) or item.get_closest_marker("slow") is not None


def _spread_long_tests(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """`items` cut in `workers` consecutive runs (worksteal's first split), each led by every
    `workers`-th long test; the order within the long and the short tests is kept."""
    long = [item for item in items if _is_long(item)]
    short = [item for item in items if not _is_long(item)]
    spread: list[pytest.Item] = []
    for worker in range(workers):
        spread += long[worker::workers]
        spread += short[len(short) * worker // workers : len(short) * (worker + 1) // workers]
    return spread


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On an xdist worker, the long tests spread over the workers' first shares (after pytest's
    own fixture-scope ordering; every worker computes the same order, as xdist requires)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if os.environ.get("PYTEST_XDIST_WORKER") and workers > 0:
        items[:] = _spread_long_tests(items, workers)


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
    root token by design) and are left out. Under pytest-xdist every worker scans its own base
    temp (`popen-gwN`, inside the run's), so together they cover every artifact of the run."""
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


def count_routes(monkeypatch: pytest.MonkeyPatch, engine: type[Any]) -> list[str]:
    """The paths `engine.route` resolves from now on, in order (each call still routes)."""
    resolved: list[str] = []
    route = engine.route

    def counting(self: Any, operation: Any, rest: str, mount: Any) -> Any:
        resolved.append(rest)
        return route(self, operation, rest, mount)

    monkeypatch.setattr(engine, "route", counting)
    return resolved
