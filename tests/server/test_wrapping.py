"""Response wrapping over HTTP (issue 11): X-Vault-Wrap-TTL on any request, the wrapping token,
and sys/wrapping/wrap|unwrap|lookup|rewrap, with OpenBao's shapes, statuses and texts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tenantvault._config import ServerSettings
from tenantvault._core import Core
from tenantvault.audit import AuditBroker
from tenantvault.backends import MemoryBackend
from tenantvault.server import TenantVaultApp, create_app
from tests.conftest import FakeClock, canary
from tests.server.conftest import BASE_URL, Vault

INVALID = {"errors": ["wrapping token is not valid or does not exist"]}
RFC3339_NANO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z\Z")
WRAP = {"X-Vault-Wrap-TTL": "5m"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def audit_log(tmp_path: Path) -> Path:
    return tmp_path / "audit.log"


@pytest.fixture
async def app(
    settings: ServerSettings, clock: FakeClock, audit_log: Path
) -> AsyncIterator[TenantVaultApp]:
    """The server over a memory store with a fake clock and a file audit device."""

    async def factory() -> Core:
        backend = MemoryBackend()
        core = Core(backend, clock=clock, audit=AuditBroker(backend, clock=clock))
        await core.start()
        await core.audit_broker.enable("file", "file", {"file_path": str(audit_log)}, persist=False)
        return core

    async with create_app(settings, core_factory=factory) as started:
        yield started


@pytest.fixture
async def client(app: TenantVaultApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as opened:
        yield opened


async def _wrapped(vault: Vault, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = await vault.root(
        method, path, headers={**WRAP, **kwargs.pop("headers", {})}, **kwargs
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["data"] is None
    assert body["auth"] is None
    info: dict[str, Any] = body["wrap_info"]
    return info


async def _unwrap(vault: Vault, token: str, **kwargs: Any) -> httpx.Response:
    return await vault.request("POST", "sys/wrapping/unwrap", token=token, **kwargs)


async def test_a_wrapped_read_answers_wrap_info_and_unwraps_once(vault: Vault) -> None:
    secret = canary("wrapped-")
    await vault.root("POST", "secret/data/app", json={"data": {"password": secret}})
    response = await vault.root("GET", "secret/data/app", headers=WRAP)
    body = response.json()
    assert response.status_code == 200
    assert secret not in response.text
    # OpenBao's envelope of a wrapped response: no data, no request id, only wrap_info.
    assert body["request_id"] == ""
    assert body["data"] is None
    assert body["auth"] is None
    assert body["warnings"] is None
    info = body["wrap_info"]
    assert set(info) == {"token", "accessor", "ttl", "creation_time", "creation_path"}
    assert info["ttl"] == 300
    assert info["creation_path"] == "secret/data/app"
    assert RFC3339_NANO.match(info["creation_time"])

    unwrapped = await _unwrap(vault, info["token"])
    assert unwrapped.status_code == 200
    assert unwrapped.json()["data"]["data"] == {"password": secret}
    assert unwrapped.json()["wrap_info"] is None

    again = await _unwrap(vault, info["token"])
    assert (again.status_code, again.json()) == (400, INVALID)


@pytest.mark.parametrize(
    ("header", "ttl"), [("300", 300), ("5m", 300), ("1h1m", 3660), ("1.5m", 90), ("1d", 86400)]
)
async def test_the_wrap_ttl_header_takes_seconds_or_a_duration(
    vault: Vault, header: str, ttl: int
) -> None:
    response = await vault.root("GET", "sys/mounts", headers={"X-Vault-Wrap-TTL": header})
    assert response.json()["wrap_info"]["ttl"] == ttl


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("-5", "requested wrap ttl cannot be negative"),
        ("-1m", "requested wrap ttl cannot be negative"),
        ("abc", "time: invalid duration"),
        ("5.5", "time: invalid duration"),
        (
            "9999999999",
            "multiplication of durations resulted in overflow, one operand may be too large",
        ),
    ],
)
async def test_a_bad_wrap_ttl_header_is_400(vault: Vault, header: str, error: str) -> None:
    response = await vault.root("GET", "sys/mounts", headers={"X-Vault-Wrap-TTL": header})
    assert response.status_code == 400
    assert response.json() == {"errors": [f"error parsing X-Vault-Wrap-TTL header: {error}"]}


async def test_a_zero_wrap_ttl_does_not_wrap(vault: Vault) -> None:
    response = await vault.root("GET", "sys/mounts", headers={"X-Vault-Wrap-TTL": "0"})
    assert response.json()["wrap_info"] is None
    assert response.json()["data"]


async def test_the_wrapping_token_is_a_single_use_orphan_with_the_wrapping_policy(
    vault: Vault,
) -> None:
    info = await _wrapped(vault, "GET", "sys/mounts")
    lookup = await vault.root("POST", "auth/token/lookup", json={"token": info["token"]})
    data = lookup.json()["data"]
    assert data["policies"] == ["response-wrapping"]
    assert data["num_uses"] == 1
    assert data["orphan"] is True
    assert data["renewable"] is False
    assert data["explicit_max_ttl"] == data["creation_ttl"] == 300
    assert data["path"] == "sys/mounts"
    assert data["accessor"] == info["accessor"]
    # A token lookup does not use it up.
    assert (await _unwrap(vault, info["token"])).status_code == 200


async def test_the_wrapping_token_opens_nothing_else_and_is_used_up_trying(vault: Vault) -> None:
    await vault.root("POST", "secret/data/app", json={"data": {"a": "b"}})
    info = await _wrapped(vault, "GET", "secret/data/app")
    denied = await vault.request("GET", "secret/data/app", token=info["token"])
    assert denied.status_code == 403
    assert (await _unwrap(vault, info["token"])).json() == INVALID


async def test_lookup_is_unauthenticated_and_does_not_use_the_token(vault: Vault) -> None:
    info = await _wrapped(vault, "GET", "sys/mounts")
    for _ in range(2):
        looked = await vault.request("POST", "sys/wrapping/lookup", json={"token": info["token"]})
        assert looked.status_code == 200
        assert looked.json()["data"] == {
            "creation_path": "sys/mounts",
            "creation_time": info["creation_time"],
            "creation_ttl": 300,
        }
    # The wrapping token in the header is what a lookup without a body reads; it is not used.
    in_header = await vault.request("POST", "sys/wrapping/lookup", token=info["token"])
    assert in_header.json()["data"]["creation_path"] == "sys/mounts"
    assert (await _unwrap(vault, info["token"])).status_code == 200
    after = await vault.request("POST", "sys/wrapping/lookup", json={"token": info["token"]})
    assert (after.status_code, after.json()) == (400, INVALID)
    empty = await vault.request("POST", "sys/wrapping/lookup")
    assert (empty.status_code, empty.json()) == (
        403,
        {"errors": ["error validating wrapping token: token is empty"]},
    )


async def test_unwrap_refuses_every_token_that_is_not_a_wrapping_token(vault: Vault) -> None:
    # The caller's own token (no body): refused before it is used, whatever it is.
    assert (await _unwrap(vault, vault.root_token)).json() == INVALID
    assert (await _unwrap(vault, "tvs.garbage")).json() == INVALID
    # A body token that is no wrapping token: the same answer.
    for token in (vault.root_token, "tvs.garbage"):
        response = await vault.root("POST", "sys/wrapping/unwrap", json={"token": token})
        assert (response.status_code, response.json()) == (400, INVALID)


async def test_wrap_needs_the_header_and_unwraps_to_the_body(vault: Vault) -> None:
    refused = await vault.root("POST", "sys/wrapping/wrap", json={"a": "b"})
    assert (refused.status_code, refused.json()) == (
        400,
        {"errors": ["endpoint requires response wrapping to be used"]},
    )
    info = await _wrapped(vault, "POST", "sys/wrapping/wrap", json={"a": "b", "n": 1})
    assert info["creation_path"] == "sys/wrapping/wrap"
    # Unwrapped with the body form, by a token of its own (root's here).
    response = await vault.root("POST", "sys/wrapping/unwrap", json={"token": info["token"]})
    assert response.json()["data"] == {"a": "b", "n": 1}
    empty = await _wrapped(vault, "POST", "sys/wrapping/wrap", json={})
    assert (await _unwrap(vault, empty["token"])).json()["data"] == {}


async def test_rewrap_moves_the_response_to_a_new_token(vault: Vault) -> None:
    info = await _wrapped(vault, "POST", "sys/wrapping/wrap", json={"k": "v"})
    response = await vault.root(
        "POST", "sys/wrapping/rewrap", json={"token": info["token"]}, headers=WRAP
    )
    assert response.status_code == 200
    new = response.json()["wrap_info"]
    assert new["token"] != info["token"]
    assert (new["ttl"], new["creation_path"]) == (300, "sys/wrapping/wrap")
    assert (await _unwrap(vault, info["token"])).json() == INVALID
    assert (await _unwrap(vault, new["token"])).json()["data"] == {"k": "v"}
    gone = await vault.root("POST", "sys/wrapping/rewrap", json={"token": new["token"]})
    assert (gone.status_code, gone.json()) == (400, INVALID)


async def test_a_204_and_an_empty_list_are_never_wrapped(vault: Vault, app: TenantVaultApp) -> None:
    policy = 'path "x" { capabilities = ["read"] }'
    written = await vault.root("PUT", "sys/policies/acl/p", json={"policy": policy}, headers=WRAP)
    assert written.status_code == 204
    listed = await vault.root("LIST", "secret/metadata/nothing/", headers=WRAP)
    # OpenBao's answer to a wrapped LIST with no keys, before any token is made.
    assert (listed.status_code, listed.json()) == (404, {"errors": ["unsupported path"]})
    assert await app.core.backend.list("_system", "wrapping", "response/") == []


async def test_a_wrapped_token_create_carries_the_wrapped_accessor(vault: Vault) -> None:
    info = await _wrapped(
        vault, "POST", "auth/token/create", json={"policies": ["default"], "ttl": "1h"}
    )
    assert info["creation_path"] == "auth/token/create"
    unwrapped = (await _unwrap(vault, info["token"])).json()
    assert unwrapped["auth"]["accessor"] == info["wrapped_accessor"]
    # The token inside works, once unwrapped.
    own = await vault.request(
        "GET", "auth/token/lookup-self", token=unwrapped["auth"]["client_token"]
    )
    assert own.json()["data"]["accessor"] == info["wrapped_accessor"]


async def test_a_tenant_unwraps_only_its_own_wrapped_responses(vault: Vault) -> None:
    """A wrapped response of tenant A is unwrapped only through A: with its wrapping token as
    the credential (no namespace needed), or with A's namespace; never from B or the root."""
    admin_a = await vault.tenant_admin("acme")
    admin_b = await vault.tenant_admin("other")
    secret = canary("tenant-a-")
    await vault.put("acme", "app", {"k": secret})
    info = await _wrapped(vault, "GET", "secret/data/app", namespace="acme")
    # Lookup from another namespace, the root one named... refused; unnamed: the token's own.
    other = await vault.request(
        "POST", "sys/wrapping/lookup", namespace="other", json={"token": info["token"]}
    )
    assert (other.status_code, other.json()) == (400, INVALID)
    own = await vault.request("POST", "sys/wrapping/lookup", json={"token": info["token"]})
    assert own.json()["data"]["creation_path"] == "secret/data/app"
    # B's admin, with the body form: as if the token did not exist, and it stays usable.
    foreign = await vault.request(
        "POST", "sys/wrapping/unwrap", token=admin_b, json={"token": info["token"]}
    )
    assert (foreign.status_code, foreign.json()) == (400, INVALID)
    # Root in the root namespace: not A's namespace either.
    rooted = await vault.root("POST", "sys/wrapping/unwrap", json={"token": info["token"]})
    assert (rooted.status_code, rooted.json()) == (400, INVALID)
    # The wrapping token sent as its own credential to B's namespace: refused, not used.
    wrong_ns = await _unwrap(vault, info["token"], namespace="other")
    assert (wrong_ns.status_code, wrong_ns.json()) == (400, INVALID)
    # A's admin through A's namespace unwraps it.
    ok = await vault.request(
        "POST", "sys/wrapping/unwrap", token=admin_a, json={"token": info["token"]}
    )
    assert ok.json()["data"]["data"] == {"k": secret}


async def test_a_tenant_wrapping_token_unwraps_without_a_namespace(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await vault.put("acme", "app", {"k": "v"})
    info = await _wrapped(vault, "GET", "secret/data/app", namespace="acme")
    assert (await _unwrap(vault, info["token"])).json()["data"]["data"] == {"k": "v"}


async def test_concurrent_unwraps_give_the_response_to_exactly_one(vault: Vault) -> None:
    info = await _wrapped(vault, "POST", "sys/wrapping/wrap", json={"k": "v"})
    responses = await asyncio.gather(
        *(
            vault.root("POST", "sys/wrapping/unwrap", json={"token": info["token"]})
            for _ in range(20)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * 19


async def test_an_expired_wrapping_token_is_refused_and_its_record_swept(
    vault: Vault, app: TenantVaultApp, clock: FakeClock
) -> None:
    info = await _wrapped(
        vault, "POST", "sys/wrapping/wrap", json={"k": "v"}, headers={"X-Vault-Wrap-TTL": "60"}
    )
    clock.advance(59)
    looked = await vault.request("POST", "sys/wrapping/lookup", json={"token": info["token"]})
    assert looked.status_code == 200
    clock.advance(2)
    looked = await vault.request("POST", "sys/wrapping/lookup", json={"token": info["token"]})
    assert (looked.status_code, looked.json()) == (400, INVALID)
    assert (await _unwrap(vault, info["token"])).json() == INVALID
    assert await app.core.wrapping.sweep(None) == 1
    assert await app.core.wrapping.sweep(None) == 0


async def test_the_stored_response_is_sealed_under_its_token(
    vault: Vault, app: TenantVaultApp
) -> None:
    """The memory store keeps values as given: only the token-derived seal hides the secret."""
    secret = canary("sealed-")
    await _wrapped(vault, "POST", "sys/wrapping/wrap", json={"k": secret})
    backend = app.core.backend
    keys = await backend.list("_system", "wrapping", "response/")
    assert len(keys) == 1
    record = await backend.read("_system", "wrapping", "response/" + keys[0])
    assert record is not None
    assert secret.encode() not in record.value


async def test_audit_records_wrap_info_and_never_the_wrapped_secret(
    vault: Vault, audit_log: Path
) -> None:
    secret = canary("audited-")
    info = await _wrapped(vault, "POST", "auth/token/create", json={"policies": ["default"]})
    await vault.root("POST", "secret/data/app", json={"data": {"k": secret}})
    read = await _wrapped(vault, "GET", "secret/data/app")
    unwrapped = await _unwrap(vault, read["token"])
    assert unwrapped.status_code == 200
    await _unwrap(vault, read["token"])  # the refused second unwrap is audited too
    text = await asyncio.to_thread(audit_log.read_text)
    for value in (secret, info["token"], info["accessor"], info["wrapped_accessor"], read["token"]):
        assert value not in text
    entries = [orjson.loads(line) for line in text.splitlines()]
    responses = [entry for entry in entries if entry["type"] == "response"]
    wrapped = [entry for entry in responses if "wrap_info" in entry["response"]]
    assert [entry["request"]["path"] for entry in wrapped] == [
        "auth/token/create",
        "secret/data/app",
    ]
    for entry in wrapped:
        assert entry["request"]["wrap_ttl"] == 300
        wrap_info = entry["response"]["wrap_info"]
        assert wrap_info["token"].startswith("hmac-sha256:")
        assert wrap_info["ttl"] == 300
        assert entry["response"]["data"] is None
        assert entry["response"]["auth"] is None
    assert wrapped[0]["response"]["wrap_info"]["wrapped_accessor"].startswith("hmac-sha256:")
    unwraps = [entry for entry in responses if entry["request"]["path"] == "sys/wrapping/unwrap"]
    assert [entry["response"]["status"] for entry in unwraps] == [200, 400]
    assert unwraps[0]["response"]["data"]["data"]["k"].startswith("hmac-sha256:")
    assert unwraps[1]["error"] == "wrapping token is not valid or does not exist"


async def test_the_response_wrapping_policy_is_built_in_and_unchangeable(vault: Vault) -> None:
    read = await vault.root("GET", "sys/policies/acl/response-wrapping")
    assert 'path "sys/wrapping/unwrap"' in read.json()["data"]["policy"]
    listed = await vault.root("LIST", "sys/policies/acl")
    assert "response-wrapping" not in listed.json()["data"]["keys"]
    policy = {"policy": 'path "secret/*" { capabilities = ["read"] }'}
    for method, body in (("PUT", policy), ("DELETE", None)):
        response = await vault.root(method, "sys/policies/acl/response-wrapping", json=body)
        assert response.status_code == 400
        verb = "update" if method == "PUT" else "delete"
        assert response.json() == {"errors": [f'cannot {verb} "response-wrapping" policy']}


async def test_a_wrapped_approle_secret_id_is_unwrapped_once_and_logs_in(vault: Vault) -> None:
    """The admin generates a wrapped secret-id; the tool server, holding only the wrapping
    token, unwraps it once and logs in with it."""
    await vault.create_tenant("acme")
    enabled = await vault.root(
        "POST", "sys/auth/approle", namespace="acme", json={"type": "approle"}
    )
    assert enabled.status_code == 204, enabled.text
    role = {"token_policies": ["default"], "secret_id_num_uses": 1}
    await vault.root("POST", "auth/approle/role/tool", namespace="acme", json=role)
    role_id = (await vault.root("GET", "auth/approle/role/tool/role-id", namespace="acme")).json()[
        "data"
    ]["role_id"]
    info = await _wrapped(vault, "POST", "auth/approle/role/tool/secret-id", namespace="acme")
    assert info["creation_path"] == "auth/approle/role/tool/secret-id"
    unwrapped = await _unwrap(vault, info["token"])
    secret_id = unwrapped.json()["data"]["secret_id"]
    assert (await _unwrap(vault, info["token"])).json() == INVALID
    login = await vault.request(
        "POST",
        "auth/approle/login",
        namespace="acme",
        json={"role_id": role_id, "secret_id": secret_id},
    )
    assert login.status_code == 200, login.text
    assert login.json()["auth"]["client_token"]


async def test_the_same_token_in_the_header_and_the_body_is_used_up_for_nothing(
    vault: Vault, app: TenantVaultApp
) -> None:
    """Vault's "do not use the wrapping token in both places": the header uses it up, so the
    body finds nothing; its stored response is destroyed with it."""
    info = await _wrapped(vault, "POST", "sys/wrapping/wrap", json={"k": "v"})
    both = await _unwrap(vault, info["token"], json={"token": info["token"]})
    assert (both.status_code, both.json()) == (400, INVALID)
    assert (await _unwrap(vault, info["token"])).json() == INVALID
    assert await app.core.backend.list("_system", "wrapping", "response/") == []
