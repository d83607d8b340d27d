"""Issue, look up, renew and revoke tokens; a token is stored only as its keyed hash.

Tokens are 256 bits from the CSPRNG (`tvs.` + base64url). The store keeps
HMAC-SHA256(server key, token) and looks records up by that value, so neither the plaintext
nor a plain hash is ever stored or compared.

Storage is partitioned by tenant, as Vault's is by namespace. A tenant's token names its
tenant incarnation the way Vault's namespaced tokens name their namespace
(`hvs.<random>.<namespace id>`): `tvs.<random>.<uid>`, its accessor `<random>.<uid>`, where
`uid` is the incarnation id (opaque: it reveals no tenant name). Its records live in that
tenant's own backend space, under storage mount `auth`:

- `token/<hash>`                 the token's record (tenant, policies, expiry, uses, parent);
                                 listing `token/` lists the tenant's tokens
- `accessor/<hmac(accessor)>`    accessor → token hash
- `children/<parent>/<child>`    the tree used to revoke a parent's children, kept in the
                                 parent's space; `<child>` is the child's hash, followed by
                                 `.<uid>` when the child lives in a tenant's space
- `issuer/<mount uuid>/<hash>`   the tokens one auth mount issued (revoked when it is disabled)

`auth` can never be a mount's storage: mounts store under `mount/<uuid>` (and the fixed
`secret` and `transit` of stores older than mount tables), and `auth/` is a protected prefix
that no mount takes. Deleting a tenant (`Backend.delete_tenant`) destroys its tokens with
its data, and a tenant created again under the same id starts with none.

Root-namespace tokens have no suffix (like Vault's) and live in `SYSTEM_TENANT`, which also
holds `keys/token-hmac` (the server's HMAC key), `initialized`, and `space/<uid>` → tenant id,
the one lookup that takes a token's suffix to its tenant's space. Authenticating reads that
(once per process: an incarnation id never changes tenant) and then the token's record, and
the record must belong to that incarnation, which must be the tenant's current one: a stale
incarnation is refused by construction. A root token may parent a tenant's token (root
acting in a namespace): the child lives in the tenant's space, its link in the root's.

Tokens minted before this layout have no suffix and live in `SYSTEM_TENANT` with their
indexes (`incarnation/<uid>/<hash>`, or `tenant/<name>/<hash>` in older stores): they are
read, renewed and revoked where they are (see "the layout before tenant spaces" below).
They cannot be moved, since their holders' strings carry no suffix to find a new place by.

Every request reads its token's record again (a revocation, a use or a renewal by any
instance counts on the next request); a record read at the revision it was decoded at is
not decoded again (`TokenStore._decoded`). On the embedded store, the sole writer of its
files, "read again" is its exact record cache's revision of the key (`RevisionPeek`); in
gateway mode, the revision of a fresh entry of its record cache (the same 1 s bound as a
read): an unchanged record is neither fetched nor decrypted.

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
import re
import secrets
import string
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tenantvault._cas import retry_on_conflict
from tenantvault._clock import Clock, format_time
from tenantvault._exceptions import (
    ConflictError,
    IntegrityError,
    InternalError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from tenantvault._random_text import random_text
from tenantvault._records import decode_record, encode_record
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend, Record, revision_peek
from tenantvault.engines.auth._cidr import address_allowed

if TYPE_CHECKING:
    from tenantvault.engines.auth._renew import RenewGrant

__all__ = [
    "DEFAULT_TOKEN_TTL_SECONDS",
    "Principal",
    "TenantTokens",
    "TokenRecord",
    "TokenStore",
    "named_space",
    "refuse_restricted_parent",
]

MOUNT = "auth"
TOKEN_PREFIX = "tvs."  # noqa: S105 -- a public prefix, not a credential
DEFAULT_TOKEN_TTL_SECONDS = 768 * 3600  # Vault's default max lease TTL (32 days)
MAX_TOKEN_TTL_SECONDS = 768 * 3600
_MAX_TOKEN_LENGTH = 256
_SPACES = "space/"
_INCARNATION = "incarnation/"
_ISSUER = "issuer/"  # issuer/<auth mount uuid>/<hash>: the tokens one auth mount issued
_LEGACY_TENANT = "tenant/"
_NS = 1_000_000_000
# Each lost check-and-set means another writer won, so a bounded number of retries suffices.
_CAS_ATTEMPTS = 16
# How many decoded token records `TokenStore` keeps (a few hundred bytes each).
_DECODED_SIZE = 4096
# What a token's or accessor's suffix may be: an incarnation id (uuid4 hex today). Anything
# else is refused before any read, and never becomes part of a storage key.
_SPACE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")

TenantIdLookup = Callable[[str], Awaitable[str | None]]


@dataclass(slots=True)
class TokenRecord:
    """A token's stored state. The plaintext token is never part of it.

    A record the store hands out may be shared with other requests (decoded once per
    revision): read it, never change it in place; changes go through `TokenStore._update`.
    """

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
    # The space the parent is stored in: its incarnation id, '' for the root namespace's.
    parent_space: str = field(default="", repr=False)
    revision: int = field(default=0, repr=False)
    # Where this record was read from (not stored): the incarnation id of its tenant's space,
    # or '' for the root namespace's space (root tokens, and tenants' tokens of old stores).
    space: str = field(default="", repr=False)
    # Set by auth-method logins (`engines/auth`): the CIDR blocks the token may be used from,
    # and the uuid of the auth mount that issued it (disabling that mount revokes it).
    bound_cidrs: list[str] = field(default_factory=list)
    issuer: str = field(default="", repr=False)

    def to_json(self) -> dict[str, Any]:
        """The stored form (without the hash it is filed under, or where it is stored)."""
        return {
            "accessor": self.accessor,
            "tenant": self.tenant,
            "tenant_uid": self.tenant_uid,
            "policies": self.policies,
            "meta": self.meta,
            "display_name": self.display_name,
            "parent": self.parent,
            "parent_space": self.parent_space,
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
            "bound_cidrs": self.bound_cidrs,
            "issuer": self.issuer,
        }

    @classmethod
    def from_json(
        cls, token_hash: str, data: Mapping[str, Any], revision: int, *, space: str = ""
    ) -> TokenRecord:
        """The record `to_json` stored at `token_hash`, read from `space` at `revision`."""
        return cls(
            token_hash=token_hash,
            accessor=data["accessor"],
            tenant=data["tenant"],
            tenant_uid=data["tenant_uid"],
            policies=list(data["policies"]),
            meta=data["meta"],
            display_name=data["display_name"],
            parent=data["parent"],
            # Records stored before tenant spaces have no such field: their parents are
            # all in the root namespace's space.
            parent_space=data.get("parent_space", ""),
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
            space=space,
            # Records stored before auth-method logins have neither field.
            bound_cidrs=list(data.get("bound_cidrs") or []),
            issuer=data.get("issuer", ""),
        )

    @property
    def is_dying(self) -> bool:
        """Being revoked, or serving its last use: no request may start with it."""
        return self.revoking or self.num_uses < 0

    def is_expired(self, now_ns: int) -> bool:
        """Whether its TTL ran out by `now_ns` (a token without expiry never does)."""
        return bool(self.expire_ns) and self.expire_ns <= now_ns

    def is_usable(self, now_ns: int) -> bool:
        """Whether the token may still act: not expired, not being revoked, not used up."""
        return not self.is_dying and not self.is_expired(now_ns)

    def remaining_seconds(self, now_ns: int) -> int:
        """Seconds of TTL left at `now_ns` (0 for a token without expiry, as Vault shows)."""
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
        """Whether it holds root: the operator, or a token with the root policy."""
        return self.is_operator or "root" in self.policies

    @property
    def accessor(self) -> str:
        """Its token's accessor ('' for the operator, who has no token)."""
        return self.record.accessor if self.record else ""

    @classmethod
    def operator(cls) -> Principal:
        """The in-process operator: the program that opened the store."""
        return cls(tenant=None, policies=("root",), is_operator=True)


@dataclass(frozen=True, slots=True)
class _Space:
    """Where a token's records are: the backend tenant, and the incarnation id it belongs to
    ('' for the root namespace's space, `SYSTEM_TENANT`)."""

    tenant: str
    uid: str


_ROOT_SPACE = _Space(SYSTEM_TENANT, "")

_BASE62 = string.ascii_letters + string.digits


def named_space(value: str, *, prefix: str = "") -> str | None:
    """The incarnation id a token (`prefix` 'tvs.') or accessor names by its suffix: '' for
    none (the root namespace's space), None if the suffix is malformed."""
    if not value.startswith(prefix):
        return ""  # a custom id (dev mode's root token): the root namespace's
    _, dot, uid = value.removeprefix(prefix).partition(".")
    if not dot:
        return ""
    return uid if _SPACE_ID.fullmatch(uid) else None


def _locator(record: TokenRecord) -> str:
    """How a parent's `children/` index names this child: its hash, and its space if any."""
    return f"{record.token_hash}.{record.space}" if record.space else record.token_hash


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
    record.parent, record.parent_space, record.orphan = "", "", True
    return True


def _accessor() -> str:
    """24 characters of base62 (~143 bits), like Vault's: nothing a CLI mistakes for a flag."""
    return random_text(_BASE62, 24)


class TokenStore:
    """Tokens on any Backend: each tenant's in its own space, the root namespace's in the
    system space."""

    def __init__(self, backend: Backend, *, clock: Clock, tenant_uid: TenantIdLookup) -> None:
        self._backend = backend
        # The store tells a cached record's revision without decrypting it (`RevisionPeek`):
        # a token whose record has not moved is then neither read nor decoded again (`_load`).
        self._committed_revision = revision_peek(backend)
        self._clock = clock
        self._tenant_uid = tenant_uid
        # The server's HMAC key (`start`), keyed once: each token's HMAC starts from a copy
        # of this state rather than keying anew (0.7 µs of the 2.2 µs a hash took, measured).
        self._keyed = hmac.new(b"", digestmod=hashlib.sha256).copy
        # Decoded token records by (space tenant, incarnation, hash), each valid at the
        # revision it carries: `_load` re-reads the record and decodes it again only when its
        # revision moved (revisions are never reused, the Backend contract). The records are
        # shared with their readers, so nothing changes them in place but `_update`, which
        # works on a copy. Bounded (`_DECODED_SIZE`, oldest first out); hashes only, no token.
        self._decoded: dict[tuple[str, str, str], TokenRecord] = {}
        # Incarnation id → tenant id, as registered under `space/`: an id never changes tenant,
        # so a known one needs no read again (until its tenant is deleted here).
        self._spaces: dict[str, str] = {}
        # Called with each revoked token's record once its children are revoked and before
        # its own record goes (the lease manager revokes the leases it created). A hook
        # must not raise: it is told, it cannot veto the revocation.
        self.on_revoke: list[Callable[[TokenRecord], Awaitable[None]]] = []
        # Called with each new token's record once it is stored (the metrics counters).
        self.on_create: list[Callable[[TokenRecord], None]] = []
        # Set by the Core (`engines/auth/_renew`): asked before renewing a token an auth mount
        # issued; it refuses (raises) or says how far the issuing role lets it renew now.
        self.renewal: Callable[[TokenRecord], Awaitable[RenewGrant]] | None = None

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
                self._use_key(key)
                return
        if record is None:
            raise ConflictError("token key vanished during start-up")
        self._use_key(record.value)

    def _use_key(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256).copy

    def _hash(self, value: str) -> str:
        mac = self._keyed()
        mac.update(value.encode())
        return mac.hexdigest()

    def bound(
        self, *, tenant: str | None, tenant_uid: str, caller: Principal | None
    ) -> TenantTokens:
        """The store as one tenant incarnation (None: the root namespace) sees it, acting for
        `caller`. The Core builds one per request; engines never get the store itself."""
        return TenantTokens(self, tenant=tenant, tenant_uid=tenant_uid, caller=caller)

    # -- spaces ----------------------------------------------------------------------------

    async def _space(self, uid: str) -> _Space | None:
        """The space of incarnation `uid` ('' the root namespace's); None if none is known."""
        if not uid:
            return _ROOT_SPACE
        tenant = self._spaces.get(uid)
        if tenant is None:
            stored = await self._backend.read(SYSTEM_TENANT, MOUNT, f"{_SPACES}{uid}")
            if stored is None:
                return None
            tenant = str(decode_record(stored.value)["tenant"])
            self._spaces[uid] = tenant
        return _Space(tenant, uid)

    async def _open_space(self, tenant: str, uid: str) -> _Space:
        """The space of `tenant`'s incarnation `uid`, registered before its first token is
        written, so that every token stored there can be resolved (and revoked) by suffix."""
        if not _SPACE_ID.fullmatch(uid):
            # Its tokens could never be resolved: a change of the registry's ids, not a request.
            raise InternalError()
        if self._spaces.get(uid) == tenant:
            return _Space(tenant, uid)
        key = f"{_SPACES}{uid}"
        try:
            await self._backend.write(
                SYSTEM_TENANT, MOUNT, key, encode_record({"tenant": tenant}), expected_revision=0
            )
        except ConflictError:
            # Registered already (by any instance): it must name the same tenant.
            found = await self._space(uid)
            if found is None or found.tenant != tenant:
                raise IntegrityError("stored token space is not valid") from None
        self._spaces[uid] = tenant
        return _Space(tenant, uid)

    @staticmethod
    def _space_of(record: TokenRecord) -> _Space:
        # `_load` checked that a record read from a tenant's space names that tenant.
        if not record.space or record.tenant is None:
            return _ROOT_SPACE
        return _Space(record.tenant, record.space)

    @staticmethod
    def _parent_space_of(record: TokenRecord) -> _Space | None:
        # A parent is in the root namespace's space or in its child's own: nothing else is
        # ever written, so anything else names no parent.
        if not record.parent_space:
            return _ROOT_SPACE
        if record.parent_space == record.space and record.tenant is not None:
            return _Space(record.tenant, record.space)
        return None

    # Reads and deletes in a space whose tenant is gone find nothing: the tenant's deletion
    # destroyed its tokens with it.

    async def _read(self, space: _Space, key: str) -> Record | None:
        try:
            return await self._backend.read(space.tenant, MOUNT, key)
        except NotFoundError:
            return None

    async def _list(self, space: _Space, prefix: str) -> list[str]:
        try:
            return await self._backend.list(space.tenant, MOUNT, prefix)
        except NotFoundError:
            return []

    async def _delete(self, space: _Space, key: str) -> None:
        try:
            await self._backend.delete(space.tenant, MOUNT, key)
        except NotFoundError:
            pass

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

    async def _load(self, space: _Space, token_hash: str) -> TokenRecord | None:
        # The record is read on every call (a revocation or a use by any instance counts at
        # once); only its decoding is reused while the revision it was read at is unchanged.
        key = (space.tenant, space.uid, token_hash)
        storage_key = f"token/{token_hash}"
        record = self._decoded.get(key)
        if record is not None and (
            self._committed_revision(space.tenant, MOUNT, storage_key) == record.revision
        ):
            return self._of_space(record, space)
        stored = await self._read(space, storage_key)
        if stored is None:
            self._decoded.pop(key, None)
            return None
        if record is None or record.revision != stored.revision:
            record = TokenRecord.from_json(
                token_hash, decode_record(stored.value), stored.revision, space=space.uid
            )
            if len(self._decoded) >= _DECODED_SIZE:
                del self._decoded[next(iter(self._decoded))]  # the oldest decoded
            self._decoded[key] = record
        return self._of_space(record, space)

    @staticmethod
    def _of_space(record: TokenRecord, space: _Space) -> TokenRecord | None:
        if space.uid and (record.tenant != space.tenant or record.tenant_uid != space.uid):
            # Another incarnation's record (written into the space of the tenant that took
            # its id while it was being deleted): it belongs to no one here.
            return None
        return record

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

    async def _find(self, token: str) -> TokenRecord | None:
        """The record of `token` in the space its suffix names (no live check)."""
        if not self._is_well_formed(token):
            return None
        uid = named_space(token, prefix=TOKEN_PREFIX)
        space = await self._space(uid) if uid is not None else None
        if space is None:
            return None
        return await self._load(space, self._hash(token))

    async def authenticate(
        self, token: str | None, *, client_address: str | None = None
    ) -> Principal:
        """The principal behind `token`, consuming one use; `PermissionDeniedError` otherwise.

        A token bound to CIDR blocks (an auth method's `token_bound_cidrs`) authenticates only
        from inside them, checked before a use is taken, so strangers cannot burn its uses.
        """
        if not token:
            raise PermissionDeniedError()
        record = await self._live(await self._find(token))
        if record is None:
            raise PermissionDeniedError()
        if record.bound_cidrs and not address_allowed(client_address, record.bound_cidrs):
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
            self._space_of(record).tenant,
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
        current: TokenRecord | None = None  # None: the first attempt starts from `record`

        async def attempt() -> TokenRecord | None:
            nonlocal current
            source = record
            if current is not None:
                fresh = await self._load(self._space_of(record), record.token_hash)
                if fresh is None:
                    return None
                source = fresh
            # Always a private copy: records read from the store are shared with concurrent
            # requests (see `_decoded`), so no attempt may change one of them in place.
            current = _copy(source)
            if not change(current):
                return current
            try:
                await self._save(current)
            except NotFoundError:
                return None  # its tenant was deleted: the record went with it
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
        bound_cidrs: Iterable[str] = (),
        issuer: str = "",
    ) -> tuple[str, TokenRecord]:
        """Mint a token and store its record in its tenant's space (the root namespace's for
        `tenant` None); returns the plaintext (shown once) and the record."""
        refuse_restricted_parent(parent)
        if token is not None and (
            tenant is not None or named_space(token, prefix=TOKEN_PREFIX) != ""
        ):
            # A custom id (dev mode's root token) has no suffix, so it must not read as one.
            raise InvalidRequestError("a custom token id must not name a namespace")
        space = _ROOT_SPACE if tenant is None else await self._open_space(tenant, tenant_uid)
        suffix = f".{space.uid}" if space.uid else ""
        plaintext = token or TOKEN_PREFIX + secrets.token_urlsafe(32) + suffix
        # The parent a child is linked to (none for an orphan), and the space of its link.
        linked = parent if parent is not None and not orphan else None
        link_space = self._space_of(linked) if linked is not None else None
        if link_space is not None and link_space.uid not in ("", space.uid):
            # Only the root namespace's tokens act in another space than their own.
            raise PermissionDeniedError()
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
            accessor=_accessor() + suffix,
            tenant=tenant,
            tenant_uid=tenant_uid,
            policies=policy_list,
            meta=meta,
            display_name=display_name,
            parent=linked.token_hash if linked is not None else "",
            parent_space=linked.space if linked is not None else "",
            orphan=linked is None,
            created_ns=now,
            ttl_seconds=ttl_seconds,
            explicit_max_ttl_seconds=explicit_max_ttl_seconds,
            period_seconds=period_seconds,
            expire_ns=expire,
            renewable=renewable and bool(expire),
            num_uses=num_uses,
            path=path,
            space=space.uid,
            bound_cidrs=list(bound_cidrs),
            issuer=issuer,
        )
        # Indexes first, then the token itself: a crash leaves dangling index entries (ignored
        # on lookup), never a live token that its parent cannot revoke. The child's link is
        # in the parent's space, which revoking the parent lists.
        index = encode_record({"token": record.token_hash})
        await self._backend.write(
            space.tenant,
            MOUNT,
            f"accessor/{self._hash(record.accessor)}",
            index,
            expected_revision=0,
        )
        if issuer:
            await self._backend.write(
                space.tenant,
                MOUNT,
                f"{_ISSUER}{issuer}/{record.token_hash}",
                index,
                expected_revision=None,
            )
        if linked is not None and link_space is not None:
            await self._backend.write(
                link_space.tenant,
                MOUNT,
                f"children/{linked.token_hash}/{_locator(record)}",
                index,
                expected_revision=None,
            )
        await self._save(record)
        if linked is not None and link_space is not None:
            current_parent = await self._load(link_space, linked.token_hash)
            if await self._live(current_parent) is None:
                # The parent was revoked (or began to be) while we linked the child: see
                # `revoke` for why this re-read, after the link and the record, catches every
                # such case.
                await self.revoke(record, tree=True)
                raise InvalidRequestError("parent token lookup failed: no parent found")
        for hook in self.on_create:
            hook(record)
        return plaintext, record

    # -- lookup, renew, revoke -------------------------------------------------------------

    async def lookup(self, token: str, *, dying: bool = False) -> TokenRecord | None:
        """The live record of `token`, wherever it lives (operator tooling and tests)."""
        return await self._live(await self._find(token), dying=dying)

    async def expiry(self, space_tenant: str, token_hash: str) -> int | None:
        """When the token filed under `token_hash` in the space of backend tenant
        `space_tenant` expires now (0: never); None when it is gone (the lease manager's
        check before revoking a lease at its token's expiry as first seen)."""
        stored = await self._read(_Space(space_tenant, ""), f"token/{token_hash}")
        return int(decode_record(stored.value)["expire"]) if stored is not None else None

    async def _find_accessor(self, accessor: str) -> TokenRecord | None:
        """The record `accessor` names, in the space its suffix names (no live check)."""
        if not isinstance(accessor, str) or not self._is_well_formed(accessor):
            return None
        uid = named_space(accessor)
        space = await self._space(uid) if uid is not None else None
        if space is None:
            return None
        token_hash = await self._accessor_target(space, accessor)
        record = await self._load(space, token_hash) if token_hash is not None else None
        return record if record is not None and _has_accessor(record, accessor) else None

    async def _accessor_target(self, space: _Space, accessor: str) -> str | None:
        """The hash of the token that `accessor` names in `space`'s accessor index."""
        index = await self._read(space, f"accessor/{self._hash(accessor)}")
        return str(decode_record(index.value)["token"]) if index is not None else None

    async def lookup_accessor(self, accessor: str, *, dying: bool = False) -> TokenRecord | None:
        """The live record behind `accessor`, wherever it lives (operator tooling and tests)."""
        return await self._live(await self._find_accessor(accessor), dying=dying)

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
            raise InvalidRequestError("lease is not renewable")  # OpenBao 2.7.2's text
        now = self._clock()
        parent_expire_ns = 0
        parent_space = self._parent_space_of(record)
        if record.parent and parent_space is not None:
            parent = await self._live(await self._load(parent_space, record.parent))
            if parent is not None:
                parent_expire_ns = parent.expire_ns
        grant = None
        if record.issuer:
            # A login's token: its auth method decides again (Vault's renew of the auth path).
            if self.renewal is None:
                raise InternalError()
            grant = await self.renewal(record)

        def extend(current: TokenRecord) -> bool:
            if not current.is_usable(now):
                raise PermissionDeniedError()
            increment = increment_seconds or current.period_seconds or current.ttl_seconds
            if grant is not None:
                increment = grant.increment(increment_seconds)
            expire = now + increment * _NS
            if grant is not None and grant.ceiling_seconds:
                expire = min(expire, current.created_ns + grant.ceiling_seconds * _NS)
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

    async def _child(self, parent: _Space, locator: str) -> TokenRecord | None:
        """The child a `children/` entry in `parent`'s space names, wherever it lives."""
        child_hash, _, uid = locator.partition(".")
        if uid == parent.uid:
            space: _Space | None = parent
        elif parent.uid or not _SPACE_ID.fullmatch(uid):
            # Only the root namespace's tokens have children in another space.
            space = None
        else:
            space = await self._space(uid)
        return await self._load(space, child_hash) if space is not None else None

    async def revoke(self, record: TokenRecord, *, tree: bool = True) -> None:
        """Revoke a token and, unless `tree` is False, all its descendants.

        No child outlives a revoked parent, although creation and revocation race on separate
        keys (the Backend has no multi-key transactions, and a root token's child in a tenant
        lives in another space than its parent). Revocation (1) marks the parent `revoking`
        by check-and-set, then (2) lists its children. Creation (a) writes the child's link
        (in the parent's space) and record, then (b) re-reads the parent and revokes the child
        itself if the parent is no longer live. Each key is linearizable, so either (b) reads
        after (1) and sees the mark (or the parent gone), or (b) reads before (1) — and then
        (a), which precedes (b), precedes the listing (2), which finds the child. Whichever
        side comes second sees the other. Children are revoked the same way, recursively:
        marked before their own children are listed.
        """
        marked = await self._update(record, _mark_revoking)
        if marked is not None:
            record = marked
        space = self._space_of(record)
        prefix = f"children/{record.token_hash}/"
        for locator in await self._list(space, prefix):
            child = await self._child(space, locator)
            # A stale link to a child orphaned since (revoke-orphan) revokes nothing.
            if (
                child is not None
                and child.parent == record.token_hash
                and child.parent_space == record.space
            ):
                if tree:
                    await self.revoke(child, tree=True)
                else:
                    # Vault's revoke-orphan: children become orphans and keep working.
                    await self._update(child, _make_orphan)
            await self._delete(space, prefix + locator)
        for hook in self.on_revoke:
            await hook(record)
        await self._delete(space, f"token/{record.token_hash}")
        await self._delete(space, f"accessor/{self._hash(record.accessor)}")
        if record.issuer:
            await self._delete(space, f"{_ISSUER}{record.issuer}/{record.token_hash}")
        parent_space = self._parent_space_of(record)
        if record.parent and parent_space is not None:
            await self._delete(parent_space, f"children/{record.parent}/{_locator(record)}")
        if record.tenant is not None and not record.space:
            await self._forget_legacy(record)

    async def tenant_tokens(self, tenant: str, tenant_uid: str) -> list[TokenRecord]:
        """Every live token of this incarnation of `tenant` (for compliance reports)."""
        space = _Space(tenant, tenant_uid)
        records = []
        for token_hash in await self._list(space, "token/"):
            record = await self._live(await self._load(space, token_hash))
            if record is not None:
                records.append(record)
        return records + await self._legacy_tenant_tokens(tenant, tenant_uid)

    async def root_tokens(self) -> list[TokenRecord]:
        """Every live token of the root namespace (LIST auth/token/accessors there)."""
        records = []
        for token_hash in await self._list(_ROOT_SPACE, "token/"):
            record = await self._live(await self._load(_ROOT_SPACE, token_hash))
            if record is not None and record.tenant is None:
                records.append(record)
        return records

    async def revoke_issued(self, tenant: str | None, tenant_uid: str, issuer: str) -> int:
        """Revoke every token the auth mount with uuid `issuer` issued in `tenant` (None: the
        root namespace): disabling the mount. Returns how many."""
        space = _ROOT_SPACE if tenant is None else _Space(tenant, tenant_uid)
        prefix = f"{_ISSUER}{issuer}/"
        count = 0
        for token_hash in await self._list(space, prefix):
            record = await self._load(space, token_hash)
            if record is not None and record.issuer == issuer:
                await self.revoke(record, tree=True)
                count += 1
            await self._delete(space, prefix + token_hash)
        return count

    async def revoke_tenant(self, tenant: str, tenant_uid: str) -> int:
        """Revoke every token of this incarnation of `tenant`, as part of deleting it (before
        and after `delete_tenant`); returns how many.

        The tenant's space goes with the tenant, but revoking its tokens first stops them at
        once (even if the deletion is cut short) and removes their links from root tokens.
        Once the incarnation is no longer the tenant's current one, its space is unregistered.
        """
        space = _Space(tenant, tenant_uid)
        count = 0
        for token_hash in await self._list(space, "token/"):
            record = await self._load(space, token_hash)
            if record is not None:
                await self.revoke(record, tree=True)
                count += 1
        count += await self._revoke_legacy_tenant(tenant, tenant_uid)
        if await self._tenant_uid(tenant) != tenant_uid:
            # Its space is gone (or belongs to a newer incarnation): nothing may resolve to it.
            await self._backend.delete(SYSTEM_TENANT, MOUNT, f"{_SPACES}{tenant_uid}")
            self._spaces.pop(tenant_uid, None)
        return count

    async def is_initialized(self) -> bool:
        """Whether this store's initial root token was ever created (never made again)."""
        return await self._backend.read(SYSTEM_TENANT, MOUNT, "initialized") is not None

    async def mark_initialized(self) -> None:
        """Record that the initial root token exists; `NotFoundError` if it already did."""
        try:
            await self._backend.write(
                SYSTEM_TENANT, MOUNT, "initialized", b"1", expected_revision=0
            )
        except ConflictError:
            raise NotFoundError("already initialized") from None

    # -- the layout before tenant spaces (read and clean up only) ---------------------------
    # Stores written before tenant spaces hold tenants' tokens in the system space, without a
    # suffix, listed per incarnation under `incarnation/<uid>/<hash>` (or per name under
    # `tenant/<name>/<hash>`, whose entries may belong to older incarnations: every reader
    # checks the record's uid). Nothing writes there any more; these tokens are looked up,
    # renewed and revoked in place until they expire or are revoked.

    @staticmethod
    def _legacy_indexes(tenant: str, tenant_uid: str) -> tuple[str, ...]:
        return (f"{_INCARNATION}{tenant_uid}/", f"{_LEGACY_TENANT}{tenant}/")

    async def _is_legacy_token_of(self, tenant: str, tenant_uid: str, token_hash: str) -> bool:
        """Whether the old layout's indexes list `token_hash` among `tenant`'s tokens."""
        for prefix in self._legacy_indexes(tenant, tenant_uid):
            if await self._backend.read(SYSTEM_TENANT, MOUNT, prefix + token_hash) is not None:
                return True
        return False

    async def _legacy_tenant_tokens(self, tenant: str, tenant_uid: str) -> list[TokenRecord]:
        records = []
        for prefix in self._legacy_indexes(tenant, tenant_uid):
            for token_hash in await self._backend.list(SYSTEM_TENANT, MOUNT, prefix):
                record = await self._live(await self._load(_ROOT_SPACE, token_hash))
                if record is not None and record.tenant_uid == tenant_uid:
                    records.append(record)
        return records

    async def _revoke_legacy_tenant(self, tenant: str, tenant_uid: str) -> int:
        count = 0
        for prefix in self._legacy_indexes(tenant, tenant_uid):
            for token_hash in await self._backend.list(SYSTEM_TENANT, MOUNT, prefix):
                record = await self._load(_ROOT_SPACE, token_hash)
                if record is not None:
                    await self.revoke(record, tree=True)
                    count += 1
                await self._backend.delete(SYSTEM_TENANT, MOUNT, prefix + token_hash)
        return count

    async def _forget_legacy(self, record: TokenRecord) -> None:
        if record.tenant is None:
            return
        for prefix in self._legacy_indexes(record.tenant, record.tenant_uid):
            await self._backend.delete(SYSTEM_TENANT, MOUNT, prefix + record.token_hash)


def _has_accessor(record: TokenRecord, accessor: str) -> bool:
    # An index entry must name a record with that very accessor, so that an entry altered
    # behind our back cannot redirect an accessor to another token of the same space.
    return hmac.compare_digest(record.accessor.encode(), accessor.encode())


def _copy(record: TokenRecord) -> TokenRecord:
    """A detached copy: what a handler does to it never reaches the store or the Core."""
    return TokenRecord.from_json(
        record.token_hash, record.to_json(), record.revision, space=record.space
    )


class TenantTokens:
    """The token store bound to one tenant incarnation and one caller: a tenant's view.

    A tenant's view reads and writes only its incarnation's own space: a token or accessor
    whose suffix names another space is refused before anything is read, so another tenant's
    token cannot be named at all and answers exactly like a token that does not exist. The
    one exception is the old layout's unsuffixed tokens in the system space, which the view
    addresses only through its incarnation's entries in the old indexes. The root
    namespace's view addresses the system space's tokens that belong to no tenant. New tokens
    get the view's tenant and incarnation and the caller as parent; nothing a handler passes
    can choose either. Records handed out are copies, and renew/revoke resolve the token
    again through the view.
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

    def _own_space(self, uid: str | None) -> _Space | None:
        """The space a suffix names if this view may read it: its own, or the system space."""
        if uid is None:
            return None
        if not uid:
            return _ROOT_SPACE
        if self._tenant is None or uid != self._tenant_uid:
            return None
        return _Space(self._tenant, uid)

    async def _resolve(
        self, uid: str, token_hash: str, *, dying: bool, own: bool = False
    ) -> TokenRecord | None:
        store = self._store
        caller = self._caller
        if own and caller is not None and (caller.space, caller.token_hash) == (uid, token_hash):
            # The caller's own token, wherever it lives (a root-namespace token working in a
            # tenant): it authenticated this very request.
            return await store._live(
                await store._load(store._space_of(caller), token_hash), dying=dying
            )
        space = self._own_space(uid)
        if space is None:
            return None
        if (
            not space.uid
            and self._tenant is not None
            and not await store._is_legacy_token_of(self._tenant, self._tenant_uid, token_hash)
        ):
            return None
        record = await store._live(await store._load(space, token_hash), dying=dying)
        if record is None:
            return None
        # The space (and for old tokens the index) decided; this guards against a record that
        # lies: a root-namespace view reading a tenant's old token, or an index entry left by
        # an earlier incarnation.
        if record.tenant != self._tenant or (
            self._tenant is not None and record.tenant_uid != self._tenant_uid
        ):
            return None
        return record

    async def lookup(self, token: str, *, dying: bool = False) -> TokenRecord | None:
        """A copy of `token`'s live record if this view may address it; None otherwise."""
        store = self._store
        if not store._is_well_formed(token):
            return None
        uid = named_space(token, prefix=TOKEN_PREFIX)
        if uid is None:
            return None
        record = await self._resolve(uid, store._hash(token), dying=dying)
        return _copy(record) if record is not None else None

    async def lookup_accessor(self, accessor: str, *, dying: bool = False) -> TokenRecord | None:
        """A copy of the live record behind `accessor` if this view may address it."""
        store = self._store
        if not isinstance(accessor, str) or not store._is_well_formed(accessor):
            return None
        uid = named_space(accessor)
        space = self._own_space(uid)
        if uid is None or space is None:
            return None
        # In a tenant's view, an unsuffixed accessor is one of the old layout's: its entry in
        # the system space's accessor index names the token, which `_resolve` then admits
        # only through the incarnation's old index.
        token_hash = await store._accessor_target(space, accessor)
        if token_hash is None:
            return None
        record = await self._resolve(uid, token_hash, dying=dying)
        if record is None or not _has_accessor(record, accessor):
            return None
        return _copy(record)

    def own(self) -> TokenRecord | None:
        """The caller's own token as it authenticated (None for the in-process operator)."""
        return _copy(self._caller) if self._caller is not None else None

    async def renew(
        self, record: TokenRecord, increment_seconds: int | None
    ) -> tuple[TokenRecord, int]:
        """Renew the token `record` names, resolved again through this view."""
        current = await self._resolve(record.space, record.token_hash, dying=True, own=True)
        if current is None:
            raise PermissionDeniedError()
        renewed, granted = await self._store.renew(current, increment_seconds)
        return _copy(renewed), granted

    async def revoke(self, record: TokenRecord, *, tree: bool = True) -> None:
        """Revoke the token `record` names (and its tree), resolved again through this view."""
        current = await self._resolve(record.space, record.token_hash, dying=True, own=True)
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
        bound_cidrs: Iterable[str] = (),
    ) -> tuple[str, TokenRecord]:
        """Mint a token in this view's tenant incarnation, a child of the caller unless
        `orphan` (or the caller is the operator, who has no token); `bound_cidrs` are a token
        role's (`token_bound_cidrs`)."""
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
            bound_cidrs=bound_cidrs,
        )
        return plaintext, _copy(record)

    async def accessors(self) -> list[str]:
        """The accessors of every live token of this view's tenant (the root namespace's
        own for a root view): LIST auth/token/accessors, tenant by tenant as in Vault."""
        if self._tenant is None:
            records = await self._store.root_tokens()
        else:
            records = await self._store.tenant_tokens(self._tenant, self._tenant_uid)
        return sorted(record.accessor for record in records)
