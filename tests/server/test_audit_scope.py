"""Audit queries over HTTP: scoped to one tenant incarnation, root-only HMAC oracle, and query
parameters validated (issue 8, items 2, 7 and 9)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import Vault

pytestmark = pytest.mark.usefixtures("app")

AUDITOR = (
    'path "sys/audit/events" { capabilities = ["read"] }\n'
    'path "sys/audit/report" { capabilities = ["read"] }\n'
    'path "sys/audit-hash/*" { capabilities = ["create", "update", "sudo"] }\n'
)


async def _auditor(vault: Vault, tenant: str) -> str:
    """A tenant with an auditor; returns the auditor's token."""
    await vault.create_tenant(tenant)
    await vault.write_policy(tenant, "auditor", AUDITOR)
    return str((await vault.create_token(tenant, ["auditor"]))["client_token"])


async def _events(vault: Vault, token: str, **params: str) -> list[dict[str, Any]]:
    response = await vault.request("GET", "sys/audit/events", token=token, params=params)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]["events"]
    assert response.json()["data"]["next"] is None
    return events


async def test_a_recreated_tenant_sees_none_of_its_predecessors_audit_trail(
    vault: Vault,
) -> None:
    """Item 2: delete `temp`, create `temp` again: the new admin's events and report hold
    nothing of the old tenant's (paths, client addresses, accessor hashes)."""
    old_auditor = await _auditor(vault, "temp")
    await vault.put("temp", "old-incarnation-secret", {"v": "1"})
    read = await vault.request(
        "GET", "secret/data/old-incarnation-secret", token=vault.root_token, namespace="temp"
    )
    assert read.status_code == 200
    old_events = await _events(vault, old_auditor, limit="1000")
    assert any("old-incarnation-secret" in e["request"]["path"] for e in old_events)
    old_uid = old_events[0]["request"]["namespace"]["id"]
    assert old_uid

    assert (await vault.root("DELETE", "sys/namespaces/temp")).status_code in (200, 204)
    new_auditor = await _auditor(vault, "temp")

    events = await _events(vault, new_auditor, limit="1000")
    assert events, "the new incarnation's own requests are audited"
    assert "old-incarnation-secret" not in str(events)
    assert {e["request"]["namespace"]["id"] for e in events} != {old_uid}
    assert all(e["request"]["namespace"]["id"] != old_uid for e in events)
    report = await vault.request(
        "GET", "sys/audit/report", token=new_auditor, params={"since": "1d"}
    )
    assert report.status_code == 200, report.text
    assert report.json()["data"]["secrets"] == {}
    assert "old-incarnation-secret" not in report.text

    # The operator still sees the current incarnation by default, and the old one on request.
    current = await _events(vault, vault.root_token, tenant="temp", limit="1000")
    assert "old-incarnation-secret" not in str(current)
    explicit = await _events(vault, vault.root_token, tenant="temp", tenant_uid=old_uid)
    assert any("old-incarnation-secret" in e["request"]["path"] for e in explicit)
    old_report = await vault.request(
        "GET",
        "sys/audit/report",
        token=vault.root_token,
        params={"tenant": "temp", "tenant_uid": old_uid},
    )
    assert old_report.status_code == 200, old_report.text
    assert old_report.json()["data"]["secrets"]["old-incarnation-secret"]["reads"] == 1


async def test_root_naming_a_deleted_tenant_is_told_to_pick_an_incarnation(
    vault: Vault,
) -> None:
    await _auditor(vault, "gone")
    assert (await vault.root("DELETE", "sys/namespaces/gone")).status_code in (200, 204)
    response = await vault.request(
        "GET", "sys/audit/events", token=vault.root_token, params={"tenant": "gone"}
    )
    assert response.status_code == 404
    assert "tenant_uid" in response.json()["errors"][0]


async def test_audit_hash_is_only_for_the_root_namespace(vault: Vault) -> None:
    """Item 7: a tenant may never use the HMAC oracle over the global salts; OpenBao 2.7
    answers a namespace token with 400 "operation only available in root namespace"."""
    auditor = await _auditor(vault, "acme")
    calls = [(auditor, None), (auditor, "acme"), (vault.root_token, "acme")]
    for token, namespace in calls:
        response = await vault.request(
            "POST", "sys/audit-hash/store", token=token, namespace=namespace, json={"input": "x"}
        )
        assert response.status_code == 400, response.text
        assert response.json() == {"errors": ["operation only available in root namespace"]}
    prefixed = await vault.request(
        "POST", "acme/sys/audit-hash/store", token=vault.root_token, json={"input": "guess"}
    )
    assert prefixed.status_code == 400
    root = await vault.root("POST", "sys/audit-hash/store", json={"input": "guess"})
    assert root.status_code == 200
    assert root.json()["data"]["hash"].startswith("hmac-sha256:")


# Times that are no time at all, or that no int64 nanosecond count can hold.
BAD_TIMES = [
    "99999999999999999999",
    "9223372037",  # one second past the last int64 nanosecond
    "-1",
    "soon",
    "\u00b2",  # a digit to str.isdigit, not to int()
    "\u0661\u0662",  # Arabic-Indic digits
    "9999-12-31T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "1960-01-01T00:00:00Z",
    "99999999999d",
]
BAD_NUMBERS = ["99999999999999999999", "-1", "x", "1.5", ""]
BAD_EVENT_QUERIES = [
    *({"since": value} for value in BAD_TIMES),
    *({"until": value} for value in BAD_TIMES),
    {"since": "1d", "until": "30d"},  # until before since
    *({"after": value} for value in BAD_NUMBERS),
    *({"limit": value} for value in [*BAD_NUMBERS, "0", "1001"]),
]
BAD_REPORT_QUERIES = [{"since": value} for value in BAD_TIMES]


def _label(params: dict[str, str]) -> str:
    return ",".join(f"{k}={v!a}" for k, v in params.items())


async def _assert_400_and_audited(vault: Vault, endpoint: str, params: dict[str, str]) -> None:
    await _auditor(vault, "acme")
    response = await vault.request(
        "GET", f"sys/audit/{endpoint}", token=vault.root_token, params={**params, "tenant": "acme"}
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"errors"}
    assert len(body["errors"]) == 1
    # The message names the parameter at fault (`until` when the pair is out of order).
    assert list(params)[-1] in body["errors"][0]
    entries = await _events(
        vault, vault.root_token, path_prefix=f"sys/audit/{endpoint}", type="response"
    )
    assert [e["response"]["status"] for e in entries] == [400]


@pytest.mark.parametrize("params", BAD_EVENT_QUERIES, ids=_label)
async def test_bad_event_query_parameters_are_400_and_audited(
    vault: Vault, params: dict[str, str]
) -> None:
    """Item 9: a bad number or time is the caller's error (400, Vault-shaped), never a 500,
    and the failed request still gets its audit response entry."""
    await _assert_400_and_audited(vault, "events", params)


@pytest.mark.parametrize("params", BAD_REPORT_QUERIES, ids=_label)
async def test_bad_report_query_parameters_are_400_and_audited(
    vault: Vault, params: dict[str, str]
) -> None:
    """Item 9, for the report's `since`."""
    await _assert_400_and_audited(vault, "report", params)


async def test_report_format_must_be_json_or_csv(vault: Vault) -> None:
    await _auditor(vault, "acme")
    response = await vault.request(
        "GET",
        "sys/audit/report",
        token=vault.root_token,
        params={"tenant": "acme", "format": "xml"},
    )
    assert response.status_code == 400
    assert "format" in response.json()["errors"][0]


async def test_a_query_of_the_store_in_memory_says_it_keeps_only_the_newest_entries(
    vault: Vault,
) -> None:
    """`--dev`'s store is in memory and bounded (tests/audit/test_memory_retention.py): its
    answers say so, to a tenant's auditor and to the operator, for events and reports."""
    auditor = await _auditor(vault, "bounded")
    for token, params in ((auditor, {}), (vault.root_token, {"tenant": "bounded"})):
        for path in ("sys/audit/events", "sys/audit/report"):
            response = await vault.request("GET", path, token=token, params=params)
            assert response.status_code == 200, response.text
            assert response.json()["warnings"] == [
                "this audit store is in memory and keeps only its newest 50,000 entries "
                "(of all tenants): older entries are no longer in it"
            ]
    listed = await vault.root("GET", "sys/audit")
    assert listed.json()["data"]["store/"]["options"] == {
        "path": ":memory:",
        "keep_newest": "50000",
    }
