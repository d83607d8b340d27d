"""The server's background services: supervised, visible in sys/health, gone after shutdown."""

from __future__ import annotations

import asyncio

import httpx

from tenantvault.server import TenantVaultApp


async def test_transit_rotation_runs_as_a_supervised_service_in_health(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/sys/health")
    assert response.status_code == 200
    services = response.json()["services"]
    # Every background service of the server, each running and never restarted.
    assert {"transit-rotation", "lease-expiration", "database-rotation", "kv-rotation"} <= set(
        services
    )
    for name, report in services.items():
        assert report["state"] == "running", name
        assert report["restarts"] == 0, name
        assert report["last_error"] is None, name


async def test_shutdown_leaves_no_service_task_behind(app: TenantVaultApp) -> None:
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert "service:transit-rotation" in names
    await app.shutdown()
    assert not [task for task in asyncio.all_tasks() if task.get_name().startswith("service:")]
