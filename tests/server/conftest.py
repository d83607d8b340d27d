"""Fixtures for the HTTP server tests: the ASGI app in-process, a client, and helpers that
build tenants, policies and tokens through the HTTP API itself."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from tenantvault._config import ServerSettings
from tenantvault.server import TenantVaultApp, create_app
from tests.conftest import canary

BASE_URL = "http://tenantvault.test"
JSON = {"Content-Type": "application/json"}
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
# Full access to everything a tenant has: the policy of a tenant's administrator.
ADMIN_POLICY = """
path "secret/*" { capabilities = ["create", "read", "update", "patch", "delete", "list"] }
path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policies/acl" { capabilities = ["list"] }
path "auth/token/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
path "sys/mounts" { capabilities = ["read"] }
path "sys/capabilities-self" { capabilities = ["update"] }
"""
READER_POLICY = """
path "secret/data/app/*" { capabilities = ["read"] }
path "secret/metadata/app/*" { capabilities = ["list", "read"] }
"""


@dataclass
class Reply:
    """A response from the raw ASGI helper."""

    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Captured:
    """Everything a test saw come back, for canary scans."""

    texts: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.texts.append(text)


async def raw_call(
    app: TenantVaultApp,
    method: str,
    raw_path: bytes,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes | list[bytes] = b"",
    query_string: bytes = b"",
    path: str | None = None,
) -> Reply:
    """Call the ASGI app with an exact request target, bypassing any client-side URL
    normalization (httpx resolves '..' itself, so traversal must be sent raw)."""
    chunks = body if isinstance(body, list) else [body]
    position = 0
    received: list[Any] = []

    async def receive() -> dict[str, Any]:
        nonlocal position
        if position < len(chunks):
            position += 1
            return {
                "type": "http.request",
                "body": chunks[position - 1],
                "more_body": position < len(chunks),
            }
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        received.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path if path is not None else raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": query_string,
        "headers": headers or [],
        "client": ("127.0.0.1", 40000),
        "server": ("tenantvault.test", 80),
    }
    await app(scope, receive, send)
    start = received[0]
    assert start["type"] == "http.response.start"
    body_out = b"".join(m.get("body", b"") for m in received[1:])
    return Reply(start["status"], dict(start["headers"]), body_out)


class Vault:
    """A thin HTTP client for tests: the root token, helpers that build fixtures through the
    API, and a record of every response body (for canary scans)."""

    def __init__(self, client: httpx.AsyncClient, root_token: str) -> None:
        self.client = client
        self.root_token = root_token
        self.seen = Captured()

    def headers(
        self, token: str | None = None, namespace: str | None = None, **extra: str
    ) -> dict[str, str]:
        headers: dict[str, str] = dict(extra)
        if token is not None:
            headers["X-Vault-Token"] = token
        if namespace is not None:
            headers["X-Vault-Namespace"] = namespace
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        namespace: str | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = self.headers(token, namespace)
        if json is not None:
            content = orjson.dumps(json)
            all_headers.update(JSON)
        all_headers.update(headers or {})
        response = await self.client.request(
            method, f"/v1/{path}", content=content, headers=all_headers, params=params
        )
        self.seen.add(response.text)
        self.seen.add(str(response.headers))
        return response

    async def root(
        self, method: str, path: str, *, namespace: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        return await self.request(
            method, path, token=self.root_token, namespace=namespace, **kwargs
        )

    async def create_tenant(self, name: str) -> None:
        response = await self.root("POST", f"sys/namespaces/{name}")
        assert response.status_code == 200, response.text

    async def write_policy(self, tenant: str | None, name: str, policy: str) -> None:
        response = await self.root(
            "PUT", f"sys/policies/acl/{name}", namespace=tenant, json={"policy": policy}
        )
        assert response.status_code == 204, response.text

    async def create_token(
        self, tenant: str | None, policies: list[str], *, orphan: bool = False, **fields: Any
    ) -> dict[str, Any]:
        path = "auth/token/create-orphan" if orphan else "auth/token/create"
        response = await self.root(
            "POST", path, namespace=tenant, json={"policies": policies, **fields}
        )
        assert response.status_code == 200, response.text
        auth: dict[str, Any] = response.json()["auth"]
        return auth

    async def tenant_admin(self, tenant: str) -> str:
        """A tenant with an admin policy; returns a token bound to it."""
        await self.create_tenant(tenant)
        await self.write_policy(tenant, "admin", ADMIN_POLICY)
        return str((await self.create_token(tenant, ["admin"]))["client_token"])

    async def put(
        self, tenant: str, path: str, data: Mapping[str, Any], *, token: str | None = None
    ) -> dict[str, Any]:
        response = await self.request(
            "POST",
            f"secret/data/{path}",
            token=token or self.root_token,
            namespace=tenant,
            json={"data": dict(data)},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()["data"]
        return result


@pytest.fixture
def root_token() -> str:
    return canary("root-")


@pytest.fixture
def settings(root_token: str) -> ServerSettings:
    return ServerSettings(dev=True, dev_root_token=root_token)


@pytest.fixture
async def app(settings: ServerSettings) -> AsyncIterator[TenantVaultApp]:
    async with create_app(settings) as started:
        yield started


@pytest.fixture
async def client(app: TenantVaultApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as opened:
        yield opened


@pytest.fixture
def vault(client: httpx.AsyncClient, root_token: str) -> Vault:
    return Vault(client, root_token)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every tenantvault log record, at every level, for canary scans."""
    caplog.set_level(logging.DEBUG, logger="tenantvault")
    return caplog


def assert_no_canary(texts: list[str], *secrets: str) -> None:
    """None of `secrets` (canary values and tokens) may appear in any of `texts`."""
    for secret in secrets:
        for text in texts:
            assert secret not in text, "a canary leaked"
