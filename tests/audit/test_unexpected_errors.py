"""A bug inside a handler (an exception that is no TenantVaultError) still leaves a complete
audit pair: the request entry and a 500 response entry with the same id, and the client gets
a plain 500 with that request id."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from tenantvault._config import ServerSettings
from tenantvault.audit import verify_lines
from tenantvault.engines.kv import KVEngine
from tenantvault.server import create_app
from tests.conftest import canary


async def test_an_unexpected_exception_is_audited_as_a_500_response(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: KVEngine, *args: object) -> None:
        raise ZeroDivisionError("a bug")

    log = tmp_path / "audit.log"
    settings = ServerSettings(
        dev=True, dev_root_token=canary("root-"), audit_file=log, access_log=False
    )
    async with create_app(settings) as app:
        root = {"X-Vault-Token": settings.dev_root_token or ""}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tv.test") as client:
            assert (await client.post("/v1/sys/namespaces/acme", headers=root)).status_code == 200
            monkeypatch.setattr(KVEngine, "_read", broken)
            reply = await client.get(
                "/v1/secret/data/app", headers={**root, "X-Vault-Namespace": "acme"}
            )
    assert reply.status_code == 500
    assert reply.json() == {"errors": ["internal error"]}
    request_id = reply.headers["x-request-id"]
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert verify_lines(log.read_bytes().splitlines(keepends=True)).ok
    reads = [e for e in entries if e.get("request", {}).get("path") == "secret/data/app"]
    assert [e["type"] for e in reads] == ["request", "response"]
    assert reads[0]["request"]["id"] == reads[1]["request"]["id"]
    assert reads[0]["request"]["id"] == request_id
    assert reads[1]["response"]["status"] == 500
    assert reads[1]["error"] == "internal error"
    assert "a bug" not in log.read_text()
