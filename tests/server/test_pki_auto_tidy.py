"""`config/auto-tidy`, `tidy-status` and `tidy-cancel` with OpenBao 2.7.2's fields, defaults
and texts, and the scheduler's passes: a due mount is tidied once per interval, in the root
and in tenants."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tenantvault import Core
from tenantvault.backends._protocol import SYSTEM_TENANT
from tests.conftest import FakeClock
from tests.server.conftest import Vault
from tests.server.test_pki import ROLE, mount_pki, ok, root_ca, serving_with_clock

HOUR = 3600
# OpenBao 2.7.2's answer to `GET pki/config/auto-tidy` on a new mount.
DEFAULTS = {
    "acme_account_safety_buffer": 2592000,
    "enabled": False,
    "interval_duration": 43200,
    "issuer_safety_buffer": 31536000,
    "maintain_stored_certificate_counts": False,
    "page_size": 1000,
    "pause_duration": "0s",
    "publish_stored_certificate_count_metrics": False,
    "revoked_safety_buffer": 259200,
    "safety_buffer": 259200,
    "tidy_acme": False,
    "tidy_cert_store": False,
    "tidy_expired_issuers": False,
    "tidy_invalid_certs": False,
    "tidy_move_legacy_ca_bundle": False,
    "tidy_revoked_cert_issuer_associations": False,
    "tidy_revoked_certs": False,
}
NO_KIND = (
    "Auto-tidy enabled but no tidy operations were requested. Enable at least one tidy "
    "operation to be run (tidy_cert_store / tidy_revoked_certs / tidy_invalid_certs / "
    "tidy_revoked_cert_issuer_associations / tidy_expired_issuers / "
    "tidy_move_legacy_ca_bundle / tidy_acme)."
)


@pytest.fixture
async def served(root_token: str, clock: FakeClock) -> AsyncIterator[tuple[Vault, Core]]:
    """A server whose clock the test moves, and its Core (to run the scheduler's passes)."""
    async with serving_with_clock(root_token, clock) as served:
        yield served


async def _config(vault: Vault, namespace: str | None = None) -> dict[str, Any]:
    body = await ok(await vault.root("GET", "pki/config/auto-tidy", namespace=namespace))
    data: dict[str, Any] = body["data"]
    return data


async def test_a_new_mount_shows_openbaos_defaults(vault: Vault) -> None:
    await mount_pki(vault)
    assert await _config(vault) == DEFAULTS


async def test_a_write_changes_the_fields_given_and_answers_the_whole_config(
    vault: Vault,
) -> None:
    await mount_pki(vault)
    body = await ok(
        await vault.root(
            "POST",
            "pki/config/auto-tidy",
            json={
                "enabled": True,
                "tidy_revoked_certs": True,
                "interval_duration": "90m",
                "pause_duration": "1m30s",
                "revoked_safety_buffer": "1h",
                "page_size": 50,
            },
        )
    )
    expected = {
        **DEFAULTS,
        "enabled": True,
        "tidy_revoked_certs": True,
        "interval_duration": 5400,
        "pause_duration": "1m30s",
        "revoked_safety_buffer": 3600,
        "page_size": 50,
    }
    assert body["data"] == expected
    assert await _config(vault) == expected
    # Later writes keep what they do not name; the revoked buffer follows nothing now.
    body = await ok(await vault.root("POST", "pki/config/auto-tidy", json={"safety_buffer": 60}))
    assert body["data"] == {**expected, "safety_buffer": 60}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"enabled": True}, NO_KIND),
        ({"safety_buffer": "0s"}, "given safety_buffer must be at least one second; got: 0"),
        ({"issuer_safety_buffer": 0}, "given safety_buffer must be at least one second; got: 0"),
        (
            {"revoked_safety_buffer": "0"},
            "revoked_safety_buffer must be at least one second; got: 0",
        ),
        (
            {"acme_account_safety_buffer": "0s"},
            "given acme_account_safety_buffer must be at least one second; got: 0",
        ),
        ({"page_size": 4}, "page_size must be at least 5"),
        ({"interval_duration": "-1h"}, "invalid value for interval_duration: expected a duration"),
        ({"enabled": "maybe"}, "invalid value for enabled: expected a boolean"),
    ],
)
async def test_a_refused_write_changes_nothing(
    vault: Vault, fields: dict[str, Any], error: str
) -> None:
    await mount_pki(vault)
    response = await vault.root("POST", "pki/config/auto-tidy", json=fields)
    assert (response.status_code, response.json()) == (400, {"errors": [error]})
    assert await _config(vault) == DEFAULTS


async def test_tidy_cancel_finds_nothing_running(vault: Vault) -> None:
    await mount_pki(vault)
    body = await ok(await vault.root("POST", "pki/tidy-cancel"))
    assert body["warnings"] == ["Tidy operation cannot be cancelled as none is currently running."]


async def _expired_leaf(vault: Vault, clock: FakeClock, namespace: str | None) -> str:
    """A certificate of the mount that expired an hour ago (the clock moved past it)."""
    await ok(await vault.root("POST", "pki/roles/web", namespace=namespace, json=ROLE))
    issued = await ok(
        await vault.root(
            "POST",
            "pki/issue/web",
            namespace=namespace,
            json={"common_name": "a.example.com", "ttl": "1h"},
        )
    )
    clock.advance(2 * HOUR)
    serial: str = issued["data"]["serial_number"]
    return serial


async def _certs(vault: Vault, namespace: str | None) -> list[str]:
    response = await vault.root("LIST", "pki/certs", namespace=namespace)
    if response.status_code == 404:
        return []
    keys: list[str] = response.json()["data"]["keys"]
    return keys


@pytest.mark.parametrize("namespace", [None, "acme"], ids=["root", "tenant"])
async def test_a_due_mount_is_tidied_once_per_interval(
    served: tuple[Vault, Core], clock: FakeClock, namespace: str | None
) -> None:
    vault, core = served
    if namespace:
        await vault.create_tenant(namespace)
    await mount_pki(vault, namespace=namespace)
    await root_ca(vault, namespace=namespace)
    enabled = {"enabled": True, "tidy_cert_store": True, "interval_duration": "1h"}
    await ok(
        await vault.root(
            "POST",
            "pki/config/auto-tidy",
            namespace=namespace,
            json={**enabled, "safety_buffer": "30m"},
        )
    )
    serial = await _expired_leaf(vault, clock, namespace)  # the clock is now 2 h on
    scheduler = core.pki.auto_tidy
    # Two passes at once, due: one runs the tidy, the other finds the run stamped.
    first, second = await asyncio.gather(scheduler.tidy_due(), scheduler.tidy_due())
    assert sorted([*first, *second]) == [(namespace or SYSTEM_TENANT, "pki/")]
    assert serial not in await _certs(vault, namespace)
    status = await ok(await vault.root("GET", "pki/tidy-status", namespace=namespace))
    assert status["data"]["state"] == "Finished"
    assert status["data"]["cert_store_deleted_count"] == 1
    # Not again within the interval; again once it has passed.
    clock.advance(HOUR / 2)
    assert await scheduler.tidy_due() == []
    clock.advance(HOUR)
    assert await scheduler.tidy_due() == [(namespace or SYSTEM_TENANT, "pki/")]


async def test_nothing_runs_before_one_interval_or_when_disabled(
    served: tuple[Vault, Core], clock: FakeClock
) -> None:
    vault, core = served
    await mount_pki(vault)
    await root_ca(vault)
    serial = await _expired_leaf(vault, clock, None)
    enabled = {"enabled": True, "tidy_cert_store": True, "interval_duration": "1h"}
    await ok(await vault.root("POST", "pki/config/auto-tidy", json=enabled))
    scheduler = core.pki.auto_tidy
    assert await scheduler.tidy_due() == []  # enabled just now: the first run is 1 h on
    await ok(await vault.root("POST", "pki/config/auto-tidy", json={"enabled": False}))
    clock.advance(2 * HOUR)
    assert await scheduler.tidy_due() == []
    assert serial in await _certs(vault, None)


async def test_a_tenant_joins_the_passes_when_it_first_configures_auto_tidy(
    served: tuple[Vault, Core],
) -> None:
    vault, core = served
    await vault.create_tenant("acme")
    await vault.create_tenant("other")
    await mount_pki(vault, namespace="acme")
    await mount_pki(vault, namespace="other")
    holders = core.pki.auto_tidy.holders
    assert holders is not None
    assert "acme" not in await holders.members()
    await ok(await vault.root("POST", "pki/config/auto-tidy", namespace="acme", json={}))
    assert await holders.members() == ["acme"]


# OpenBao 2.7.2's `tidy-status` fields (besides `internal_backend_uuid`, the mount's uuid, and
# `last_auto_tidy_finished`, present once a tidy ran).
STATUS_FIELDS = {
    "acme_account_deleted_count",
    "acme_account_revoked_count",
    "acme_account_safety_buffer",
    "acme_orders_deleted_count",
    "cert_store_deleted_count",
    "current_cert_store_count",
    "current_revoked_cert_count",
    "error",
    "issuer_safety_buffer",
    "message",
    "missing_issuer_cert_count",
    "page_size",
    "pause_duration",
    "revoked_cert_deleted_count",
    "revoked_safety_buffer",
    "safety_buffer",
    "state",
    "tidy_acme",
    "tidy_cert_store",
    "tidy_expired_issuers",
    "tidy_invalid_certs",
    "tidy_move_legacy_ca_bundle",
    "tidy_revoked_cert_issuer_associations",
    "tidy_revoked_certs",
    "time_finished",
    "time_started",
    "total_acme_account_count",
}


async def test_tidy_status_has_openbaos_fields_before_and_after_a_tidy(vault: Vault) -> None:
    await mount_pki(vault)
    uuid = (await ok(await vault.root("GET", "sys/mounts/pki")))["data"]["uuid"]
    before = (await ok(await vault.root("GET", "pki/tidy-status")))["data"]
    assert before == {
        **dict.fromkeys(STATUS_FIELDS),
        "state": "Inactive",
        "internal_backend_uuid": uuid,
    }
    started = await vault.root(
        "POST",
        "pki/tidy",
        json={"tidy_cert_store": True, "safety_buffer": "1h", "pause_duration": "2s"},
    )
    assert started.status_code == 202
    after = (await ok(await vault.root("GET", "pki/tidy-status")))["data"]
    assert set(after) == STATUS_FIELDS | {"internal_backend_uuid", "last_auto_tidy_finished"}
    assert after["state"] == "Finished"
    assert after["internal_backend_uuid"] == uuid
    assert after["last_auto_tidy_finished"] == after["time_finished"]
    assert (after["safety_buffer"], after["revoked_safety_buffer"]) == (3600, 3600)
    assert (after["pause_duration"], after["page_size"]) == ("2s", 1000)
    assert (after["tidy_cert_store"], after["tidy_revoked_certs"]) == (True, False)
    assert after["cert_store_deleted_count"] == after["acme_orders_deleted_count"] == 0
    assert after["error"] is None
    assert after["message"] is None


async def test_a_manual_tidy_refuses_a_page_size_of_five_or_less(vault: Vault) -> None:
    await mount_pki(vault)
    refused = await vault.root("POST", "pki/tidy", json={"tidy_cert_store": True, "page_size": 5})
    assert (refused.status_code, refused.json()) == (
        400,
        {"errors": ["page_size must be greater than five"]},
    )
