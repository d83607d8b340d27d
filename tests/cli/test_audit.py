"""`tenantvault audit query/report` and tenant incarnations: a tenant deleted and created
again under its name starts with an empty trail; root reaches the old one by its id."""

from __future__ import annotations

import json

from tests.cli.conftest import CLI


def _kv_paths(events: list[dict[str, object]]) -> list[str]:
    paths = []
    for event in events:
        request = event.get("request")
        if isinstance(request, dict) and str(request.get("path", "")).startswith("secret/"):
            paths.append(str(request["path"]))
    return paths


def test_query_and_report_take_a_tenant_incarnation(cli: CLI, tenant: str) -> None:
    assert cli("kv", "put", "secret/old-app", "k=v").code == 0
    first = cli("audit", "query", "-format=json", f"-tenant={tenant}", namespace=None)
    assert first.code == 0, first.err
    events = json.loads(first.out)
    assert "secret/data/old-app" in _kv_paths(events)
    old_uid = events[0]["request"]["namespace"]["id"]
    assert old_uid

    assert cli("tenant", "delete", tenant, namespace=None).code == 0
    assert cli("tenant", "create", tenant, namespace=None).code == 0
    fresh = cli("audit", "query", "-format=json", f"-tenant={tenant}", namespace=None)
    assert fresh.code == 0, fresh.err
    assert "secret/data/old-app" not in _kv_paths(json.loads(fresh.out))

    old = cli("audit", "query", "-format=json", f"-tenant-uid={old_uid}", namespace=None)
    assert old.code == 0, old.err
    assert "secret/data/old-app" in _kv_paths(json.loads(old.out))
    report = cli(
        "audit",
        "report",
        "-format=json",
        f"-tenant={tenant}",
        f"-tenant-uid={old_uid}",
        namespace=None,
    )
    assert report.code == 0, report.err
    document = json.loads(report.out)
    assert document["tenant_uid"] == old_uid
    assert "old-app" in document["secrets"]
