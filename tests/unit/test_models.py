"""The Python API's typed results (`_models.py`): Vault's field names, no secret in a repr."""

from __future__ import annotations

import tenantvault
from tests.conftest import canary


async def test_results_are_typed_and_their_reprs_hide_tokens_and_secret_values(
    tv: tenantvault.TenantVault,
) -> None:
    """What a user prints or logs (`repr` of a result) never holds a token, an accessor,
    secret data or a data key's plaintext; the fields keep Vault's names."""
    tenant = await tv.create_tenant("acme", custom_metadata={"plan": "gold"})
    assert isinstance(tenant, tenantvault.TenantInfo)
    assert (tenant.path, tenant.custom_metadata) == ("acme/", {"plan": "gold"})
    acme = tv.tenant("acme")
    token = await acme.tokens.create(policies=["default"], meta={"app": "ci"})
    looked = await acme.tokens.lookup(token.token)
    by_accessor = await acme.tokens.lookup_accessor(token.accessor)
    renewed = await acme.tokens.renew(token.token)
    assert isinstance(looked, tenantvault.TokenLookup)
    assert (looked.id, looked.accessor, looked.meta) == (token.token, token.accessor, {"app": "ci"})
    assert by_accessor.id == ""
    assert isinstance(renewed, tenantvault.TokenInfo)
    assert renewed.accessor == token.accessor
    secret = canary("model-")
    await acme.kv.put("k", {"v": secret})
    await acme.transit.create_key("dk")
    datakey = await acme.transit.datakey("dk")
    shown = repr([tenant, token, looked, by_accessor, renewed, await acme.kv.get("k"), datakey])
    for hidden in (token.token, token.accessor, secret, repr(datakey.plaintext)):
        assert hidden not in shown
    key = await acme.transit.read_key("dk")
    assert isinstance(key, tenantvault.KeyInfo)
    assert (key.name, key.type, key.latest_version) == ("dk", "aes256-gcm96", 1)
    assert isinstance(await acme.kv.config(), tenantvault.KVConfig)
