"""Each tenant's ACL policies: stored documents, the built-in `default` and `root`, and ACLs."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from tenantvault._exceptions import InvalidRequestError, NotFoundError
from tenantvault._paths import validate_name
from tenantvault._policy import ACL, Policy
from tenantvault._records import decode_record, encode_record
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend, revision_peek

__all__ = ["DEFAULT_POLICY", "PolicyStore", "TenantPolicies"]

MOUNT = "sys"

# Vault's built-in `default` policy, reduced to the endpoints tenantvault serves: a token may
# always look itself up, renew and revoke itself, and ask what it may do.
DEFAULT_POLICY = """\
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its resultant ACL from all policies
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
"""

# Vault's built-in `response-wrapping` policy, the only one a wrapping token has
# (`_wrapping`): it may unwrap (its one use) and revoke itself, nothing else. Built in and
# unchangeable in every namespace, readable but not listed, as in OpenBao, word for word
# (tenantvault serves no cubbyhole, so that rule grants nothing here).
RESPONSE_WRAPPING_POLICY = """
path "cubbyhole/response" {
    capabilities = ["create", "read"]
}

path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

path "auth/token/revoke-self" {
    capabilities = ["update"]
}
"""
_RESPONSE_WRAPPING = "response-wrapping"

_CACHE_SIZE = 4096
_ROOT = Policy.parse("root", "")
_DEFAULT = Policy.parse("default", DEFAULT_POLICY)
_WRAPPING = Policy.parse(_RESPONSE_WRAPPING, RESPONSE_WRAPPING_POLICY)


class PolicyStore:
    """Policies per tenant on a Backend, with parsed documents cached by record revision."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        # A policy whose record has not moved (the store tells without decrypting it: the
        # embedded store's exact cache, gateway mode's fresh record cache entries) is taken
        # from `_parsed` with no read: every request checks its token's policies.
        self._committed_revision = revision_peek(backend)
        self._parsed: OrderedDict[tuple[str, str, int], Policy] = OrderedDict()
        self._acls: OrderedDict[tuple[str, tuple[tuple[str, int], ...]], ACL] = OrderedDict()

    @staticmethod
    def _key(name: str) -> str:
        return f"policy/{name}"

    @staticmethod
    def check_name(name: str) -> str:
        validate_name(name, kind="policy name")
        if name != name.lower():
            # Vault lowercases policy names; we refuse instead of folding, so the name checked
            # is exactly the name stored (`ROOT` must never become `root`).
            raise InvalidRequestError("invalid policy name: use lowercase letters")
        return name

    async def write(self, tenant: str, name: str, text: str) -> None:
        self.check_name(name)
        if name == "root":
            raise InvalidRequestError("cannot update root policy")
        if name == _RESPONSE_WRAPPING:
            raise InvalidRequestError(f'cannot update "{name}" policy')
        Policy.parse(name, text)  # refuse what does not parse, before storing
        await self._backend.write(
            tenant, MOUNT, self._key(name), encode_record({"policy": text}), expected_revision=None
        )

    async def read(self, tenant: str, name: str) -> Policy | None:
        return (await self._read(tenant, name))[0]

    async def _read(self, tenant: str, name: str) -> tuple[Policy | None, int]:
        """The policy and the revision it was read at (0 for built-ins, -1 for absent)."""
        if name == "root":
            return _ROOT, 0
        if name == _RESPONSE_WRAPPING:
            return _WRAPPING, 0
        key = self._key(name)
        known = self._committed_revision(tenant, MOUNT, key)
        if known == 0:  # known to be absent: what a read would find (`default` as built in)
            return (_DEFAULT, 0) if name == "default" else (None, -1)
        if known is not None:
            parsed = self._parsed.get((tenant, name, known))
            if parsed is not None:
                return parsed, known
        record = await self._backend.read(tenant, MOUNT, key)
        if record is None:
            if name == "default":
                return _DEFAULT, 0
            return None, -1
        cache_key = (tenant, name, record.revision)
        policy = self._parsed.get(cache_key)
        if policy is None:
            policy = Policy.parse(name, decode_record(record.value)["policy"])
            self._parsed[cache_key] = policy
            if len(self._parsed) > _CACHE_SIZE:
                self._parsed.popitem(last=False)
        return policy, record.revision

    async def list(self, tenant: str) -> list[str]:
        names = set(await self._backend.list(tenant, MOUNT, "policy/"))
        names.add("default")
        if tenant == SYSTEM_TENANT:
            # Like Vault: `root` is listed only in the root namespace, though it exists in all.
            names.add("root")
        return sorted(names)

    @classmethod
    def is_valid_name(cls, name: str) -> bool:
        """Whether `name` could name a policy (`check_name` would accept it)."""
        try:
            cls.check_name(name)
        except InvalidRequestError:
            return False
        return True

    async def delete(self, tenant: str, name: str) -> None:
        self.check_name(name)
        if name in ("root", "default"):
            raise InvalidRequestError(f"cannot delete {name} policy")
        if name == _RESPONSE_WRAPPING:
            raise InvalidRequestError(f'cannot delete "{name}" policy')
        await self._backend.delete(tenant, MOUNT, self._key(name))

    async def acl(self, tenant: str, names: Iterable[str]) -> ACL:
        """The ACL of a token with `names` in `tenant`; unknown names grant nothing."""
        names = list(names)
        if "root" in names:
            return ACL((), root=True)
        policies = []
        versions = []
        for name in names:
            policy, revision = await self._read(tenant, name)
            versions.append((name, revision))
            if policy is not None:
                policies.append(policy)
        # Keyed by the revisions just read: a changed policy makes a new ACL at once, and an
        # unchanged set reuses the compiled matcher and its per-path answer cache.
        key = (tenant, tuple(versions))
        acl = self._acls.get(key)
        if acl is None:
            acl = ACL(policies)
            self._acls[key] = acl
            if len(self._acls) > _CACHE_SIZE:
                self._acls.popitem(last=False)
        return acl

    async def require(self, tenant: str, name: str) -> Policy:
        policy = await self.read(tenant, name)
        if policy is None:
            raise NotFoundError()
        return policy


class TenantPolicies:
    """One tenant's policies, as the Core hands them to a handler: bound to the call's tenant,
    with no way to name another tenant's and no ACL to evaluate."""

    __slots__ = ("_store", "_tenant")

    def __init__(self, store: PolicyStore, tenant: str) -> None:
        self._store = store
        self._tenant = tenant

    def __repr__(self) -> str:
        return f"TenantPolicies(tenant={self._tenant!r})"

    async def read(self, name: str) -> Policy | None:
        return await self._store.read(self._tenant, name)

    async def require(self, name: str) -> Policy:
        return await self._store.require(self._tenant, name)

    async def list(self) -> list[str]:
        return await self._store.list(self._tenant)

    async def write(self, name: str, text: str) -> None:
        await self._store.write(self._tenant, name, text)

    async def delete(self, name: str) -> None:
        await self._store.delete(self._tenant, name)
