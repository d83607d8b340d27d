"""Parameter constraints are enforced at the choke point, on every backend (issue 9).

Each test acts through `tv.with_token(...)`: a policy that denies, requires or limits a
parameter refuses the request with `PermissionDeniedError` before anything is written.
"""

from __future__ import annotations

import pytest

import tenantvault
from tenantvault import NotFoundError, PermissionDeniedError
from tests.conftest import canary

ALL = '["create", "read", "update", "patch", "delete", "list"]'


async def _scoped(tv: tenantvault.TenantVault, policy: str) -> tenantvault.Tenant:
    await tv.create_tenant("acme")
    await tv.tenant("acme").policies.write("p", policy)
    info = await tv.tenant("acme").tokens.create(policies=["p"])
    return tv.with_token(info.token).tenant("acme")


async def test_a_denied_parameter_refuses_the_write_and_nothing_is_written(
    tv: tenantvault.TenantVault,
) -> None:
    acme = await _scoped(
        tv, f'path "secret/*" {{ capabilities = {ALL} denied_parameters = {{ "options" = [] }} }}'
    )
    with pytest.raises(PermissionDeniedError):
        await acme.kv.put("app/db", {"password": canary()}, cas=0)
    with pytest.raises(NotFoundError):
        await tv.tenant("acme").kv.get("app/db")
    # Without the denied parameter the same write passes; the secret's own keys are no
    # parameters, so a key named "options" inside it is fine.
    await acme.kv.put("app/db", {"options": canary()})
    with pytest.raises(PermissionDeniedError):
        await acme.kv.patch("app/db", {"k": "v"}, cas=1)


async def test_required_parameters_apply_to_reads(tv: tenantvault.TenantVault) -> None:
    acme = await _scoped(
        tv, f'path "secret/*" {{ capabilities = {ALL} required_parameters = ["version"] }}'
    )
    await tv.tenant("acme").kv.put("app/db", {"password": canary()})
    with pytest.raises(PermissionDeniedError):
        await acme.kv.get("app/db")
    assert (await acme.kv.get("app/db", version=1)).metadata.version == 1
    # Neither a list nor a delete is checked, as in Vault.
    assert await acme.kv.list("app") == ["db"]
    await acme.kv.delete("app/db")


async def test_an_allowed_value_list_limits_a_transit_key(tv: tenantvault.TenantVault) -> None:
    acme = await _scoped(
        tv,
        'path "transit/keys/*" { capabilities = ["create", "update", "read"]\n'
        '  allowed_parameters = { "type" = ["aes*"] "*" = [] } }',
    )
    await acme.transit.create_key("ok", key_type="aes256-gcm96")
    with pytest.raises(PermissionDeniedError):
        await acme.transit.create_key("no", key_type="chacha20-poly1305")
    with pytest.raises(NotFoundError):
        await tv.tenant("acme").transit.read_key("no")


async def test_the_python_api_sends_what_http_would(tv: tenantvault.TenantVault) -> None:
    """The typed helpers send only the options a caller set, and read options as the
    strings of a query, so a constraint judges them as it judges the same HTTP request."""
    acme = await _scoped(
        tv,
        'path "transit/keys/*" { capabilities = ["create", "update", "read"]\n'
        '  denied_parameters = { "*" = [] } }\n'
        'path "secret/data/*" { capabilities = ["create", "update", "read"]\n'
        '  allowed_parameters = { "version" = ["1"] "data" = [] } }\n'
        'path "secret/subkeys/*" { capabilities = ["read"]\n'
        '  allowed_parameters = { "depth" = ["2"] } }',
    )
    await acme.transit.create_key("plain")  # no options: nothing a denial could refuse
    with pytest.raises(PermissionDeniedError):
        await acme.transit.create_key("typed", key_type="aes256-gcm96")
    await acme.kv.put("app/db", {"password": canary()})
    await acme.kv.put("app/db", {"password": canary()})
    assert (await acme.kv.get("app/db", version=1)).version == 1
    with pytest.raises(PermissionDeniedError):
        await acme.kv.get("app/db", version=2)
    assert await acme.kv.subkeys("app/db") == {"password": None}
    assert await acme.kv.subkeys("app/db", depth=2) == {"password": None}
    with pytest.raises(PermissionDeniedError):
        await acme.kv.subkeys("app/db", depth=1)
