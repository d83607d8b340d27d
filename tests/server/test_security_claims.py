"""README security claims that no other test pinned down on its own: every dead token is
refused with one identical answer, and a token's plaintext is never stored."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import tenantvault
from tests.server.conftest import Vault

DENIED = b'{"errors":["permission denied"]}'


async def _answers(vault: Vault, token: str, tenant: str) -> list[tuple[int, bytes]]:
    """What a token gets for a secret read, a self lookup and a token creation."""
    replies = [
        await vault.request("GET", "secret/data/app", token=token, namespace=tenant),
        await vault.request("GET", "auth/token/lookup-self", token=token, namespace=tenant),
        await vault.request("POST", "auth/token/create", token=token, json={}, namespace=tenant),
    ]
    return [(reply.status_code, reply.content) for reply in replies]


async def test_expired_revoked_used_up_malformed_foreign_and_orphaned_tokens_look_alike(
    vault: Vault,
) -> None:
    """README: "Expired, revoked, malformed, used-up and foreign tokens all get the same
    `403 permission denied`" — also a token whose tenant was deleted and created again."""
    admin = await vault.tenant_admin("acme")
    await vault.put("acme", "app", {"v": "x"}, token=admin)
    foreign = str((await vault.create_token(None, ["default"]))["client_token"])
    await vault.tenant_admin("other")
    other_tenant = str((await vault.create_token("other", ["admin"]))["client_token"])

    expiring = str((await vault.create_token("acme", ["admin"], ttl="1s"))["client_token"])
    revoked = str((await vault.create_token("acme", ["admin"]))["client_token"])
    reply = await vault.root("POST", "auth/token/revoke", namespace="acme", json={"token": revoked})
    assert reply.status_code == 204
    used_up = str((await vault.create_token("acme", ["admin"], num_uses=1))["client_token"])
    first = await vault.request("GET", "secret/data/app", token=used_up, namespace="acme")
    assert first.status_code == 200  # its one use
    await vault.tenant_admin("temp")
    stale = str((await vault.create_token("temp", ["admin"]))["client_token"])
    assert (await vault.root("DELETE", "sys/namespaces/temp")).status_code == 200
    await vault.tenant_admin("temp")

    await asyncio.sleep(1.2)  # let `expiring` expire (the dev app runs on the system clock)
    dead = {
        "expired": (expiring, "acme"),
        "revoked": (revoked, "acme"),
        "used up": (used_up, "acme"),
        "malformed": ("tvs.!!not-a-token!!", "acme"),
        "unknown": ("tvs." + "A" * 43, "acme"),
        "root namespace token in a tenant": (foreign, "acme"),
        "another tenant's token": (other_tenant, "acme"),
        "token of a deleted, re-created tenant": (stale, "temp"),
    }
    for kind, (token, tenant) in dead.items():
        answers = await _answers(vault, token, tenant)
        assert answers == [(403, DENIED)] * 3, kind


async def test_a_token_is_stored_only_as_its_keyed_hash(tmp_path: Path) -> None:
    """README: tokens are "stored only as HMAC-SHA256 under a server key": neither the
    plaintext, nor its plain SHA-256, nor the accessor appears anywhere in the data files."""
    data_dir = tmp_path / "data"
    async with tenantvault.open(f"sqlite://{data_dir}") as tv:
        await tv.create_tenant("acme")
        await tv.tenant("acme").policies.write(
            "reader",
            'path "secret/data/*" { capabilities = ["read"] }\n'
            'path "auth/token/create" { capabilities = ["update"] }',
        )
        info = await tv.tenant("acme").tokens.create(policies=["reader"])
        child = await tv.with_token(info.token).tenant("acme").tokens.create(policies=["reader"])
        tokens = [info, child]
    stored = b"".join(path.read_bytes() for path in sorted(data_dir.iterdir()) if path.is_file())
    assert stored, "the store wrote nothing"
    for token in tokens:
        for form in (
            token.token,
            token.token.removeprefix("tvs."),
            hashlib.sha256(token.token.encode()).hexdigest(),
            token.accessor,
        ):
            assert form.encode() not in stored
