"""Audit queries are scoped by a tenant's incarnation, not its name (issue 8, item 2): a tenant
deleted and created again under the same name never sees its predecessor's trail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tenantvault
from tenantvault import Operation
from tenantvault.audit import StoreSink
from tenantvault.testing import core_of
from tests.audit._layouts import catalog, store_rows, to_single_table

AUDITOR = (
    'path "sys/audit/events" { capabilities = ["read"] }\n'
    'path "sys/audit/report" { capabilities = ["read"] }'
)


async def _auditor(tv: tenantvault.TenantVault, tenant: str) -> str:
    await tv.create_tenant(tenant)
    await tv.tenant(tenant).policies.write("auditor", AUDITOR)
    return (await tv.tenant(tenant).tokens.create(policies=["auditor"])).token


async def _events(tv: tenantvault.TenantVault, **params: Any) -> list[dict[str, Any]]:
    response = await tv.request(Operation.READ, "sys/audit/events", {**params, "limit": 1000})
    data = response.data or {}
    assert data["next"] is None
    events: list[dict[str, Any]] = data["events"]
    return events


async def _report(tv: tenantvault.TenantVault, **params: Any) -> dict[str, Any]:
    response = await tv.request(Operation.READ, "sys/audit/report", {"since": "1d", **params})
    return dict(response.data or {})


def _uids(events: list[dict[str, Any]]) -> set[str]:
    return {e["request"]["namespace"]["id"] for e in events}


async def _old_incarnation(tv: tenantvault.TenantVault) -> str:
    """`temp` with a secret read by a never-expiring token, then deleted; returns its uid."""
    await tv.request(Operation.UPDATE, "sys/audit/store", {"type": "store", "options": {}})
    auditor = await _auditor(tv, "temp")
    kv = tv.tenant("temp").kv
    await kv.put("old-secret", {"v": 1})
    reader = await tv.tenant("temp").tokens.create(policies=["root"], display_name="old-reader")
    await tv.with_token(reader.token).tenant("temp").kv.get("old-secret")
    events = await _events(tv.with_token(auditor))
    assert "old-secret" in str(events)
    (uid,) = _uids(events)
    await tv.delete_tenant("temp")
    return uid


async def test_a_recreated_tenant_sees_none_of_its_predecessors_entries(
    tv: tenantvault.TenantVault,
) -> None:
    old_uid = await _old_incarnation(tv)
    auditor = await _auditor(tv, "temp")
    await tv.tenant("temp").kv.put("new-secret", {"v": 2})

    scoped = tv.with_token(auditor)
    events = await _events(scoped)
    assert events
    assert "old-secret" not in str(events)
    assert old_uid not in _uids(events)
    # Asking for the old incarnation does not widen a tenant's scope.
    widened = await _events(scoped, tenant_uid=old_uid)
    assert _uids(widened) == _uids(events)
    assert "old-secret" not in str(widened)
    report = await _report(scoped)
    assert set(report["secrets"]) == {"new-secret"}
    assert "old-secret" not in str(report)
    assert report["never_read"] == ["new-secret"]
    assert report["tokens_without_expiry"] == []
    assert report["tenant_uid"] != old_uid


async def test_root_sees_the_current_incarnation_and_older_ones_on_request(
    tv: tenantvault.TenantVault,
) -> None:
    old_uid = await _old_incarnation(tv)
    await _auditor(tv, "temp")
    await tv.tenant("temp").kv.put("new-secret", {"v": 2})

    current = await _events(tv, tenant="temp")
    assert "new-secret" in str(current)
    assert "old-secret" not in str(current)
    (new_uid,) = _uids(current)
    old = await _events(tv, tenant_uid=old_uid)
    assert "old-secret" in str(old)
    assert _uids(old) == {old_uid}
    every = await _events(tv, tenant="temp", tenant_uid="*")
    assert _uids(every) == {old_uid, new_uid}
    # A tenant name with another incarnation's id matches nothing rather than mixing them.
    assert await _events(tv, tenant="other", tenant_uid=old_uid) == []

    old_report = await _report(tv, tenant="temp", tenant_uid=old_uid)
    assert old_report["secrets"]["old-secret"]["reads"] == 1
    assert old_report["secrets"]["old-secret"]["readers"][0]["display_name"] == "token-old-reader"
    # The old incarnation's secrets and tokens were destroyed with it: none are listed.
    assert old_report["never_read"] == []
    assert old_report["tokens_without_expiry"] == []
    new_report = await _report(tv, tenant="temp")
    assert set(new_report["secrets"]) == {"new-secret"}


async def test_root_naming_a_deleted_tenant_must_pick_an_incarnation(
    tv: tenantvault.TenantVault,
) -> None:
    old_uid = await _old_incarnation(tv)
    with pytest.raises(tenantvault.NotFoundError, match="tenant_uid"):
        await _events(tv, tenant="temp")
    with pytest.raises(tenantvault.NotFoundError, match="tenant_uid"):
        await _report(tv, tenant="temp")
    assert "old-secret" in str(await _events(tv, tenant="temp", tenant_uid=old_uid))
    with pytest.raises(tenantvault.InvalidRequestError, match="tenant_uid"):
        await _events(tv, tenant_uid="*")
    with pytest.raises(tenantvault.InvalidRequestError, match="tenant_uid"):
        await _events(tv, tenant_uid="not a uid")
    with pytest.raises(tenantvault.InvalidRequestError, match="one incarnation"):
        await _report(tv, tenant="temp", tenant_uid="*")


@pytest.mark.parametrize("with_uid", [True, False], ids=["single-table", "before-uids"])
async def test_an_audit_store_of_the_single_table_layout_is_migrated(
    tv: tenantvault.TenantVault, tmp_path: Path, with_uid: bool
) -> None:
    """An audit.db of the single-table layout opens, partitioned; rows from before
    incarnation ids, which no incarnation can be proven to own, are visible to root only."""
    db = tmp_path / "audit.db"
    broker = core_of(tv).audit_broker
    assert broker is not None
    # As the server's settings enable it (an API-created store is confined to --audit-dir).
    await broker.enable("store", "store", {"path": str(db)}, persist=False)
    auditor = await _auditor(tv, "acme")
    await tv.tenant("acme").kv.put("legacy-secret", {"v": 1})
    await broker.disable("store")
    old_rows = to_single_table(db, with_uid=with_uid)

    await broker.enable("store", "store", {"path": str(db)}, persist=False)
    await tv.tenant("acme").kv.put("new-secret", {"v": 2})
    seen = str(await _events(tv.with_token(auditor)))
    assert "new-secret" in seen
    # With incarnation ids the old rows are still the tenant's; without, root's alone.
    assert ("legacy-secret" in seen) is with_uid
    assert ("legacy-secret" in str(await _events(tv, tenant="acme"))) is with_uid
    assert "legacy-secret" in str(await _events(tv))
    assert "legacy-secret" in str(await _events(tv, tenant="acme", tenant_uid="*"))
    store = broker.store()
    assert isinstance(store, StoreSink)
    if not with_uid:
        assert ("acme", "") in catalog(store)
    sequence = [int(seq) for _, seq in store_rows(store, "id, seq")]
    await broker.disable("store")
    assert len(sequence) > old_rows
    # The chain went on across the migration: one unbroken run of sequence numbers.
    assert sequence == list(range(sequence[0], sequence[0] + len(sequence)))
