"""Issue 9 ("storage partitioned by tenant for ... audit records") against the real
`tenantvault serve`: an audit store of the single-table layout in DATA_DIR is migrated when
the server starts, and every entry it held is still there, each in its tenant's partition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.audit._layouts import to_single_table
from tests.server.test_serve import serve

AUDITOR = 'path "sys/audit/events" { capabilities = ["read"] }'


def _events(client: httpx.Client, **headers: str) -> list[dict[str, Any]]:
    reply = client.get("sys/audit/events", params={"limit": 1000}, headers=headers)
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    assert data["next"] is None
    events: list[dict[str, Any]] = data["events"]
    return events


def test_the_server_migrates_a_single_table_store_and_keeps_every_entry(tmp_path: Path) -> None:
    token_file = tmp_path / "root-token"
    args = ("--data-dir", str(tmp_path / "data"), "--root-token-file", str(token_file))
    with serve(*args) as server:
        root = {"X-Vault-Token": token_file.read_text().strip()}
        with httpx.Client(base_url=f"{server.url}/v1", headers=root, timeout=10) as client:
            auditors = {}
            for tenant in ("acme", "beta"):
                assert client.post(f"sys/namespaces/{tenant}").status_code in (200, 204)
                ns = {"X-Vault-Namespace": tenant}
                written = client.post(
                    "sys/policies/acl/auditor", json={"policy": AUDITOR}, headers=ns
                )
                assert written.status_code in (200, 204)
                created = client.post(
                    "auth/token/create", json={"policies": ["auditor"]}, headers=ns
                )
                auditors[tenant] = created.json()["auth"]["client_token"]
                put = client.post(f"secret/data/{tenant}-old", json={"data": {"v": 1}}, headers=ns)
                assert put.status_code == 200
    store = tmp_path / "data" / "audit.db"
    old_rows = to_single_table(store)

    with serve(*args) as server:
        with httpx.Client(base_url=f"{server.url}/v1", headers=root, timeout=10) as client:
            everything = _events(client)
            assert len(everything) > old_rows  # all of them, and this query's request entry
            seen = str(everything)
            assert "acme-old" in seen
            assert "beta-old" in seen
            for tenant, token in auditors.items():
                mine = _events(client, **{"X-Vault-Token": token, "X-Vault-Namespace": tenant})
                assert {e["request"]["tenant"] for e in mine} == {tenant}
                assert f"{tenant}-old" in str(mine)
                other = "beta" if tenant == "acme" else "acme"
                assert f"{other}-old" not in str(mine)
