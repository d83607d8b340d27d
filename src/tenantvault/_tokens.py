"""Issue, look up, renew and revoke tokens; a token is stored only as its keyed hash.

Tokens are 256 bits from the CSPRNG (`tvs.` + base64url). The store keeps
HMAC-SHA256(server key, token) and looks records up by that value, so neither the plaintext
nor a plain hash is ever stored or compared. Records live in the backend's system space:

- `token/<hash>`                 the token's record (tenant, policies, expiry, uses, parent)
- `accessor/<hmac(accessor)>`    accessor → token hash
- `children/<parent>/<child>`    the tree used to revoke a parent's children
- `incarnation/<uid>/<hash>`     every token of one tenant incarnation (its uid, never its
                                 name), to revoke them all when it is deleted; stores made
                                 before this index keep `tenant/<tenant>/<hash>`, still read
- `keys/token-hmac`              the server's HMAC key (encrypted at rest like every record)

Every failure to authenticate — missing, malformed, unknown, expired, revoked, used up,
foreign, or bound to a deleted tenant — raises the same `PermissionDeniedError`.

Every change to a stored token record is a check-and-set (`_update`), so concurrent requests
never lose a use count, a renewal or a revocation mark. A use-limited token's last use sets
`num_uses` to -1 ("revocation pending", as in Vault): no other request can use it, and the
Core revokes it once the request that took that use is done (`revoke_if_used_up`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tenantvault._cas import retry_on_conflict
from tenantvault._clock import Clock, format_time
from tenantvault._exceptions import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from tenantvault._records import decode_record, encode_record
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend

__all__ = [
    "DEFAULT_TOKEN_TTL_SECONDS",
    "Principal",
    "TenantTokens",
    "TokenRecord",
    "TokenStore",
    "refuse_restricted_parent",
]

MOUNT = "auth"
TOKEN_PREFIX = "tvs."  # noqa: S105 -- a public prefix, not a credential
DEFAULT_TOKEN_TTL_SECONDS = 768 * 3600  # Vault's default max lease TTL (32 days)
MAX_TOKEN_TTL_SECONDS = 768 * 3600
_MAX_TOKEN_LENGTH = 256
_INCARNATION = "incarnation/"
_LEGACY_TENANT = "tenant/"
_NS = 1_000_000_000
# Each lost check-and-set means another writer won, so a bounded number of retries suffices.
_CAS_ATTEMPTS = 16

TenantIdLookup = Callable[[str], Awaitable[str | None]]


@dataclass(slots=True)
class TokenRecord:
    """A token's stored state. The plaintext token is never part of it."""

    token_hash: str = field(repr=False)
    accessor: str = field(repr=False)
    tenant: str | None
    tenant_uid: str
    policies: list[str]
    meta: dict[str, str] | None
    display_name: str
    parent: str = field(repr=False)
    orphan: bool
    created_ns: int
    ttl_seconds: int
    explicit_max_ttl_seconds: int
    period_seconds: int
    expire_ns: int  # 0: never expires
    renewable: bool
    num_uses: int
    path: str = "auth/token/create"
    # Set (by check-and-set) when revocation starts: from then on the token neither
    # authenticates nor parents new tokens, while its tree is being torn down.
    revoking: bool = False
    revision: int = field(default=0, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "accessor": self.accessor,
            "tenant": self.tenant,
            "tenant_uid": self.tenant_uid,
            "policies": self.policies,
            "meta": self.meta,
            "display_name": self.display_name,
            "parent": self.parent,
            "orphan": self.orphan,
            "created": self.created_ns,
            "ttl": self.ttl_seconds,
            "explicit_max_ttl": self.explicit_max_ttl_seconds,
            "period": self.period_seconds,
            "expire": self.expire_ns,
            "renewable": self.renewable,
            "num_uses": self.num_uses,
            "path": self.path,
            "revoking": self.revoking,
        }

    @classmethod
    def from_json(cls, token_hash: str, data: Mapping[str, Any], revision: int) -> TokenRecord:
        return cls(
            token_hash=token_hash,
            accessor=data["accessor"],
            tenant=data["tenant"],
            tenant_uid=data["tenant_uid"],
            policies=list(data["policies"]),
            meta=data["meta"],
            display_name=data["display_name"],
            parent=data["parent"],
            orphan=data["orphan"],
            created_ns=data["created"],
            ttl_seconds=data["ttl"],
            explicit_max_ttl_seconds=data["explicit_max_ttl"],
            period_seconds=data["period"],
            expire_ns=data["expire"],
            renewable=data["renewable"],
            num_uses=data["num_uses"],
            path=data["path"],
            # Records stored before revocation marks existed have no such field.
            revoking=data.get("revoking", False),
            revision=revision,
        )

    @property
    def is_dying(self) -> bool:
        """Being revoked, or serving its last use: no request may start with it."""
        return self.revoking or self.num_uses < 0

    def is_expired(self, now_ns: int) -> bool:
        return bool(self.expire_ns) and self.expire_ns <= now_ns

    def is_usable(self, now_ns: int) -> bool:
        """Whether the token may still act: not expired, not being revoked, not used up."""
        return not self.is_dying and not self.is_expired(now_ns)

    def remaining_seconds(self, now_ns: int) -> int:
        if not self.expire_ns:
            return 0
        return max(0, (self.expire_ns - now_ns) // _NS)

    def describe(self, now_ns: int, *, include_id: str | None = None) -> dict[str, Any]:
        """Vault's token lookup `data`; `include_id` is the plaintext, only for lookup-self."""
        return {
            "accessor": self.accessor,
            "creation_time": self.created_ns // _NS,
            "creation_ttl": self.ttl_seconds,
            "display_name": self.display_name,
            "entity_id": "",
            "expire_time": format_time(self.expire_ns) or None,
            "explicit_max_ttl": self.explicit_max_ttl_seconds,
            "id": include_id or "",
            "issue_time": format_time(self.created_ns),
            "meta": self.meta,
            "namespace_path": f"{self.tenant}/" if self.tenant else "",
            "num_uses": self.num_uses,
            "orphan": self.orphan,
            "path": self.path,
            "period": self.period_seconds or None,
            "policies": sorted(self.policies),
            "renewable": self.renewable,
            "ttl": self.remaining_seconds(now_ns),
            "type": "service",
        }


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: a token's holder, or the in-process operator that owns the store."""

    tenant: str | None
    policies: tuple[str, ...]
    record: TokenRecord | None = field(default=None, repr=False)
    is_operator: bool = False

    @property
    def is_root(self) -> bool:
        return self.is_operator or "root" in self.policies

    @property
    def accessor(self) -> str:
        return self.record.accessor if self.record else ""

    @classmethod
    def operator(cls) -> Principal:
        return cls(tenant=None, policies=("root",), is_operator=True)


_BASE62 = string.ascii_letters + string.digits


def refuse_restricted_parent(parent: TokenRecord | None) -> None:
    """Refuse a use-limited parent, as Vault does: its children would escape the limit."""
    if parent is None:
        return
    if parent.num_uses < 0:
        # Its last use is this request: to Vault the token is already gone.
        raise InvalidRequestError("parent token lookup failed: no parent found")
    if parent.num_uses > 0:
        raise InvalidRequestError("restricted use token cannot generate child tokens")


def _mark_revoking(record: TokenRecord) -> bool:
    if record.revoking:
        return False
    record.revoking = True
    return True


def _make_orphan(record: TokenRecord) -> bool:
    # A child being revoked stays with its revoker; it must not come back as an orphan.
    if record.revoking:
        return False
    record.parent, record.orphan = "", True
    return True


def _accessor() -> str:
    """24 characters of base62 (~143 bits), like Vault's: nothing a CLI mistakes for a flag."""
    return "".join(secrets.choice(_BASE62) for _ in range(24))


class TokenStore:
    """Tokens on any Backend, in its system space."""

    def __init__(self, backend: Backend, *, clock: Clock, tenant_uid: TenantIdLookup) -> None:
        self._backend = backend
        self._clock = clock
        self._tenant_uid = tenant_uid
        self._key = b""

    async def start(self) -> None:
        """Load the server's HMAC key, creating it on first start."""
        record = await self._backend.read(SYSTEM_TENANT, MOUNT, "keys/token-hmac")
        if record is None:
            key = secrets.token_bytes(32)
            try:
                await self._backend.write(
                    SYSTEM_TENANT, MOUNT, "keys/token-hmac", key, expected_revision=0
                )
            except ConflictError:
                record = await self._backend.read(SYSTEM_TENANT, MOUNT, "keys/token-hmac")
            else:
                self._key = key
                return
        if record is None:
            raise ConflictError("token key vanished during start-up")
        self._key = record.value

    def _hash(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def bound(
        self, *, tenant: str | None, tenant_uid: str, caller: Principal | None
    ) -> TenantTokens:
        """The store as one tenant incarnation (None: the root namespace) sees it, acting for
        `caller`. The Core builds one per request; engines never get the store itself."""
        return TenantTokens(self, tenant=tenant, tenant_uid=tenant_uid, caller=caller)

    # -- authentication --------------------------------------------------------------------

    @staticmethod
    def _is_well_formed(token: str) -> bool:
        # No trimming or case folding: the token must already be exactly a token, so that one
        # token has one spelling and a mangled header never authenticates as someone.
        return (
            0 < len(token) <= _MAX_TOKEN_LENGTH
            and token.isascii()
            and token.isprintable()
            and " " not in token
        )

    async def _load(self, token_hash: str) -> TokenRecord | None:
        record = await self._backend.read(SYSTEM_TENANT, MOUNT, f"token/{token_hash}")
        if record is None:
            return None
        return TokenRecord.from_json(token_hash, decode_record(record.value), record.revision)

    async def _live(self, record: TokenRecord | None, *, dying: bool = False) -> TokenRecord | None:
        """The record if its token still counts; `dying` also admits one being revoked or on
        its last use, so that a revocation cut short (a crash, an outage) can be retried."""
        if record is None or record.is_expired(self._clock()):
            return None
        if record.is_dying and not dying:
            return None
        if record.tenant is not None:
            uid = await self._tenant_uid(record.tenant)
            # A tenant deleted and created again gets a new uid: old tokens stay dead, so that
            # whoever gets the reused name never inherits the old tenant's tokens.
            if uid is None or not hmac.compare_digest(uid, record.tenant_uid):
                return None
        return record

    async def authenticate(self, token: str | None) -> Principal:
        """The principal behind `token`, consuming one use; `PermissionDeniedError` otherwise."""
        if not token or not self._is_well_formed(token):
            raise PermissionDeniedError()
        record = await self._live(await self._load(self._hash(token)))
        if record is None:
            raise PermissionDeniedError()
        if record.num_uses > 0:
            now = self._clock()

            def use(current: TokenRecord) -> bool:
                if not current.is_usable(now):
                    raise PermissionDeniedError()
                # The last use leaves the token "revocation pending" rather than deleting it
                # here: the request still runs, and its tree is revoked once it is done.
                current.num_uses = current.num_uses - 1 if current.num_uses > 1 else -1
                return True

            # Check-and-set: of N concurrent requests exactly `num_uses` get through.
            used = await self._update(record, use)
            if used is None:
                raise PermissionDeniedError()
            record = used
        return Principal(record.tenant, tuple(record.policies), record)

    async def revoke_if_used_up(self, principal: Principal | None) -> None:
        """Revoke the token whose last use `principal` held, once its request is done."""
        record = principal.record if principal is not None else None
        if record is not None and record.num_uses < 0:
            await self.revoke(record, tree=True)

    async def _save(self, record: TokenRecord) -> None:
        record.revision = await self._backend.write(
            SYSTEM_TENANT,
            MOUNT,
            f"token/{record.token_hash}",
            encode_record(record.to_json()),
            expected_revision=record.revision,
        )

    async def _update(
        self, record: TokenRecord, change: Callable[[TokenRecord], bool]
    ) -> TokenRecord | None:
        """Check-and-set `change` onto the stored record; None once the record is gone.

        `change` edits the record it is given and returns whether to write it (it may raise to
        give up); after a conflict it runs again on a fresh read. Returns the stored record.
        """
        current: TokenRecord | None = None  # None: the first attempt uses `record` as given

        async def attempt() -> TokenRecord | None:
            nonlocal current
            if current is None:
                current = record
            else:
                fresh = await self._load(record.token_hash)
                if fresh is None:
                    return None
                current = fresh
            if not change(current):
                return current
            await self._save(current)
            return current

        return await retry_on_conflict(attempt, what="this token", attempts=_CAS_ATTEMPTS)

    # -- creation --------------------------------------------------------------------------

    async def create(
        self,
        *,
        tenant: str | None,
        tenant_uid: str,
        policies: Iterable[str],
        parent: TokenRecord | None,
        orphan: bool = False,
        ttl_seconds: int | None = None,
        explicit_max_ttl_seconds: int = 0,
        period_seconds: int = 0,
        renewable: bool = True,
        num_uses: int = 0,
        meta: dict[str, str] | None = None,
        display_name: str = "token",
        path: str = "auth/token/create",
        token: str | None = None,
    ) -> tuple[str, TokenRecord]:
        """Mint a token and store its record; returns the plaintext (shown once) and record."""
        refuse_restricted_parent(parent)
        plaintext = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
        policy_list = sorted(set(policies))
        now = self._clock()
        is_root = "root" in policy_list
        if ttl_seconds is None:
            ttl_seconds = 0 if is_root else DEFAULT_TOKEN_TTL_SECONDS
        if period_seconds:
            ttl_seconds = period_seconds
        if explicit_max_ttl_seconds and (not ttl_seconds or ttl_seconds > explicit_max_ttl_seconds):
            ttl_seconds = explicit_max_ttl_seconds
        if not is_root and (not ttl_seconds or ttl_seconds > MAX_TOKEN_TTL_SECONDS):
            ttl_seconds = MAX_TOKEN_TTL_SECONDS
        expire = now + ttl_seconds * _NS if ttl_seconds else 0
        if parent is not None and parent.expire_ns and not orphan:
            # A child never outlives its parent: the parent's expiry revokes the whole tree.
            expire = min(expire, parent.expire_ns) if expire else parent.expire_ns
            ttl_seconds = max(0, (expire - now) // _NS)
        record = TokenRecord(
            token_hash=self._hash(plaintext),
            accessor=_accessor(),
            tenant=tenant,
            tenant_uid=tenant_uid,
            policies=policy_list,
            meta=meta,
            display_name=display_name,
            parent="" if orphan or parent is None else parent.token_hash,
            orphan=orphan or parent is None,
            created_ns=now,
            ttl_seconds=ttl_seconds,
            explicit_max_ttl_seconds=explicit_max_ttl_seconds,
            period_seconds=period_seconds,
            expire_ns=expire,
            renewable=renewable and bool(expire),
            num_uses=num_uses,
            path=path,
        )
        # Indexes first, then the token itself: a crash leaves dangling index entries (ignored
        # on lookup), never a live token that its parent or tenant cannot revoke.
        index = encode_record({"token": record.token_hash})
        await self._backend.write(
            SYSTEM_TENANT,
            MOUNT,
            f"accessor/{self._hash(record.accessor)}",
            index,
            expected_revision=0,
        )
        if record.parent:
            await self._backend.write(
                SYSTEM_TENANT,
                MOUNT,
                f"children/{record.parent}/{record.token_hash}",
                index,
                expected_revision=None,
            )
        if tenant is not None:
            await self._backend.write(
                SYSTEM_TENANT,
                MOUNT,
                f"{_INCARNATION}{tenant_uid}/{record.token_hash}",
                index,
                expected_revision=None,
            )
        await self._save(record)
        if record.parent and await self._live(await self._load(record.parent)) is None:
            # The parent was revoked (or began to be) while we linked the child: see `revoke`
            # for why this re-read, after the link and the record, catches every such case.
            await self.revoke(record, tree=True)
            raise InvalidRequestError("parent token lookup failed: no parent found")
        return plaintext, record

    # -- lookup, renew, revoke -------------------------------------------------------------

    async def lookup(self, token: str, *, dying: bool = False) -> TokenRecord | None:
        if not self._is_well_formed(token):
            return None
        return await self._live(await self._load(self._hash(token)), dying=dying)

    async def lookup_accessor(self, accessor: str, *, dying: bool = False) -> TokenRecord | None:
        if not isinstance(accessor, str) or not self._is_well_formed(accessor):
            return None
        index = await self._backend.read(SYSTEM_TENANT, MOUNT, f"accessor/{self._hash(accessor)}")
        if index is None:
            return None
        record = await self._load(decode_record(index.value)["token"])
        return await self._live(record, dying=dying)

    async def renew(
        self, record: TokenRecord, increment_seconds: int | None
    ) -> tuple[TokenRecord, int]:
        """Renew as Vault does: the new TTL is the increment (or the period, or the original
        TTL) from now — shorter or longer than before — capped by explicit_max_ttl, the system
        maximum and the parent's expiry. Returns the record and the granted TTL in seconds."""
        if record.num_uses < 0:
            # Its last use is this very request; to Vault the token is already gone.
            raise InvalidRequestError("token not found")
        if not record.renewable or not record.expire_ns:
            raise InvalidRequestError("invalid lease ID: token is not renewable")
        now = self._clock()
        parent_expire_ns = 0
        if record.parent:
            parent = await self._live(await self._load(record.parent))
            if parent is not None:
                parent_expire_ns = parent.expire_ns

        def extend(current: TokenRecord) -> bool:
            if not current.is_usable(now):
                raise PermissionDeniedError()
            increment = increment_seconds or current.period_seconds or current.ttl_seconds
            expire = now + increment * _NS
            if current.explicit_max_ttl_seconds:
                expire = min(expire, current.created_ns + current.explicit_max_ttl_seconds * _NS)
            expire = min(expire, current.created_ns + MAX_TOKEN_TTL_SECONDS * _NS)
            if parent_expire_ns:
                expire = min(expire, parent_expire_ns)
            current.expire_ns = max(expire, now)
            return True

        renewed = await self._update(record, extend)
        if renewed is None:
            raise PermissionDeniedError()
        return renewed, (renewed.expire_ns - now) // _NS

    async def revoke(self, record: TokenRecord, *, tree: bool = True) -> None:
        """Revoke a token and, unless `tree` is False, all its descendants.

        No child outlives a revoked parent, although creation and revocation race on separate
        keys (the Backend has no multi-key transactions). Revocation (1) marks the parent
        `revoking` by check-and-set, then (2) lists its children. Creation (a) writes the
        child's link and record, then (b) re-reads the parent and revokes the child itself
        if the parent is no longer live. Each key is linearizable, so either (b) reads after
        (1) and sees the mark (or the parent gone), or (b) reads before (1) — and then (a),
        which precedes (b), precedes the listing (2), which finds the child. Whichever side
        comes second sees the other. Children are revoked the same way, recursively: marked
        before their own children are listed.
        """
        marked = await self._update(record, _mark_revoking)
        if marked is not None:
            record = marked
        prefix = f"children/{record.token_hash}/"
        for child_hash in await self._backend.list(SYSTEM_TENANT, MOUNT, prefix):
            child = await self._load(child_hash)
            # A stale link to a child orphaned since (revoke-orphan) revokes nothing.
            if child is not None and child.parent == record.token_hash:
                if tree:
                    await self.revoke(child, tree=True)
                else:
                    # Vault's revoke-orphan: children become orphans and keep working.
                    await self._update(child, _make_orphan)
            await self._backend.delete(SYSTEM_TENANT, MOUNT, prefix + child_hash)
        await self._backend.delete(SYSTEM_TENANT, MOUNT, f"token/{record.token_hash}")
        await self._backend.delete(SYSTEM_TENANT, MOUNT, f"accessor/{self._hash(record.accessor)}")
        if record.parent:
            await self._backend.delete(
                SYSTEM_TENANT, MOUNT, f"children/{record.parent}/{record.token_hash}"
            )
        if record.tenant is not None:
            await self._backend.delete(
                SYSTEM_TENANT, MOUNT, f"{_INCARNATION}{record.tenant_uid}/{record.token_hash}"
            )

    def _tenant_indexes(self, tenant: str, tenant_uid: str) -> tuple[str, ...]:
        # The incarnation's own index, and the name-keyed one of stores made before it (its
        # entries may belong to older incarnations: every reader checks the record's uid).
        return (f"{_INCARNATION}{tenant_uid}/", f"{_LEGACY_TENANT}{tenant}/")

    async def tenant_tokens(self, tenant: str, tenant_uid: str) -> list[TokenRecord]:
        """Every live token of this incarnation of `tenant` (for compliance reports)."""
        records = []
        for prefix in self._tenant_indexes(tenant, tenant_uid):
            for token_hash in await self._backend.list(SYSTEM_TENANT, MOUNT, prefix):
                record = await self._live(await self._load(token_hash))
                if record is not None and record.tenant_uid == tenant_uid:
                    records.append(record)
        return records

    async def revoke_tenant(self, tenant: str, tenant_uid: str) -> int:
        """Revoke every token of this incarnation of `tenant`; returns how many."""
        count = 0
        for prefix in self._tenant_indexes(tenant, tenant_uid):
            for token_hash in await self._backend.list(SYSTEM_TENANT, MOUNT, prefix):
                record = await self._load(token_hash)
                if record is not None:
                    await self.revoke(record, tree=True)
                    count += 1
                await self._backend.delete(SYSTEM_TENANT, MOUNT, prefix + token_hash)
        return count

    async def is_initialized(self) -> bool:
        """Whether this store's initial root token was ever created (never made again)."""
        return await self._backend.read(SYSTEM_TENANT, MOUNT, "initialized") is not None

    async def mark_initialized(self) -> None:
        try:
            await self._backend.write(
                SYSTEM_TENANT, MOUNT, "initialized", b"1", expected_revision=0
            )
        except ConflictError:
            raise NotFoundError("already initialized") from None


def _copy(record: TokenRecord) -> TokenRecord:
    """A detached copy: what a handler does to it never reaches the store or the Core."""
    return TokenRecord.from_json(record.token_hash, record.to_json(), record.revision)


class TenantTokens:
    """The token store bound to one tenant incarnation and one caller: a tenant's view.

    A tenant's view addresses a token only through that incarnation's own index
    (`incarnation/<uid>/<hash>`, or the name-keyed index of older stores): another tenant's
    token, or one of an earlier incarnation, is not in it, so it cannot be named at all and
    answers exactly like a token that does not exist. The root namespace's view addresses
    tokens that belong to no tenant. New tokens get the view's tenant and incarnation and the
    caller as parent; nothing a handler passes can choose either. Records handed out are
    copies, and renew/revoke resolve the token again through the view.
    """

    __slots__ = ("_caller", "_store", "_tenant", "_tenant_uid")

    def __init__(
        self,
        store: TokenStore,
        *,
        tenant: str | None,
        tenant_uid: str,
        caller: Principal | None,
    ) -> None:
        self._store = store
        self._tenant = tenant
        self._tenant_uid = tenant_uid
        self._caller = caller.record if caller is not None else None

    def __repr__(self) -> str:
        return f"TenantTokens(tenant={self._tenant!r})"

    async def _addressable(self, token_hash: str) -> bool:
        store = self._store
        if self._tenant is None:
            return True
        for key in (
            f"{_INCARNATION}{self._tenant_uid}/{token_hash}",
            f"{_LEGACY_TENANT}{self._tenant}/{token_hash}",
        ):
            if await store._backend.read(SYSTEM_TENANT, MOUNT, key) is not None:
                return True
        return False

    async def _resolve(
        self, token_hash: str, *, dying: bool, own: bool = False
    ) -> TokenRecord | None:
        store = self._store
        if own and self._caller is not None and token_hash == self._caller.token_hash:
            # The caller's own token, wherever it lives (a root-namespace token working in a
            # tenant): it authenticated this very request.
            return await store._live(await store._load(token_hash), dying=dying)
        if not await self._addressable(token_hash):
            return None
        record = await store._live(await store._load(token_hash), dying=dying)
        if record is None:
            return None
        # The index decided; this only guards against an index entry that lies (a legacy
        # name-keyed entry from an earlier incarnation, or a root-namespace view).
        if record.tenant != self._tenant or (
            self._tenant is not None and record.tenant_uid != self._tenant_uid
        ):
            return None
        return record

    async def lookup(self, token: str, *, dying: bool = False) -> TokenRecord | None:
        if not self._store._is_well_formed(token):
            return None
        record = await self._resolve(self._store._hash(token), dying=dying)
        return _copy(record) if record is not None else None

    async def lookup_accessor(self, accessor: str, *, dying: bool = False) -> TokenRecord | None:
        store = self._store
        if not isinstance(accessor, str) or not store._is_well_formed(accessor):
            return None
        index = await store._backend.read(SYSTEM_TENANT, MOUNT, f"accessor/{store._hash(accessor)}")
        if index is None:
            return None
        record = await self._resolve(decode_record(index.value)["token"], dying=dying)
        return _copy(record) if record is not None else None

    def own(self) -> TokenRecord | None:
        """The caller's own token as it authenticated (None for the in-process operator)."""
        return _copy(self._caller) if self._caller is not None else None

    async def renew(
        self, record: TokenRecord, increment_seconds: int | None
    ) -> tuple[TokenRecord, int]:
        current = await self._resolve(record.token_hash, dying=True, own=True)
        if current is None:
            raise PermissionDeniedError()
        renewed, granted = await self._store.renew(current, increment_seconds)
        return _copy(renewed), granted

    async def revoke(self, record: TokenRecord, *, tree: bool = True) -> None:
        current = await self._resolve(record.token_hash, dying=True, own=True)
        if current is not None:
            await self._store.revoke(current, tree=tree)

    async def create(
        self,
        *,
        policies: Iterable[str],
        orphan: bool,
        ttl_seconds: int | None,
        explicit_max_ttl_seconds: int,
        period_seconds: int,
        renewable: bool,
        num_uses: int,
        meta: dict[str, str] | None,
        display_name: str,
        path: str,
    ) -> tuple[str, TokenRecord]:
        """Mint a token in this view's tenant incarnation, a child of the caller unless
        `orphan` (or the caller is the operator, who has no token)."""
        plaintext, record = await self._store.create(
            tenant=self._tenant,
            tenant_uid=self._tenant_uid,
            policies=policies,
            parent=self._caller,
            orphan=orphan or self._caller is None,
            ttl_seconds=ttl_seconds,
            explicit_max_ttl_seconds=explicit_max_ttl_seconds,
            period_seconds=period_seconds,
            renewable=renewable,
            num_uses=num_uses,
            meta=meta,
            display_name=display_name,
            path=path,
        )
        return plaintext, _copy(record)
