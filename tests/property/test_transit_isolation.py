"""Property: a tenant's transit keys, key names and ciphertexts are useless and invisible to others.

Two tenants whose ids collide by prefix (`acme`, `acme-evil`) each get a token with full
rights on their own `transit/`. Hypothesis drives random key creations, encryptions and
cross-tenant attempts, and checks after every step that:

- a ciphertext made in tenant A, handed to tenant B under the same key name, fails exactly as
  a well-formed ciphertext that no key ever made (same class, status and message) — whether
  or not B has a key of that name, and whatever its version;
- B's key list and key reads never show a name only A created;
- A's own ciphertexts still decrypt for A;
- a foreign tenant's token gets the one indistinguishable denial on any transit path.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import tenantvault
from tenantvault import Operation, PermissionDeniedError, TenantVaultError

TENANTS = ["acme", "acme-evil"]
NAMES = ["pii", "k1", "shared", "acme-evil"]
TYPES = ["aes256-gcm96", "aes128-gcm96", "chacha20-poly1305"]
POLICY = 'path "transit/*" { capabilities = ["create", "read", "update", "delete", "list"] }'


def _outcome(error: TenantVaultError) -> tuple[str, int, list[str]]:
    return (type(error).__name__, error.status, error.errors)


def _look_alike(ciphertext: str) -> str:
    """A ciphertext of the same version and length that no key made (zeros in the body)."""
    prefix, _, body = ciphertext.rpartition(":")
    size = len(base64.b64decode(body))
    return f"{prefix}:{base64.b64encode(bytes(size)).decode()}"


class TransitIsolation(RuleBasedStateMachine):
    url = "memory://"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        url = self.url.replace("{tmp}", str(Path(self.tmp.name)))
        self.tv: tenantvault.TenantVault = self.run(tenantvault.open(url))
        self.scoped: dict[str, tenantvault.Transit] = {}
        self.made: dict[str, list[tuple[str, str, bytes, bytes | None]]] = {t: [] for t in TENANTS}
        self.created: dict[str, set[str]] = {t: set() for t in TENANTS}
        self.tokens: dict[str, str] = {}
        for tenant in TENANTS:
            self.run(self.tv.create_tenant(tenant))
            acme = self.tv.tenant(tenant)
            self.run(acme.policies.write("transit", POLICY))
            token = self.run(acme.tokens.create(policies=["transit"]))
            self.tokens[tenant] = token.token
            self.scoped[tenant] = self.tv.with_token(token.token).tenant(tenant).transit

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def teardown(self) -> None:
        self.run(self.tv.aclose())
        self.loop.close()
        self.tmp.cleanup()

    @rule(
        tenant=st.sampled_from(TENANTS),
        name=st.sampled_from(NAMES),
        key_type=st.sampled_from(TYPES),
        derived=st.booleans(),
    )
    def create_key(self, tenant: str, name: str, key_type: str, derived: bool) -> None:
        self.run(self.scoped[tenant].create_key(name, key_type=key_type, derived=derived))
        self.created[tenant].add(name)

    @rule(tenant=st.sampled_from(TENANTS), name=st.sampled_from(NAMES))
    def rotate(self, tenant: str, name: str) -> None:
        if name in self.created[tenant]:
            self.run(self.scoped[tenant].rotate_key(name))

    @rule(
        tenant=st.sampled_from(TENANTS),
        name=st.sampled_from(NAMES),
        plaintext=st.binary(max_size=64),
        context=st.one_of(st.none(), st.binary(min_size=1, max_size=16)),
    )
    def encrypt(self, tenant: str, name: str, plaintext: bytes, context: bytes | None) -> None:
        transit = self.scoped[tenant]
        try:
            ciphertext = self.run(transit.encrypt(name, plaintext, context=context))
        except TenantVaultError:
            return  # e.g. a derived key without context: not what this test is about
        self.created[tenant].add(name)  # encrypt creates a missing key (upsert)
        self.made[tenant].append((name, ciphertext, plaintext, context))

    @rule(
        owner=st.sampled_from(TENANTS),
        index=st.integers(min_value=0),
        same_context=st.booleans(),
    )
    def foreign_decrypt(self, owner: str, index: int, same_context: bool) -> None:
        if not self.made[owner]:
            return
        name, ciphertext, _, context = self.made[owner][index % len(self.made[owner])]
        other = next(t for t in TENANTS if t != owner)
        ctx = context if same_context else None
        transit = self.scoped[other]
        try:
            self.run(transit.decrypt(name, ciphertext, context=ctx))
        except TenantVaultError as error:
            foreign = _outcome(error)
        else:
            raise AssertionError("a foreign ciphertext decrypted in another tenant")
        try:
            self.run(transit.decrypt(name, _look_alike(ciphertext), context=ctx))
        except TenantVaultError as error:
            garbage = _outcome(error)
        else:
            raise AssertionError("an all-zero ciphertext decrypted")
        assert foreign == garbage
        assert foreign[1] == 400
        event(f"foreign decrypt: {foreign[2][0][:40]}")

    @rule(actor=st.sampled_from(TENANTS), name=st.sampled_from(NAMES))
    def foreign_token(self, actor: str, name: str) -> None:
        target = next(t for t in TENANTS if t != actor)
        scoped = self.tv.with_token(self.tokens[actor])
        for operation, path, data in (
            (Operation.READ, f"transit/keys/{name}", None),
            (Operation.LIST, "transit/keys", None),
            (Operation.UPDATE, f"transit/encrypt/{name}", {"plaintext": ""}),
            (Operation.UPDATE, f"transit/decrypt/{name}", {"ciphertext": "vault:v1:AAAA"}),
        ):
            with pytest.raises(PermissionDeniedError) as denied:
                self.run(scoped.request(operation, path, data, namespace=target))
            assert denied.value.errors == ["permission denied"]

    @invariant()
    def key_lists_show_only_own_names(self) -> None:
        for tenant in TENANTS:
            listed = set(self.run(self.scoped[tenant].list_keys()))
            assert listed == self.created[tenant]
            other = next(t for t in TENANTS if t != tenant)
            for name in self.created[other] - self.created[tenant]:
                try:
                    self.run(self.scoped[tenant].read_key(name))
                except tenantvault.NotFoundError:
                    continue
                raise AssertionError("a key name of one tenant is readable in another")

    @invariant()
    def owners_still_decrypt(self) -> None:
        for tenant in TENANTS:
            for name, ciphertext, plaintext, context in self.made[tenant][-3:]:
                got = self.run(self.scoped[tenant].decrypt(name, ciphertext, context=context))
                assert got == plaintext


class TransitIsolationOnSqlite(TransitIsolation):
    url = "sqlite://{tmp}/data"


TestTransitIsolation = TransitIsolation.TestCase
TestTransitIsolation.settings = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Fewer runs on the embedded store: every key write there waits for an fsync.
TestTransitIsolationOnSqlite = TransitIsolationOnSqlite.TestCase
TestTransitIsolationOnSqlite.settings = settings(
    max_examples=8,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
