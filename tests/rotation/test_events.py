"""The rotation counters of `tenantvault.observability` move by exactly the rotations run:
each success and each failure once."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from tenantvault.rotation import RotationFailedError
from tests.rotation.conftest import Ops
from tests.server.test_metrics import Samples, parse


def _samples(ops: Ops) -> Samples:
    return parse(generate_latest(ops.core.observability.registry).decode())


def _total(samples: Samples, result: str) -> float:
    """Summed over the tenant label (a tenant no request was seen for counts as `other`)."""
    wanted = {"event": "rotated", "result": result}
    return sum(
        count
        for (name, labels), count in samples.items()
        if name == "tenantvault_rotation_events_total" and wanted.items() <= dict(labels).items()
    )


def _rose(before: Samples, after: Samples, result: str) -> float:
    return _total(after, result) - _total(before, result)


async def test_each_rotation_counts_once_as_success_or_failure(ops: Ops) -> None:
    await ops.put("api", {"key": "old"})
    await ops.configure("secret/api", rotator="random", period="30d", field="key")
    await ops.put("db/other", {"password": "p"})
    await ops.configure(
        "secret/db/other", rotator="database", period="1h", field="password", params={"role": "r"}
    )
    before = _samples(ops)
    n = 3
    for _ in range(n):
        await ops.rotate("secret/api")
    with pytest.raises(RotationFailedError):
        await ops.rotate("secret/db/other")
    after = _samples(ops)
    assert _rose(before, after, "success") == n
    assert _rose(before, after, "failure") == 1
