"""Issue 4, acceptance 1, and issue 9, acceptance 3: over a mixed HTTP load across tenants —
allowed, denied, invalid, refused by the HTTP layer before translation (malformed JSON, bad
encodings, 404 outside /v1/, 408, 413, 414, 415, 431, a token in the query string, a client
that leaves mid-body) and failing with a bug (in a handler and in translation) — every
request has exactly one request entry and one response entry, matched by id, in the file
sink and in the queryable store alike; every answer names its id in `X-Request-Id`; and no
canary or token is anywhere in the trail."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tenantvault._config import ServerSettings
from tenantvault._request import Response
from tenantvault.audit import StoreSink, verify_lines
from tenantvault.engines._route import Call
from tenantvault.engines.kv import KVEngine
from tenantvault.server import TenantVaultApp, create_app
from tenantvault.server._json import parse_body
from tests.audit._layouts import store_rows
from tests.conftest import canary
from tests.server.conftest import raw_call

TENANTS = [f"tenant-{n}" for n in range(5)]
# A tenant whose KV reads hit an injected bug (not a TenantVaultError) in the handler.
BOOM = "tenant-boom"
# A body whose parsing hits an injected bug in the HTTP layer, before any Request exists.
EXPLODING_BODY = b'{"explode": true}'
MAX_BODY = 4096


async def _slow_body(app: TenantVaultApp, path: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """A POST whose body never arrives: the body timeout answers 408."""

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(30)
        return {"type": "http.disconnect"}

    return await _status_of(app, "POST", path, headers, receive)


async def _walk_away(app: TenantVaultApp, path: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """A POST whose client leaves before the body: nothing is answered (499 in our logs)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    return await _status_of(app, "POST", path, headers, receive)


async def _status_of(
    app: TenantVaultApp,
    method: str,
    path: bytes,
    headers: list[tuple[bytes, bytes]],
    receive: Callable[[], Awaitable[dict[str, Any]]],
) -> int:
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path.decode("latin-1"),
        "raw_path": path,
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 40001),
        "server": ("tenantvault.test", 80),
    }
    await app(scope, receive, send)
    return int(sent[0]["status"]) if sent else 499


def _store_rows(app: TenantVaultApp) -> list[tuple[str, str, str]]:
    store = app.core.audit_broker.store()
    assert isinstance(store, StoreSink)
    rows = [row[1:] for row in store_rows(store, "id, type, request_id, entry")]
    return [(str(kind), str(request_id), str(entry)) for kind, request_id, entry in rows]


async def _mixed_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, total: int) -> None:
    original_read = KVEngine._read

    async def read_with_a_bug(self: KVEngine, call: Call, *args: Any) -> Response:
        if call.tenant == BOOM:
            raise ZeroDivisionError("an injected bug")
        return await original_read(self, call, *args)

    def parse_with_a_bug(raw: bytes, **limits: int) -> dict[str, Any]:
        if raw == EXPLODING_BODY:
            raise KeyError("an injected bug")
        return parse_body(raw, **limits)

    monkeypatch.setattr(KVEngine, "_read", read_with_a_bug)
    monkeypatch.setattr("tenantvault.server._app.parse_body", parse_with_a_bug)

    log = tmp_path / "audit.log"
    settings = ServerSettings(
        dev=True,
        dev_root_token=canary("root-"),
        audit_file=log,
        audit_fsync="never",
        access_log=False,
        max_request_bytes=MAX_BODY,
        body_timeout_seconds=0.2,
    )
    app = create_app(settings)
    await app.startup()
    rng = random.Random(20261128)
    sent_ids: list[str] = []
    statuses: Counter[int] = Counter()
    # A secret a client put in a URL by mistake, and one in an oversized body.
    url_secret = canary("url-")
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tv.test") as client:
            root = {"X-Vault-Token": settings.dev_root_token or ""}
            tokens = {}
            for tenant in [*TENANTS, BOOM]:
                await client.post(f"/v1/sys/namespaces/{tenant}", headers=root)
                created = await client.post(
                    "/v1/auth/token/create",
                    headers={**root, "X-Vault-Namespace": tenant},
                    json={"policies": ["root"]},
                )
                tokens[tenant] = created.json()["auth"]["client_token"]
            setup = 2 * (len(TENANTS) + 1)

            async def one(n: int) -> int:
                tenant = rng.choice(TENANTS)
                token = tokens[tenant]
                headers = {"X-Vault-Token": token, "X-Vault-Namespace": tenant}
                raw_headers = [(b"x-vault-token", token.encode()), (b"host", b"tv.test")]
                kind = n % 20
                reply: httpx.Response | None = None
                if kind == 0:
                    reply = await client.post(
                        f"/v1/secret/data/k{n % 50}",
                        headers=headers,
                        json={"data": {"v": canary()}},
                    )
                elif kind == 1:
                    reply = await client.get(f"/v1/secret/data/k{n % 50}", headers=headers)
                elif kind == 2:  # denied: another tenant's namespace
                    other = TENANTS[(TENANTS.index(tenant) + 1) % len(TENANTS)]
                    reply = await client.get(
                        "/v1/secret/data/k1", headers={**headers, "X-Vault-Namespace": other}
                    )
                elif kind == 3:  # invalid: a CAS conflict
                    reply = await client.post(
                        f"/v1/secret/data/k{n % 50}",
                        headers=headers,
                        json={"data": {"v": "x"}, "options": {"cas": 999_999}},
                    )
                elif kind == 4:  # denied: a bad token
                    reply = await client.get(
                        "/v1/secret/data/k1", headers={"X-Vault-Token": "tvs.nope"}
                    )
                elif kind == 5:  # malformed JSON
                    reply = await client.post(
                        "/v1/secret/data/k1",
                        headers={**headers, "Content-Type": "application/json"},
                        content=b'{"data": {"v": "' + canary().encode(),
                    )
                elif kind == 6:  # bad encodings: invalid UTF-8, %00, an encoded '/'
                    target = [b"/v1/secret/data/\xff\xfe", b"/v1/secret/data/a%00b"][n % 2]
                    if n % 3 == 0:
                        target = b"/v1/secret/data/a%2Fb"
                    return await _raw(app, "GET", target, raw_headers)
                elif kind == 7:  # 413, announced by Content-Length
                    reply = await client.post(
                        "/v1/secret/data/k1",
                        headers=headers,
                        json={"data": {"v": canary() * 200}},
                    )
                elif kind == 8:  # 413, streamed without a length
                    chunks = [b'{"data": {"v": "', canary().encode() * 200, b'"}}']
                    return await _raw(app, "POST", b"/v1/secret/data/k1", raw_headers, chunks)
                elif kind == 9:  # 414: a path too long, holding a secret put there by mistake
                    target = f"/v1/secret/data/{url_secret}/".encode() + b"a" * 5000
                    return await _raw(app, "GET", target, raw_headers)
                elif kind == 10:  # 414: a query string too long
                    reply = await client.get(
                        "/v1/secret/data/k1", headers=headers, params={"v": "q" * 5000}
                    )
                elif kind == 11:  # 415: a PATCH labelled as curl -d labels it
                    reply = await client.patch(
                        "/v1/secret/data/k1",
                        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                        content=b"data=x",
                    )
                elif kind == 12:  # 431
                    many = [*raw_headers, *((b"x-h%d" % i, b"v") for i in range(200))]
                    return await _raw(app, "GET", b"/v1/secret/data/k1", many)
                elif kind == 13:  # a token in the query string
                    reply = await client.get("/v1/secret/data/k1", params={"token": token})
                elif kind == 14:  # an injected bug in a handler
                    reply = await client.get(
                        "/v1/secret/data/k1",
                        headers={"X-Vault-Token": tokens[BOOM], "X-Vault-Namespace": BOOM},
                    )
                elif kind == 15:  # an injected bug in the HTTP layer's translation
                    reply = await client.post(
                        "/v1/secret/data/k1",
                        headers={**headers, "Content-Type": "application/json"},
                        content=EXPLODING_BODY,
                    )
                elif kind == 16:  # outside /v1/: a scanner's probe
                    reply = await client.get("/.env", headers=headers)
                elif kind == 17:  # 408: the body never comes
                    return await _slow_body(app, b"/v1/secret/data/k1", raw_headers)
                elif kind == 18:  # the client leaves before its body: audited, not answered
                    return await _walk_away(app, b"/v1/secret/data/k1", raw_headers)
                else:  # a claimed namespace and a refusal: duplicate token headers
                    reply = await client.get(
                        "/v1/secret/data/k1",
                        headers=[
                            ("X-Vault-Token", token),
                            ("X-Vault-Token", token),
                            ("X-Vault-Namespace", tenant),
                        ],
                    )
                assert reply is not None
                sent_ids.append(reply.headers.get("x-request-id", ""))
                return reply.status_code

            async def _raw(
                app: TenantVaultApp,
                method: str,
                target: bytes,
                headers: list[tuple[bytes, bytes]],
                body: list[bytes] | None = None,
            ) -> int:
                answer = await raw_call(app, method, target, headers=headers, body=body or b"")
                sent_ids.append(answer.headers.get(b"x-request-id", b"").decode())
                return answer.status

            for start in range(0, total, 200):
                batch = await asyncio.gather(
                    *(one(n) for n in range(start, min(start + 200, total)))
                )
                statuses.update(batch)
            stored = _store_rows(app)
    finally:
        await app.shutdown()

    for status in (200, 400, 403, 404, 408, 413, 414, 415, 431, 499, 500):
        assert statuses[status] > 0, status
    assert all(sent_ids), "every answer names its request id"
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]
    requests = Counter(e["request"]["id"] for e in entries if e["type"] == "request")
    responses = Counter(e["request"]["id"] for e in entries if e["type"] == "response")
    assert sum(requests.values()) == total + setup
    assert all(count == 1 for count in requests.values())
    assert requests == responses
    assert set(sent_ids) <= set(requests)
    # The queryable store holds exactly the same pairs.
    assert Counter(rid for kind, rid, _ in stored if kind == "request") == requests
    assert Counter(rid for kind, rid, _ in stored if kind == "response") == responses
    # Refusals belong to no tenant, whatever namespace they claimed.
    refused = [e for e in entries if e.get("request", {}).get("http", {}).get("refused")]
    assert refused
    assert all(e["request"]["tenant"] == "" for e in refused)
    assert all(e["request"]["namespace"] == {"id": "", "path": ""} for e in refused)
    assert verify_lines(log.read_bytes().splitlines(keepends=True)).ok
    for text in (log.read_text(), "\n".join(entry for _, _, entry in stored)):
        assert "CANARY" not in text
        assert url_secret not in text
        assert all(token not in text for token in tokens.values())
        assert (settings.dev_root_token or "-") not in text


async def test_every_request_and_every_refusal_is_audited_once_with_its_response(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _mixed_load(tmp_path, monkeypatch, 400)


@pytest.mark.slow
async def test_every_request_is_audited_once_with_its_response(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _mixed_load(tmp_path, monkeypatch, 10_000)
