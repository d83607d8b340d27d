"""Route parameters: a handler gets only the top-level keys its route declares, and a write
with any other key is answered with Vault's warning and otherwise unchanged (as OpenBao).

The suites run with `Core.strict_parameters` (tests/conftest.py), so every handler that asks
for a key its route did not declare already fails its own tests; here: the spy over every
endpoint, the warning per engine, and that every route in the source declares its set.
"""

from __future__ import annotations

import ast
import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import tenantvault
from tenantvault import _core
from tenantvault._request import Request
from tenantvault.engines._route import Parameters, Route, UndeclaredParameterError
from tests.server.conftest import MERGE_PATCH, Vault

pytestmark = pytest.mark.usefixtures("app")

BOGUS = "bogus_parameter"
# Stand-ins in ENDPOINTS for values an earlier answer gave.
CIPHERTEXT, SIGNATURE, ACCESSOR = "<ciphertext>", "<signature>", "<accessor>"
WARNING = f"Endpoint ignored these unrecognized parameters: [{BOGUS}]"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
async def acme(vault: Vault) -> str:
    await vault.create_tenant("acme")
    return "acme"


async def _root(vault: Vault, method: str, path: str, **kwargs: Any) -> Any:
    response = await vault.root(method, path, namespace="acme", **kwargs)
    assert response.status_code in (200, 204), (method, path, response.text)
    return response.json() if response.status_code == 200 else None


# -- the spy: every endpoint, each sent one undeclared key ----------------------------------

# (method, path, body) in order: each sets up what the next ones need.
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "secret/config", {"max_versions": 5}),
    ("GET", "secret/config", None),
    ("POST", "secret/data/app", {"data": {"a": "1"}, "options": {}}),
    ("PATCH", "secret/data/app", {"data": {"b": "2"}}),
    ("GET", "secret/data/app", None),
    ("GET", "secret/subkeys/app", None),
    ("POST", "secret/metadata/app", {"custom_metadata": {"k": "v"}}),
    ("PATCH", "secret/metadata/app", {"custom_metadata": {"k": "w"}}),
    ("GET", "secret/metadata/app", None),
    ("LIST", "secret/metadata", None),
    ("POST", "secret/delete/app", {"versions": [1]}),
    ("POST", "secret/undelete/app", {"versions": [1]}),
    ("POST", "secret/destroy/app", {"versions": [1]}),
    ("DELETE", "secret/data/app", None),
    ("DELETE", "secret/metadata/app", None),
    ("POST", "sys/mounts/kv1", {"type": "kv", "description": "v1"}),
    ("POST", "kv1/one", {"a": "1"}),
    ("GET", "kv1/one", None),
    ("LIST", "kv1", None),
    ("DELETE", "kv1/one", None),
    ("GET", "sys/mounts/kv1/tune", None),
    ("POST", "sys/mounts/kv1/tune", {"description": "tuned"}),
    ("GET", "sys/mounts/kv1", None),
    ("GET", "sys/mounts", None),
    ("DELETE", "sys/mounts/kv1", None),
    ("POST", "transit/keys/k", {"type": "aes256-gcm96"}),
    ("GET", "transit/keys/k", None),
    ("LIST", "transit/keys", None),
    ("POST", "transit/keys/k/config", {"deletion_allowed": True}),
    ("POST", "transit/keys/k/rotate", {}),
    ("POST", "transit/encrypt/k", {"plaintext": _b64("hi")}),
    ("POST", "transit/encrypt/k", {"batch_input": [{"plaintext": _b64("hi")}]}),
    ("POST", "transit/datakey/plaintext/k", {}),
    ("POST", "transit/hmac/k", {"input": _b64("hi")}),
    ("POST", "transit/random/16", {"format": "hex"}),
    ("POST", "transit/hash", {"input": _b64("hi")}),
    ("POST", "transit/decrypt/k", {"ciphertext": CIPHERTEXT}),
    ("POST", "transit/rewrap/k", {"ciphertext": CIPHERTEXT}),
    ("POST", "transit/keys/s", {"type": "ed25519"}),
    ("POST", "transit/sign/s", {"input": _b64("hi")}),
    ("POST", "transit/verify/s", {"input": _b64("hi"), "signature": SIGNATURE}),
    ("DELETE", "transit/keys/k", None),
    ("POST", "auth/token/create", {"policies": ["default"]}),
    ("POST", "auth/token/lookup-self", {}),
    ("POST", "auth/token/lookup-accessor", {"accessor": ACCESSOR}),
    ("POST", "auth/token/revoke-accessor", {"accessor": ACCESSOR}),
    ("POST", "sys/policies/acl/p", {"policy": 'path "a" { capabilities = ["read"] }'}),
    ("GET", "sys/policies/acl/p", None),
    ("LIST", "sys/policies/acl", None),
    ("POST", "sys/policy/q", {"rules": 'path "a" { capabilities = ["read"] }'}),
    ("LIST", "sys/policy", None),
    ("DELETE", "sys/policies/acl/p", None),
    ("POST", "sys/capabilities-self", {"paths": ["secret/data/x"]}),
]
# The same, in the root namespace: namespaces, the audit area, the public probes.
ROOT_ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "sys/namespaces/other", {"custom_metadata": {"k": "v"}}),
    ("GET", "sys/namespaces/other", None),
    ("LIST", "sys/namespaces", None),
    ("DELETE", "sys/namespaces/other", None),
    ("GET", "sys/audit", None),
    ("GET", "sys/audit/events", None),
    ("GET", "sys/audit/report", {"tenant": "acme"}),
    ("GET", "sys/health", None),
    ("GET", "sys/seal-status", None),
]


async def test_every_declared_route_hands_its_handler_only_declared_keys(
    vault: Vault, acme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, frozenset[str] | None, set[str]]] = []
    declared = _core._declared

    def spy(route: Route, request: Request) -> Mapping[str, Any]:
        handed = declared(route, request)
        seen.append((route.acl_path, route.parameters, set(handed)))
        return handed

    monkeypatch.setattr(_core, "_declared", spy)
    earlier: dict[str, str] = {}
    steps = [("acme", *step) for step in ENDPOINTS] + [(None, *step) for step in ROOT_ENDPOINTS]
    for namespace, method, path, body in steps:
        headers = MERGE_PATCH if method == "PATCH" else None
        if method in ("GET", "LIST"):
            params = {**(body or {}), BOGUS: "1"}
            response = await vault.root(method, path, namespace=namespace, params=params)
        elif body is None:
            response = await vault.root(method, path, namespace=namespace)
        else:
            sent = {key: earlier.get(str(value), value) for key, value in body.items()}
            response = await vault.root(
                method, path, namespace=namespace, json={**sent, BOGUS: 1}, headers=headers
            )
        assert response.status_code in (200, 204), (method, path, response.text)
        answer = response.json() if response.status_code == 200 else {}
        for name, field in ((CIPHERTEXT, "ciphertext"), (SIGNATURE, "signature")):
            if field in (answer.get("data") or {}):
                earlier[name] = answer["data"][field]
        if "accessor" in (answer.get("auth") or {}):
            earlier[ACCESSOR] = answer["auth"]["accessor"]
    assert len(seen) == len(steps)
    for acl_path, parameters, keys in seen:
        if acl_path.startswith("kv1/") and parameters is None:
            continue  # a KV v1 write: free-form, its keys are the secret
        assert parameters is not None, acl_path
        assert BOGUS not in keys, acl_path
        assert keys <= parameters, acl_path


# -- per engine: the warning, and nothing else changes -------------------------------------


async def test_kv_v2_write_warns_and_stores_only_the_data(vault: Vault, acme: str) -> None:
    written = await _root(vault, "POST", "secret/data/app", json={"data": {"a": "1"}, BOGUS: 1})
    assert written["warnings"] == [WARNING]
    read = await _root(vault, "GET", "secret/data/app")
    assert read["data"]["data"] == {"a": "1"}
    assert read["warnings"] is None
    # A query parameter is a parameter too (OpenBao warns on reads as well).
    queried = await _root(vault, "GET", "secret/data/app", params={BOGUS: "1"})
    assert queried["warnings"] == [WARNING]
    assert queried["data"] == read["data"]


async def test_kv_v2_metadata_write_ignores_it_silently_with_204(vault: Vault, acme: str) -> None:
    # OpenBao: a 204 carries no warning.
    assert await _root(vault, "POST", "secret/metadata/app", json={BOGUS: 1}) is None
    metadata = await _root(vault, "GET", "secret/metadata/app")
    assert BOGUS not in metadata["data"]


async def test_kv_v1_write_is_free_form(vault: Vault, acme: str) -> None:
    await _root(vault, "POST", "sys/mounts/kv1", json={"type": "kv"})
    assert await _root(vault, "POST", "kv1/one", json={"a": "1", BOGUS: 1}) is None
    read = await _root(vault, "GET", "kv1/one")
    assert read["data"] == {"a": "1", BOGUS: 1}


async def test_transit_warns_and_the_key_is_as_without_it(vault: Vault, acme: str) -> None:
    created = await _root(vault, "POST", "transit/keys/k", json={BOGUS: True})
    assert created["warnings"] == [WARNING]
    plain = await _root(vault, "POST", "transit/keys/plain", json={})
    assert {**created["data"], "name": "plain", "keys": None} == {
        **plain["data"],
        "keys": None,
    }
    encrypted = await _root(
        vault, "POST", "transit/encrypt/k", json={"plaintext": _b64("hi"), BOGUS: 1}
    )
    assert encrypted["warnings"] == [WARNING]
    decrypted = await _root(
        vault, "POST", "transit/decrypt/k", json={"ciphertext": encrypted["data"]["ciphertext"]}
    )
    assert decrypted["data"]["plaintext"] == _b64("hi")
    assert decrypted["warnings"] is None


async def test_unknown_keys_are_listed_sorted_in_one_warning(vault: Vault, acme: str) -> None:
    encrypted = await _root(
        vault,
        "POST",
        "transit/encrypt/k",
        json={"plaintext": _b64("hi"), "zeta": 1, "alpha": 2, "mid": 3},
    )
    assert encrypted["warnings"] == [
        "Endpoint ignored these unrecognized parameters: [alpha mid zeta]"
    ]


async def test_token_create_warns_and_the_token_is_as_asked(vault: Vault, acme: str) -> None:
    created = await _root(
        vault, "POST", "auth/token/create", json={"policies": ["default"], BOGUS: 1}
    )
    assert created["warnings"] == [WARNING]
    assert created["auth"]["policies"] == ["default"]


async def test_sys_warns_on_answers_with_a_body_only(vault: Vault, acme: str) -> None:
    capabilities = await _root(
        vault, "POST", "sys/capabilities-self", json={"paths": ["secret/data/x"], BOGUS: 1}
    )
    assert capabilities["warnings"] == [WARNING]
    policy = 'path "a" { capabilities = ["read"] }'
    assert (
        await _root(vault, "POST", "sys/policies/acl/p", json={"policy": policy, BOGUS: 1}) is None
    )
    assert (await _root(vault, "GET", "sys/policies/acl/p"))["data"]["policy"] == policy
    created = await vault.root("POST", "sys/namespaces/other", json={BOGUS: 1})
    assert created.json()["warnings"] == [WARNING]


async def test_a_policy_still_denies_a_parameter_the_route_ignores(vault: Vault) -> None:
    """Constraints are checked on the whole request: an ignored key can still be denied."""
    await vault.create_tenant("acme")
    await vault.write_policy(
        "acme",
        "writer",
        f'path "secret/data/*" {{ capabilities = ["create", "update"]'
        f' denied_parameters = {{ "{BOGUS}" = [] }} }}',
    )
    token = (await vault.create_token("acme", ["writer"]))["client_token"]
    denied = await vault.request(
        "POST",
        "secret/data/app",
        token=token,
        namespace="acme",
        json={"data": {"a": "1"}, BOGUS: 1},
    )
    assert denied.status_code == 403


# -- the mapping and the declarations ------------------------------------------------------


def test_parameters_hold_only_declared_keys_and_strict_refuses_the_rest() -> None:
    data = Parameters({"a": 1, "b": 2}, frozenset({"a", "c"}), strict=True)
    assert dict(data) == {"a": 1}
    assert data.get("c") is None
    assert "c" not in data
    with pytest.raises(UndeclaredParameterError):
        data.get("b")
    with pytest.raises(UndeclaredParameterError):
        _ = "b" in data
    lenient = Parameters({"a": 1, "b": 2}, frozenset({"a"}))
    assert lenient.get("b") is None


def test_every_route_in_the_source_declares_its_parameters() -> None:
    """`parameters=` on every `Route(...)`: None only where it says why (KV v1 writes,
    sys/wrapping/wrap, whose whole body is what gets wrapped, and gateway passthrough mounts,
    whose parameters are the upstream engine's)."""
    missing: list[str] = []
    free_form: list[str] = []
    root = Path(tenantvault.__file__).parent
    for source in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Route"):
                continue
            where = f"{source.relative_to(root)}:{node.lineno}"
            keyword = next((k for k in node.keywords if k.arg == "parameters"), None)
            if keyword is None:
                missing.append(where)
            elif isinstance(keyword.value, ast.Constant) and keyword.value.value is None:
                free_form.append(where)
    assert missing == []
    assert [where.partition(":")[0] for where in free_form] == [
        "engines/kv_v1.py",
        "engines/wrapping.py",
        "upstream/engines/_passthrough.py",
    ]
