"""The audit counters of `tenantvault.observability`: after N audited requests, `audit
written` rose by exactly 2 entries (request, response) x the enabled sinks x N."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest

from tenantvault._config import ServerSettings
from tenantvault.server import TenantVaultApp
from tests.server.conftest import Vault
from tests.server.test_metrics import parse


@pytest.fixture
def settings(root_token: str, tmp_path: Path) -> ServerSettings:
    (tmp_path / "logs").mkdir()
    return ServerSettings(dev=True, dev_root_token=root_token, audit_dir=tmp_path / "logs")


def _written(app: TenantVaultApp) -> float:
    """Audit entries written by sinks so far, summed over the tenant label."""
    samples = parse(generate_latest(app.core.observability.registry).decode())
    wanted = {"event": "written", "result": "success"}
    return sum(
        count
        for (name, labels), count in samples.items()
        if name == "tenantvault_audit_events_total" and wanted.items() <= dict(labels).items()
    )


async def test_audit_entries_written_rise_by_exactly_the_entries_made(
    vault: Vault, app: TenantVaultApp, tmp_path: Path
) -> None:
    for name in ("a", "b"):
        options = {"file_path": str(tmp_path / "logs" / f"{name}.log")}
        response = await vault.root(
            "PUT", f"sys/audit/{name}", json={"type": "file", "options": options}
        )
        assert response.status_code == 204, response.text
    before = _written(app)
    n = 5
    for _ in range(n):
        assert (await vault.root("GET", "sys/mounts")).status_code == 200
    # Every enabled sink records each entry: ours, and the dev server's own audit store.
    sinks = len(app.core.audit_broker.sinks)
    assert sinks >= 2
    assert _written(app) - before == 2 * sinks * n
