"""Issue 9: requests the HTTP layer refuses before a `Request` exists are audited with what
was known — and nothing more: no body, no query string, the raw path only as an HMAC, the
token only as its HMAC, the namespace only as a claim, no tenant. A refusal never consumes a
token use, and one that nothing could record keeps its own status and is counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tenantvault._config import ServerSettings
from tenantvault.server import TenantVaultApp, create_app
from tests.conftest import canary
from tests.server.conftest import raw_call

BASE = "http://tv.test"


@pytest.fixture
def root_token() -> str:
    return canary("root-")


@pytest.fixture
async def served(tmp_path: Path, root_token: str) -> AsyncIterator[TenantVaultApp]:
    settings = ServerSettings(
        dev=True, dev_root_token=root_token, audit_file=tmp_path / "audit.log", access_log=False
    )
    async with create_app(settings) as app:
        yield app


def _client(app: TenantVaultApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


async def _audit_hash(client: httpx.AsyncClient, root: dict[str, str], value: str) -> str:
    reply = await client.post("/v1/sys/audit-hash/file", headers=root, json={"input": value})
    return str(reply.json()["data"]["hash"])


def _entries(path: Path, request_id: str) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return [e for e in lines if e.get("request", {}).get("id") == request_id]


async def test_a_refusal_is_audited_with_what_was_known_and_no_secret(
    served: TenantVaultApp, root_token: str, tmp_path: Path
) -> None:
    root = {"X-Vault-Token": root_token}
    in_url = canary("url-")
    in_query = canary("query-")
    in_body = canary("body-")
    async with _client(served) as client:
        assert (await client.post("/v1/sys/namespaces/acme", headers=root)).status_code == 200
        created = await client.post(
            "/v1/auth/token/create",
            headers={**root, "X-Vault-Namespace": "acme"},
            json={"policies": ["root"], "num_uses": 1},
        )
        token = created.json()["auth"]["client_token"]
        raw_path = f"/v1/secret/data/{in_url}".encode()
        reply = await raw_call(
            served,
            "POST",
            raw_path,
            query_string=f"x={in_query}".encode(),
            headers=[
                (b"x-vault-token", token.encode()),
                (b"x-vault-namespace", b"acme"),
                (b"content-type", b"application/json"),
            ],
            body=b'{"data": {"v": "' + in_body.encode(),  # malformed JSON
        )
        assert reply.status == 400
        request_id = reply.headers[b"x-request-id"].decode()
        answered = "; ".join(reply.json()["errors"])

        # What an investigator computes to recognise the path and the token (as in OpenBao).
        path_hmac = await _audit_hash(client, root, raw_path.decode())
        token_hmac = await _audit_hash(client, root, token)

        # The refusal did not consume the token's only use: it still works, once.
        used = await client.get(
            "/v1/secret/data/nothing", headers={"X-Vault-Token": token, "X-Vault-Namespace": "acme"}
        )
        assert used.status_code == 404
        spent = await client.get(
            "/v1/secret/data/nothing", headers={"X-Vault-Token": token, "X-Vault-Namespace": "acme"}
        )
        assert spent.status_code == 403

        # Root's queries see the refusal; the tenant whose namespace it claimed does not.
        admin = await client.post(
            "/v1/auth/token/create",
            headers={**root, "X-Vault-Namespace": "acme"},
            json={"policies": ["root"]},
        )
        tenant_token = admin.json()["auth"]["client_token"]
        as_root = await client.get("/v1/sys/audit/events", headers=root, params={"limit": 1000})
        as_tenant = await client.get(
            "/v1/sys/audit/events",
            headers={"X-Vault-Token": tenant_token, "X-Vault-Namespace": "acme"},
            params={"limit": 1000},
        )
    root_ids = [e["request"]["id"] for e in as_root.json()["data"]["events"]]
    tenant_ids = {e["request"]["id"] for e in as_tenant.json()["data"]["events"]}
    assert root_ids.count(request_id) == 2
    assert tenant_ids  # the tenant's own trail is there ...
    assert request_id not in tenant_ids  # ... but no stranger's claim on its namespace

    log = tmp_path / "audit.log"
    request, response_entry = _entries(log, request_id)
    assert [request["type"], response_entry["type"]] == ["request", "response"]
    for entry in (request, response_entry):
        assert entry["request"]["tenant"] == ""
        assert entry["request"]["namespace"] == {"id": "", "path": ""}
        assert entry["request"]["path"] == ""
        assert entry["request"]["data"] is None
        assert entry["request"]["remote_address"] == "127.0.0.1"
        assert entry["request"]["http"] == {
            "refused": True,
            "method": "POST",
            "raw_path": path_hmac,
            "claimed_namespace": "acme",
        }
        assert entry["auth"]["client_token"] == token_hmac
        assert entry["auth"]["policies"] == []  # nothing was authenticated
    assert response_entry["response"]["status"] == 400
    assert response_entry["response"]["outcome"] == "invalid"
    assert response_entry["error"] == answered
    text = log.read_text()
    for secret in (in_url, in_query, in_body, token, root_token):
        assert secret not in text


async def test_a_refusal_nothing_could_record_keeps_its_status_and_is_counted(
    served: TenantVaultApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(event: object, *, timeout_seconds: float | None = None) -> None:
        raise OSError(28, "No space left on device")

    for sink in served.core.audit_broker.sinks.values():
        monkeypatch.setattr(sink, "write", broken)
    async with _client(served) as client:
        refused = await client.patch(
            "/v1/secret/data/x", content=b"data=x", headers={"Content-Type": "text/plain"}
        )
        health = await client.get("/v1/sys/health")
    # Nothing ran, so nothing fails closed: the answer is the refusal's own.
    assert refused.status_code == 415
    assert refused.headers["x-request-id"]
    audit = health.json()["audit"]
    assert audit["refusal_failures"] == 1
    assert audit["response_failures"] == 0


async def test_a_bad_health_parameter_is_refused_before_the_core_and_audited(
    served: TenantVaultApp, tmp_path: Path
) -> None:
    async with _client(served) as client:
        reply = await client.get("/v1/sys/health", params={"activecode": "999"})
        fine = await client.get("/v1/sys/health", params={"activecode": "204"})
    assert reply.status_code == 400
    assert fine.status_code == 204
    entries = _entries(tmp_path / "audit.log", reply.headers["x-request-id"])
    assert [e["type"] for e in entries] == ["request", "response"]
    assert entries[1]["response"]["status"] == 400
