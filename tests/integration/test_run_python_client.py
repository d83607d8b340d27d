"""The Python API's contract suite (tests/contract: KV, transit, wrapping) run unchanged on the
remote client, `tenantvault.open("http://…", token=…)` against a real `tenantvault serve
--dev` (issue 15, acceptance 5), and `tenantvault.resolve` / `aresolve` for scripts.

The contract tests are taken from their modules as they are; only those that need what a
server cannot give a client are left out, each with its reason: a fake clock (the server
keeps real time) and in-process internals.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import httpx
import pytest

import tenantvault
import tests.contract.test_kv as contract_kv
import tests.contract.test_transit as contract_transit
import tests.contract.test_wrapping as contract_wrapping
from tenantvault import ConfigurationError, NotFoundError, PermissionDeniedError
from tests.contract.test_transit import transit as transit  # the contract's own fixture
from tests.integration._support import canary, remember_secret
from tests.integration.conftest import TenantVaultServer

DEV = pytest.mark.parametrize("tenantvault_server", ["dev"], indirect=True)
# Contract tests a remote client cannot run, with the reason (none is about what it sends).
NOT_REMOTE: dict[str, str] = {
    "test_the_stored_response_opens_only_with_its_token": "reads the sealed record through "
    "the Core (tenantvault.testing), which only an embedded handle has",
}
# The contract fixtures that stand for the store; a test using none of them needs no server.
_STORE_FIXTURES = frozenset({"tv", "acme", "transit"})


def _on_the_server(test: Any) -> Any:
    """A copy of a contract test, marked to run on the dev server (the original is left as
    it is: its own module still runs it on every backend)."""
    copy = types.FunctionType(
        test.__code__, test.__globals__, test.__name__, test.__defaults__, test.__closure__
    )
    copy.__dict__.update(test.__dict__)
    copy.__dict__["pytestmark"] = list(getattr(test, "pytestmark", []))
    copy.__wrapped__ = test  # type: ignore[attr-defined]
    return DEV(copy)


def _remote_tests(module: ModuleType) -> dict[str, Any]:
    tests: dict[str, Any] = {}
    for name, value in vars(module).items():
        if not name.startswith("test_") or not inspect.isfunction(value):
            continue
        parameters = inspect.signature(value).parameters
        if "clock" in parameters:
            continue  # the server's clock is real: time cannot be advanced from here
        if not _STORE_FIXTURES & parameters.keys() or name in NOT_REMOTE:
            continue
        tests[name] = _on_the_server(value)
    return tests


for _module in (contract_kv, contract_transit, contract_wrapping):
    globals().update(_remote_tests(_module))


def _delete_acme(server: TenantVaultServer) -> None:
    # The contract's `acme` fixture always names its tenant acme: a clean one per test.
    response = httpx.delete(
        f"{server.addr}/v1/sys/namespaces/acme", headers={"X-Vault-Token": server.root_token}
    )
    assert response.status_code in (200, 204), response.text


@pytest.fixture
async def tv(tenantvault_server: TenantVaultServer) -> AsyncIterator[tenantvault.TenantVault]:
    """The contract's `tv`: here a remote handle acting with the server's root token."""
    _delete_acme(tenantvault_server)
    async with tenantvault.open(
        tenantvault_server.addr, token=tenantvault_server.root_token
    ) as remote:
        yield remote
    _delete_acme(tenantvault_server)


@DEV
async def test_a_remote_handle_is_the_typed_api_and_its_token_is_its_identity(
    tv: tenantvault.TenantVault,
) -> None:
    assert repr(tv) == "<TenantVault backend=http>"
    await tv.create_tenant("acme")
    acme = tv.tenant("acme")
    await acme.kv.put("app/db", {"password": canary()})
    created = await acme.tokens.create(policies=["default"])
    scoped = tv.with_token(remember_secret(created.token))
    with pytest.raises(PermissionDeniedError):
        await scoped.tenant("acme").kv.get("app/db")


async def test_open_refuses_plain_http_to_a_remote_host_and_a_missing_token() -> None:
    with pytest.raises(ConfigurationError, match="loopback"):
        await tenantvault.open("http://tv.example:8200", token="x")
    with pytest.raises(ConfigurationError, match="needs token="):
        await tenantvault.open("https://tv.example:8200")


@DEV
async def test_resolve_reads_a_reference_sync_and_async(
    tv: tenantvault.TenantVault, tenantvault_server: TenantVaultServer
) -> None:
    value = canary()
    await tv.create_tenant("acme")
    await tv.tenant("acme").kv.put("mcp/github", {"token": value})
    await tv.tenant("acme").kv.put("mcp/github", {"token": "newer"})
    address, token = tenantvault_server.addr, tenantvault_server.root_token
    pinned = "tv://secret/mcp/github?version=1&namespace=acme#token"
    assert await tenantvault.aresolve(pinned, address=address, token=token) == value
    latest = "tv://secret/mcp/github?namespace=acme#token"
    assert await tenantvault.aresolve(latest, address=address, token=token) == "newer"
    with pytest.raises(NotFoundError, match="no field 'nope'"):
        await tenantvault.aresolve(
            "tv://secret/mcp/github?namespace=acme#nope", address=address, token=token
        )


@DEV
def test_resolve_without_a_loop_reads_the_environment(
    tenantvault_server: TenantVaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = canary()
    headers = {"X-Vault-Token": tenantvault_server.root_token}
    response = httpx.post(
        f"{tenantvault_server.addr}/v1/secret/data/run-resolve",
        headers=headers,
        json={"data": {"key": value}},
    )
    assert response.status_code == 200, response.text
    monkeypatch.setenv("VAULT_ADDR", tenantvault_server.addr)
    monkeypatch.setenv("VAULT_TOKEN", tenantvault_server.root_token)
    monkeypatch.delenv("VAULT_NAMESPACE", raising=False)
    assert tenantvault.resolve("tv://secret/run-resolve#key") == value
