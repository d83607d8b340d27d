"""Tenant-visible audit queries and compliance reports (issue 4, acceptance 5)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tenantvault
from tenantvault import Operation, PermissionDeniedError

AUDITOR = (
    'path "sys/audit/events" { capabilities = ["read"] }\n'
    'path "sys/audit/report" { capabilities = ["read"] }'
)
TENANTS = ["acme", "acme-evil", "beta"]


async def _setup(tv: tenantvault.TenantVault) -> dict[str, str]:
    await tv.request(Operation.UPDATE, "sys/audit/store", {"type": "store", "options": {}})
    auditors = {}
    for tenant in TENANTS:
        await tv.create_tenant(tenant)
        await tv.tenant(tenant).policies.write("auditor", AUDITOR)
        auditors[tenant] = (await tv.tenant(tenant).tokens.create(policies=["auditor"])).token
    return auditors


async def _events(tv: tenantvault.TenantVault, **params: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        response = await tv.request(
            Operation.READ, "sys/audit/events", {**params, "after": after, "limit": 50}
        )
        data = response.data or {}
        events.extend(data["events"])
        if data["next"] is None:
            return events
        after = data["next"]


async def test_a_tenant_auditor_sees_only_its_tenant(tv: tenantvault.TenantVault) -> None:
    auditors = await _setup(tv)
    for tenant in TENANTS:
        await tv.tenant(tenant).kv.put(f"{tenant}-secret", {"v": tenant})
    acme = tv.with_token(auditors["acme"])
    events = await _events(acme)
    assert events
    assert {e["request"]["tenant"] for e in events} == {"acme"}
    # Asking for another tenant does not widen the scope inside a tenant.
    events = await _events(acme, tenant="beta")
    assert {e["request"]["tenant"] for e in events} == {"acme"}
    everything = await _events(tv)
    assert {"acme", "acme-evil", "beta"} <= {e["request"]["tenant"] for e in everything}


async def test_without_the_policy_a_tenant_token_cannot_query(
    tv: tenantvault.TenantVault,
) -> None:
    await _setup(tv)
    plain = await tv.tenant("acme").tokens.create(policies=["default"])
    with pytest.raises(PermissionDeniedError):
        await tv.with_token(plain.token).request(Operation.READ, "sys/audit/events")


async def test_filters_and_pagination(tv: tenantvault.TenantVault) -> None:
    await _setup(tv)
    for n in range(30):
        await tv.tenant("acme").kv.put(f"app/k{n}", {"v": n})
    token = await tv.tenant("acme").tokens.create(policies=["default"])
    with pytest.raises(PermissionDeniedError):
        await tv.with_token(token.token).tenant("acme").kv.get("app/k1")
    writes = await _events(
        tv, tenant="acme", path_prefix="secret/data/app/", type="response", operation="update"
    )
    assert len(writes) == 30
    denied = await _events(tv, tenant="acme", outcome="denied", type="response")
    assert [e["request"]["path"] for e in denied] == ["secret/data/app/k1"]
    by_accessor = await _events(tv, tenant="acme", accessor=token.accessor)
    assert len(by_accessor) == 2  # the denied request and its response
    assert all(token.accessor not in str(e) for e in by_accessor)


async def test_the_compliance_report(tv: tenantvault.TenantVault) -> None:
    auditors = await _setup(tv)
    kv = tv.tenant("acme").kv
    await kv.put("read-me", {"v": 1})
    await kv.put("never", {"v": 1})
    reader = await tv.tenant("acme").tokens.create(policies=["default"], display_name="reporter")
    await tv.tenant("acme").policies.write(
        "r", 'path "secret/data/read-me" { capabilities = ["read"] }'
    )
    app = await tv.tenant("acme").tokens.create(policies=["r"], display_name="app")
    await tv.with_token(app.token).tenant("acme").kv.get("read-me")
    with pytest.raises(PermissionDeniedError):
        await tv.with_token(reader.token).tenant("acme").kv.get("read-me")
    await tv.tenant("acme").tokens.create(policies=["root"], display_name="forever")
    report = (
        await tv.with_token(auditors["acme"]).request(
            Operation.READ, "sys/audit/report", {"since": "1d"}
        )
    ).data or {}
    assert report["tenant"] == "acme"
    assert report["secrets"]["read-me"]["reads"] == 1
    assert report["secrets"]["read-me"]["denied"] == 1
    assert report["secrets"]["read-me"]["readers"][0]["display_name"] == "token-app"
    assert report["never_read"] == ["never"]
    assert [t["display_name"] for t in report["tokens_without_expiry"]] == ["token-forever"]
    csv_text = (
        await tv.request(Operation.READ, "sys/audit/report", {"tenant": "acme", "format": "csv"})
    ).data or {}
    assert "never_read,never" in csv_text["csv"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(TENANTS), st.sampled_from(["put", "get", "deny"])),
        min_size=1,
        max_size=15,
    )
)
def test_property_no_tenant_ever_sees_another_tenants_events(
    steps: list[tuple[str, str]],
) -> None:
    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            async with tenantvault.open(f"sqlite://{Path(tmp) / 'data'}") as tv:
                auditors = await _setup(tv)
                for tenant, action in steps:
                    kv = tv.tenant(tenant).kv
                    if action == "put":
                        await kv.put("k", {"v": tenant})
                    elif action == "get":
                        await kv.put("k", {"v": tenant})
                        await kv.get("k")
                    else:
                        with pytest.raises(PermissionDeniedError):
                            await tv.with_token(auditors[tenant]).tenant(tenant).kv.get("k")
                for tenant, token in auditors.items():
                    events = await _events(tv.with_token(token))
                    assert {e["request"]["tenant"] for e in events} <= {tenant}
                    assert all(e["auth"]["tenant"] in ("", tenant) for e in events)

    asyncio.run(run())
