"""Issue 4, acceptance 1: over 10,000 mixed HTTP requests across 5 tenants — allowed, denied,
invalid — every request that reached the server has exactly one request entry and one response
entry (matched by id), in the file sink and in the queryable store alike."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from tenantvault._config import ServerSettings
from tenantvault.audit import verify_lines
from tenantvault.server import create_app
from tests.conftest import canary

TENANTS = [f"tenant-{n}" for n in range(5)]
REQUESTS = 10_000


@pytest.mark.slow
async def test_every_request_is_audited_once_with_its_response(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    settings = ServerSettings(
        dev=True,
        dev_root_token=canary("root-"),
        audit_file=log,
        audit_fsync="never",
        access_log=False,
    )
    app = create_app(settings)
    await app.startup()
    rng = random.Random(20261128)
    sent_ids: list[str] = []
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tv.test") as client:
            root = {"X-Vault-Token": settings.dev_root_token or ""}
            tokens = {}
            for tenant in TENANTS:
                await client.post(f"/v1/sys/namespaces/{tenant}", headers=root)
                created = await client.post(
                    "/v1/auth/token/create",
                    headers={**root, "X-Vault-Namespace": tenant},
                    json={"policies": ["root"]},
                )
                tokens[tenant] = created.json()["auth"]["client_token"]
            setup = 2 * len(TENANTS)

            async def one(n: int) -> int:
                tenant = rng.choice(TENANTS)
                headers = {"X-Vault-Token": tokens[tenant], "X-Vault-Namespace": tenant}
                kind = n % 5
                if kind == 0:
                    response = await client.post(
                        f"/v1/secret/data/k{n % 50}",
                        headers=headers,
                        json={"data": {"v": canary()}},
                    )
                elif kind == 1:
                    response = await client.get(f"/v1/secret/data/k{n % 50}", headers=headers)
                elif kind == 2:  # denied: another tenant's namespace
                    other = TENANTS[(TENANTS.index(tenant) + 1) % len(TENANTS)]
                    response = await client.get(
                        "/v1/secret/data/k1", headers={**headers, "X-Vault-Namespace": other}
                    )
                elif kind == 3:  # invalid: a CAS conflict
                    response = await client.post(
                        f"/v1/secret/data/k{n % 50}",
                        headers=headers,
                        json={"data": {"v": "x"}, "options": {"cas": 999_999}},
                    )
                else:  # denied: a bad token
                    response = await client.get(
                        "/v1/secret/data/k1", headers={"X-Vault-Token": "tvs.nope"}
                    )
                sent_ids.append(response.headers.get("x-request-id", ""))
                return response.status_code

            statuses: Counter[int] = Counter()
            for start in range(0, REQUESTS, 200):
                batch = await asyncio.gather(*(one(n) for n in range(start, start + 200)))
                statuses.update(batch)
    finally:
        await app.shutdown()

    assert statuses[200] + statuses[204] > 0
    assert statuses[403] > 0
    assert statuses[400] > 0
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]
    requests = Counter(e["request"]["id"] for e in entries if e["type"] == "request")
    responses = Counter(e["request"]["id"] for e in entries if e["type"] == "response")
    assert sum(requests.values()) == REQUESTS + setup
    assert all(count == 1 for count in requests.values())
    assert requests == responses
    assert set(sent_ids) <= set(requests)
    assert verify_lines(log.read_bytes().splitlines(keepends=True)).ok
    text = log.read_text()
    assert "CANARY" not in text
    assert all(token not in text for token in tokens.values())
