"""The served OpenAPI document is accurate: every documented operation answers, with a status
the document lists, for callers with and without a token (a small schemathesis
`status_code_conformance` sweep that needs no extra tool)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tenantvault.server import openapi_spec
from tenantvault.server._openapi_auth import PLAIN_ERRORS
from tests.server.conftest import Vault

pytestmark = pytest.mark.usefixtures("app")

METHODS = ("get", "put", "post", "patch", "delete", "head")
PARAMS = {
    "path": "app",
    "namespace": "acme",
    "name": "pol",
    "kind": "wrapped",
    "algorithm": "sha2-256",
    "bytes": "16",
    "field": "token-ttl",
}
POLICY = 'path "secret/*" { capabilities = ["read"] }'


def _example(schema: dict[str, Any], name: str = "") -> Any:
    """A small valid value for `schema` (enough for the routes: they validate the rest)."""
    if "oneOf" in schema:
        return _example(schema["oneOf"][0], name)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        if not properties:
            return {"key": "value"} if name == "data" else {}
        return {
            key: _example(value, key)
            for key, value in properties.items()
            if key in schema.get("required", []) or key == "data"
        }
    if kind == "array":
        return [_example(schema.get("items", {}), name)]
    if kind == "integer":
        return 1
    if kind == "boolean":
        return False
    return POLICY if name == "policy" else "value"


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    spec = openapi_spec()
    found = []
    for template, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                found.append((template, method, item[method]))
    return found


OPERATIONS = _operations()


def _request_parts(
    template: str, operation: dict[str, Any]
) -> tuple[str, dict[str, str], bytes | None, dict[str, str]]:
    path = template
    for name, value in PARAMS.items():
        path = path.replace("{" + name + "}", value)
    query = {
        p["name"]: str(_example(p["schema"]))
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p.get("required")
    }
    body: bytes | None = None
    headers: dict[str, str] = {}
    if "requestBody" in operation:
        ((media, content),) = operation["requestBody"]["content"].items()
        body = orjson.dumps(_example(content["schema"]))
        headers["Content-Type"] = media
    return path, query, body, headers


@pytest.fixture
async def world(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await vault.write_policy("acme", "pol", POLICY)
    await vault.put("acme", "app", {"v": "x"})
    # The auth methods the document places at auth/approle and auth/jwt, and a role.
    for kind in ("approle", "jwt"):
        enabled = await vault.root(
            "POST", f"sys/auth/{kind}", namespace="acme", json={"type": kind}
        )
        assert enabled.status_code == 204, enabled.text
    role = {"token_policies": "pol"}
    created = await vault.root("POST", "auth/approle/role/pol", namespace="acme", json=role)
    assert created.status_code == 204, created.text


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(
    ("template", "method", "operation"),
    OPERATIONS,
    ids=[f"{m.upper()} {t}" for t, m, _ in OPERATIONS],
)
@pytest.mark.parametrize("caller", ["root+namespace", "root", "anonymous"])
async def test_every_documented_operation_answers_a_documented_status(
    vault: Vault,
    client: httpx.AsyncClient,
    template: str,
    method: str,
    operation: dict[str, Any],
    caller: str,
) -> None:
    path, query, body, headers = _request_parts(template, operation)
    if caller != "anonymous":
        headers["X-Vault-Token"] = vault.root_token
    if caller == "root+namespace" and not template.startswith("/sys/namespaces"):
        headers["X-Vault-Namespace"] = "acme"
    response = await client.request(
        method.upper(), f"/v1{path}", params=query, content=body, headers=headers
    )
    assert str(response.status_code) in operation["responses"], response.text
    if not operation.get(PLAIN_ERRORS):
        assert response.status_code < 500, response.text
    else:
        # Vault's plain errors only (`{"errors": [...]}` with a text), never a crash.
        assert response.status_code != 500 or "Traceback" not in response.text


async def test_the_document_describes_security_and_every_served_route() -> None:
    spec = openapi_spec()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["vaultToken"] == {"type": "apiKey", "in": "header", "name": "X-Vault-Token"}
    for public in ("/sys/health", "/sys/seal-status", "/sys/leader", "/sys/internal/specs/openapi"):
        assert spec["paths"][public]["get"]["security"] == []
    served = {
        "/sys/namespaces/{namespace}",
        "/sys/namespaces",
        "/sys/policies/acl",
        "/sys/policies/acl/{name}",
        "/sys/mounts",
        "/sys/internal/ui/mounts/{path}",
        "/sys/capabilities-self",
        "/secret/config",
        "/secret/data/{path}",
        "/secret/metadata/{path}",
        "/secret/metadata/{path}/",
        "/secret/metadata/",
        "/secret/delete/{path}",
        "/secret/undelete/{path}",
        "/secret/destroy/{path}",
        "/secret/subkeys/{path}",
        "/sys/leader",
        "/sys/audit",
        "/sys/audit/{name}",
        "/sys/audit/events",
        "/sys/audit/report",
        "/sys/audit-hash/{name}",
        "/transit/keys",
        "/transit/keys/{name}",
        "/transit/keys/{name}/config",
        "/transit/keys/{name}/rotate",
        "/transit/encrypt/{name}",
        "/transit/decrypt/{name}",
        "/transit/rewrap/{name}",
        "/transit/datakey/{kind}/{name}",
        "/transit/hmac/{name}",
        "/transit/sign/{name}",
        "/transit/verify/{name}",
        "/transit/random",
        "/transit/hash",
        *(
            f"/auth/token/{action}"
            for action in (
                "create",
                "create-orphan",
                "lookup",
                "lookup-self",
                "lookup-accessor",
                "renew",
                "renew-self",
                "revoke",
                "revoke-self",
                "revoke-accessor",
                "revoke-orphan",
                "renew-accessor",
            )
        ),
        "/sys/auth",
        "/sys/auth/{path}",
        "/sys/auth/{path}/tune",
        "/auth/approle/login",
        "/auth/approle/role",
        "/auth/approle/role/{name}",
        "/auth/approle/role/{name}/role-id",
        "/auth/approle/role/{name}/secret-id",
        "/auth/approle/role/{name}/secret-id-accessor/lookup",
        "/auth/approle/role/{name}/custom-secret-id",
        "/auth/approle/tidy/secret-id",
        "/auth/jwt/config",
        "/auth/jwt/role/{name}",
        "/auth/jwt/login",
        *(f"/sys/wrapping/{action}" for action in ("wrap", "unwrap", "lookup", "rewrap")),
    }
    assert served <= set(spec["paths"])
    for item in spec["paths"].values():
        for method in METHODS:
            if method in item:
                codes = set(item[method]["responses"])
                assert {"400", "403", "404", "405", "500", "503"} <= codes
                if "requestBody" in item[method]:
                    assert "413" in codes
                    media = set(item[method]["requestBody"]["content"])
                    assert ("415" in codes) == (media == {"application/merge-patch+json"})


async def test_document_is_valid_json_served_as_is(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sys/internal/specs/openapi")
    assert orjson.loads(response.content) == openapi_spec()
