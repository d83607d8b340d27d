"""The `Backend` on an upstream Vault/OpenBao KV v2 mount: sealed records, CAS, shared state.

tenantvault's own records (tenant registry, tokens, policies, mount tables, audit devices,
salts) live under a root that tenantvault owns in one upstream KV v2 mount, so that any
number of stateless instances share them. Layout under `<mount>/data/<root>/`:

- `meta` — the master key check (a sealed constant): a wrong master key fails at open.
- `tenants/<tenant>` — the tenant's incarnation id and its data key wrapped by the master
  key (SYSTEM_TENANT is `tenants/_system`; tenant ids never contain '_').
- `epochs/<incarnation>` — the tenant's epoch counter: every life of a key gets its own epoch.
- `records/<incarnation>/<mount>/<key>` — `{"e": epoch, "v": sealed value}`; the storage
  mount name is percent-encoded into one segment, the key keeps its '/' so that the
  upstream's LIST gives the immediate children the contract asks for.

**Sealed records.** Values are sealed with AES-256-GCM under the tenant's data key with
associated data (tenant, key id, mount, key), exactly as the embedded store does: the
records hold token hashes, policies, mount keys and salts, which upstream operators and
upstream backups must not read. The master key comes from the settings and must be the same
on every instance (`TENANTVAULT_MASTER_KEY` or a key file); it never goes upstream.
Tenant data served by the upstream-backed engines is *not* in these records: it is stored
natively upstream, readable with Vault's own tools, as the gateway design says.

**Revisions.** KV v2 restarts version numbers when a key's metadata is deleted, so the
version alone would repeat. A revision is `epoch << 24 | version`, where the epoch is taken
once per life of a key (when it is created) from the tenant's epoch counter: each instance
reserves a block of `EPOCH_BLOCK` epochs with one check-and-set increment of the counter
and hands them out locally, so blocks never overlap, two lives never share an epoch, and a
revision is never reused for a key, also across a delete and re-create (a block left
unused by a stopped instance is only skipped). Revisions fit a signed 64-bit integer (39
bits of epoch, 24 of version: a key written more than 16.7 million times is refused).

Every write is a KV v2 `cas` write: a create with `cas=0`, an update on the version read
just before, after comparing the full revision; `delete` compares the revision, then
deletes the metadata. What the upstream itself can check is the version only: a writer whose
read-compare-write straddles a whole delete, re-create and as many updates of the same key
(several upstream round trips of other writers inside one of its own) could still land on
the new life. Deletes have no upstream check-and-set at all, which is what KV v2 offers.

**Tenants.** Deleting a tenant deletes its record (and so its wrapped data key, every
version) first — from then on its records cannot be opened — and then purges its records.
A tenant created again gets a new incarnation and starts empty. Tenant records are cached
for at most `TENANT_CACHE_SECONDS` (1 s): another instance notices a deleted tenant within
that bound.

**N instances, one upstream: the bounds.** Record reads go through a per-process read
cache (`_cache.RecordCache`: sealed values, bounded in entries and bytes, single flight)
whose entries live at most `RECORD_CACHE_SECONDS` (1 s; `record_cache_seconds`, 0 turns it
off) from the upstream read that filled them. So a token revoked, a policy changed or a mount
disabled through one instance is seen by every other within 1 s, and at once by the
instance that made the change: its own writes and deletes forget the key first and store
the acknowledged value after, and a failed or lost write forgets it again. The compare of a
check-and-set (`write`, `delete`) always reads upstream, and the upstream's own `cas`
decides: a caller that read a stale copy gets `ConflictError`, the key is forgotten, and its
retry reads upstream — so counts like token `num_uses` stay exact. The tenant's name →
incarnation mapping (`TenantRegistry`, `UID_CACHE_SECONDS`) and the tenant record cache above
are 1 s too: a tenant deleted (or deleted and created again) through one instance is gone
(or the new one) on every instance within 1 s.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from tenantvault import _b64
from tenantvault._cas import DEFAULT_ATTEMPTS, backoff, retry_on_conflict
from tenantvault._exceptions import (
    BackendError,
    BackendUnavailableError,
    BadGatewayError,
    ClosedError,
    ConfigurationError,
    ConflictError,
    IntegrityError,
    InvalidPathError,
    NotFoundError,
)
from tenantvault.backends._protocol import SYSTEM_TENANT, Record
from tenantvault.crypto import AeadKey, encode_aad, random_key, unwrap_key, wrap_key
from tenantvault.upstream._cache import RECORD_CACHE_SECONDS, RecordCache
from tenantvault.upstream._client import UpstreamClient, UpstreamResponse, wait_for_kv_mount

if TYPE_CHECKING:
    from tenantvault.upstream._open import UpstreamGateway

__all__ = [
    "EPOCH_BLOCK",
    "RECORD_CACHE_SECONDS",
    "TENANT_CACHE_SECONDS",
    "UpstreamBackend",
    "UpstreamRecordsLocation",
]

logger = logging.getLogger("tenantvault.upstream.backend")

TENANT_CACHE_SECONDS: Final = 1.0
# Epochs reserved per counter increment: one upstream round trip per this many new keys.
EPOCH_BLOCK: Final = 1024
_VERSION_BITS: Final = 24
_VERSION_MASK: Final = (1 << _VERSION_BITS) - 1
# 39 + 24 bits: a revision fits a signed 64-bit integer (JSON, orjson, SQL).
_MAX_EPOCH: Final = (1 << 39) - 1
_KEY_CHECK_PLAINTEXT: Final = b"tenantvault upstream master key check"
_KEY_CHECK_AAD: Final = encode_aad("tenantvault:upstream-key-check")
_RECORD_LABEL: Final = "tenantvault:upstream-record"
_PURGE_CONCURRENCY: Final = 16
_CAS_MISMATCH: Final = "check-and-set parameter did not match"


@dataclass(frozen=True, slots=True)
class UpstreamRecordsLocation:
    """Where the records live upstream: namespace (None: the token's), KV v2 mount, root path."""

    mount: str = "secret"
    root: str = "tenantvault/_records"
    namespace: str | None = None

    def __post_init__(self) -> None:
        for name in ("mount", "root"):
            value = getattr(self, name)
            parts = value.split("/")
            if not value or any(not part or part in (".", "..") for part in parts):
                raise ConfigurationError(f"upstream records {name} must be a plain path")


@dataclass(frozen=True, slots=True)
class _Tenant:
    incarnation: str
    key: AeadKey


@dataclass(frozen=True, slots=True)
class _Current:
    epoch: int
    version: int
    sealed: bytes

    @property
    def revision(self) -> int:
        return self.epoch << _VERSION_BITS | self.version


def _tenant_size(record: _Tenant) -> int:
    return len(record.incarnation) + 64


def _sealed_size(current: _Current) -> int:
    return len(current.sealed)


def _segment(text: str, what: str) -> str:
    if not text:
        raise InvalidPathError(f"empty {what}")
    return _quoted(text)


@functools.lru_cache(maxsize=4096)
def _quoted(text: str) -> str:
    # One path segment whatever the name holds: '%' first, so the mapping is injective.
    # Memoized: every request peeks at its token's, policies' and mount table's records,
    # and names (mounts, tenants) repeat.
    return quote(text, safe="")


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") for part in parts):
        raise InvalidPathError("invalid record key")


def _check_prefix(prefix: str) -> None:
    if prefix and (
        not prefix.endswith("/") or any(p in ("", ".", "..") for p in prefix[:-1].split("/"))
    ):
        raise InvalidPathError("invalid record prefix")


class UpstreamBackend:
    """The `Backend` contract on upstream KV v2; open with `await UpstreamBackend.open(...)`.

    `token` returns the current upstream token (the `UpstreamAuth` service renews it);
    `on_refused` is called when the upstream refuses it (403), to trigger a fresh login;
    `refresh` is awaited before each call (`UpstreamAuth.ensure_fresh`: renews inline when
    no service does). `record_cache_seconds` is the TTL of the record read cache (0: off;
    at most `RECORD_CACHE_SECONDS`, the documented cross-instance bound).
    """

    def __init__(
        self,
        client: UpstreamClient,
        *,
        master_key: bytes,
        token: Callable[[], str],
        location: UpstreamRecordsLocation | None = None,
        on_refused: Callable[[], None] | None = None,
        refresh: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        owns_client: bool = True,
        record_cache_seconds: float = RECORD_CACHE_SECONDS,
    ) -> None:
        self._client = client
        self._master = AeadKey(master_key)
        self._token = token
        self._location = location if location is not None else UpstreamRecordsLocation()
        self._on_refused = on_refused
        self._refresh = refresh
        self._clock = clock
        self._owns_client = owns_client
        # Tenant -> its record (incarnation, data key), single flight; never negative.
        self._tenants: RecordCache[_Tenant] = RecordCache(
            size_of=_tenant_size, ttl_seconds=TENANT_CACHE_SECONDS, clock=clock
        )
        # Per tenant incarnation: [next, last] of the epoch block this instance reserved.
        self._epochs: dict[str, list[int]] = {}
        self._epoch_lock = asyncio.Lock()
        # Record path -> its latest upstream version, sealed; see _cache.py for the bounds.
        self._records: RecordCache[_Current] = RecordCache(
            size_of=_sealed_size, ttl_seconds=record_cache_seconds, clock=clock
        )
        self._closed = False
        # Set by `open_upstream`: the client, auth and layout that upstream engines use.
        self.gateway: UpstreamGateway | None = None

    @classmethod
    async def open(
        cls,
        client: UpstreamClient,
        *,
        master_key: bytes,
        token: Callable[[], str],
        location: UpstreamRecordsLocation | None = None,
        on_refused: Callable[[], None] | None = None,
        refresh: Callable[[], Awaitable[None]] | None = None,
        owns_client: bool = True,
        record_cache_seconds: float = RECORD_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> UpstreamBackend:
        """Check the mount and the master key (creating the root on first use)."""
        backend = cls(
            client,
            master_key=master_key,
            token=token,
            location=location,
            on_refused=on_refused,
            refresh=refresh,
            owns_client=owns_client,
            record_cache_seconds=record_cache_seconds,
            clock=clock,
        )
        try:
            await backend._prepare()
        except BaseException:
            await backend.aclose()
            raise
        return backend

    @property
    def name(self) -> str:
        """'vault'."""
        return "vault"

    def __repr__(self) -> str:
        location = self._location
        return f"UpstreamBackend(mount={location.mount!r}, root={location.root!r})"

    # -- upstream calls ----------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
    ) -> UpstreamResponse:
        if self._closed:
            raise ClosedError("backend is closed")
        if self._refresh is not None:
            await self._refresh()
        response = await self._client.request(
            method,
            path,
            token=self._token(),
            namespace=self._location.namespace,
            json=body,
            idempotent=idempotent,
        )
        if response.status == 403:
            # Our own token, not a caller's: an operator problem or an expired token, which
            # the auth service is asked to fix. "Try again" is the honest answer meanwhile.
            if self._on_refused is not None:
                self._on_refused()
            raise BackendUnavailableError("the upstream refused tenantvault's token")
        return response

    def _data_path(self, relative: str) -> str:
        return f"{self._location.mount}/data/{self._location.root}/{relative}"

    def _metadata_path(self, relative: str) -> str:
        return f"{self._location.mount}/metadata/{self._location.root}/{relative}"

    async def _get(self, relative: str) -> tuple[dict[str, Any], int] | None:
        """The data and version of the latest version at `relative`, or None."""
        response = await self._call("GET", self._data_path(relative))
        if response.status == 404:
            return None
        response.raise_for_status()
        payload = response.data
        data = payload.get("data")
        metadata = payload.get("metadata")
        if data is None:
            # A deleted (not destroyed) latest version; we never write those, but someone may.
            return None
        if not isinstance(data, dict) or not isinstance(metadata, dict):
            raise BadGatewayError("upstream sent a KV response of the wrong shape")
        version = metadata.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise BadGatewayError("upstream sent a KV response of the wrong shape")
        return data, version

    async def _put(self, relative: str, data: dict[str, Any], *, cas: int) -> int | None:
        """A KV v2 check-and-set write; the new version, or None if `cas` did not match."""
        response = await self._call(
            "POST", self._data_path(relative), {"data": data, "options": {"cas": cas}}
        )
        if response.status == 400 and any(_CAS_MISMATCH in text for text in response.errors):
            return None
        response.raise_for_status()
        version = response.data.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise BadGatewayError("upstream sent a KV response of the wrong shape")
        return version

    async def _remove(self, relative: str) -> None:
        """Delete every version and the metadata (KV v2 `metadata` DELETE; idempotent)."""
        response = await self._call("DELETE", self._metadata_path(relative), idempotent=True)
        if response.status != 404:
            response.raise_for_status()

    async def _list(self, relative: str) -> builtins.list[str]:
        response = await self._call("LIST", self._metadata_path(relative))
        if response.status == 404:
            return []
        keys = response.raise_for_status().data.get("keys")
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise BadGatewayError("upstream sent a list without keys")
        return keys

    # -- opening -----------------------------------------------------------------------------

    async def _prepare(self) -> None:
        await self._ensure_mount()
        check = await self._get("meta")
        if check is None:
            sealed = self._master.seal(_KEY_CHECK_PLAINTEXT, _KEY_CHECK_AAD)
            if await self._put("meta", {"check": _b64.encode(sealed)}, cas=0) is None:
                check = await self._get("meta")  # another instance initialized it first
        if check is not None:
            try:
                sealed = _b64.decode(str(check[0].get("check", "")))
                ok = self._master.open(sealed, _KEY_CHECK_AAD) == _KEY_CHECK_PLAINTEXT
            except (ValueError, IntegrityError):
                ok = False
            if not ok:
                raise ConfigurationError(
                    "the master key does not match the records in the upstream: every "
                    "tenantvault instance on one upstream root needs the same master key"
                )
        if await self._tenant_record(SYSTEM_TENANT) is None:
            try:
                await self._create(SYSTEM_TENANT)
            except ConflictError:
                pass  # another instance created it first

    async def _ensure_mount(self) -> None:
        mount = self._location.mount
        try:
            response = await self._call("GET", f"{mount}/config")
        except BackendUnavailableError:
            # Our policy may not grant reading the mount's config (403): the records' own
            # calls will tell soon enough whether the mount is there.
            return
        if response.ok:
            return
        if response.status != 404:
            raise ConfigurationError(
                f"cannot check the upstream KV v2 mount {mount}/ ({response.status})"
            )
        enabled = await self._call(
            "POST", f"sys/mounts/{mount}", {"type": "kv", "options": {"version": "2"}}
        )
        if not enabled.ok and not any("existing mount" in e for e in enabled.errors):
            raise ConfigurationError(
                f"the upstream has no KV v2 mount {mount}/ and tenantvault may not enable "
                f"it ({enabled.status}); enable it: bao secrets enable -path={mount} kv-v2"
            )
        await wait_for_kv_mount(lambda: self._call("GET", f"{mount}/config"))

    # -- tenants -----------------------------------------------------------------------------

    async def _tenant_record(self, tenant: str) -> _Tenant | None:
        found = await self._get(f"tenants/{_segment(tenant, 'tenant')}")
        if found is None:
            return None
        data = found[0]
        try:
            incarnation = str(data["id"])
            wrapped = _b64.decode(str(data["wrapped"]))
        except (KeyError, ValueError):
            raise IntegrityError("stored data failed authentication") from None
        key = unwrap_key(self._master, wrapped, tenant=tenant, key_id=incarnation)
        return _Tenant(incarnation, key)

    async def _tenant(self, tenant: str) -> _Tenant:
        record = await self._tenants.flight(tenant, lambda: self._tenant_record(tenant))
        if record is None:
            # Not cached as absent: a tenant created through another instance works here
            # at its first request.
            self._tenants.forget(tenant)
            raise NotFoundError("tenant not found")
        return record

    async def _create(self, tenant: str) -> None:
        incarnation = uuid.uuid4().hex
        data_key = random_key()
        wrapped = wrap_key(self._master, data_key, tenant=tenant, key_id=incarnation)
        written = await self._put(
            f"tenants/{_segment(tenant, 'tenant')}",
            {"id": incarnation, "wrapped": _b64.encode(wrapped)},
            cas=0,
        )
        if written is None:
            raise ConflictError("tenant already exists")
        self._tenants.store(tenant, _Tenant(incarnation, AeadKey(data_key)))

    async def create_tenant(self, tenant: str) -> None:
        """Create an empty tenant with a fresh data key; `ConflictError` if it exists."""
        _segment(tenant, "tenant")
        await self._create(tenant)

    async def delete_tenant(self, tenant: str) -> None:
        """Shred the tenant's key (its record), then purge its records; `NotFoundError` if none."""
        if tenant == SYSTEM_TENANT:
            raise NotFoundError("tenant not found")
        record = await self._tenant_record(tenant)
        self._tenants.forget(tenant)
        if record is None:
            raise NotFoundError("tenant not found")
        await self._remove(f"tenants/{_segment(tenant, 'tenant')}")
        self._tenants.forget(tenant)
        # Unreadable from here on (no key); the purge only frees upstream storage, so a
        # failure is logged and leaves unreadable garbage, never a tenant that lives on.
        failed = await self._purge(f"records/{record.incarnation}/")
        try:
            await self._remove(f"epochs/{record.incarnation}")
        except BackendError:
            failed += 1
        if failed:
            logger.warning(
                "purging a deleted tenant's records upstream: %d calls failed; what is left "
                "is unreadable (its key is gone)",
                failed,
            )

    async def _purge(self, folder: str) -> int:
        """Delete everything under `folder`; the number of upstream calls that failed."""
        gate = asyncio.Semaphore(_PURGE_CONCURRENCY)
        failed = 0

        async def purge(relative: str) -> None:
            nonlocal failed
            try:
                async with gate:
                    children = await self._list(relative)
            except BackendError:
                failed += 1
                return
            async with asyncio.TaskGroup() as group:
                for child in children:
                    path = relative + child
                    group.create_task(purge(path) if child.endswith("/") else remove(path))

        async def remove(relative: str) -> None:
            nonlocal failed
            try:
                async with gate:
                    await self._remove(relative)
            except BackendError:
                failed += 1

        await purge(folder)
        return failed

    async def list_tenants(self) -> builtins.list[str]:
        """All tenant ids, sorted, without `SYSTEM_TENANT`."""
        names = await self._list("tenants/")
        return sorted(
            name
            for name in names
            if not name.endswith("/") and name != _segment(SYSTEM_TENANT, "tenant")
        )

    async def has_tenant(self, tenant: str) -> bool:
        """Whether the tenant exists (asks the upstream; never from the cache)."""
        if not tenant:
            return False
        record = await self._tenant_record(tenant)
        if record is None:
            self._tenants.forget(tenant)
        return record is not None

    # -- records -----------------------------------------------------------------------------

    def _record_path(self, tenant: _Tenant, mount: str, key: str) -> str:
        return f"records/{tenant.incarnation}/{_segment(mount, 'mount')}/{key}"

    def _aad(self, tenant: str, record: _Tenant, mount: str, key: str) -> bytes:
        return encode_aad(_RECORD_LABEL, tenant, record.incarnation, mount, key)

    async def _current(self, path: str) -> _Current | None:
        found = await self._get(path)
        if found is None:
            return None
        data, version = found
        epoch = data.get("e")
        value = data.get("v")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or not isinstance(value, str):
            raise IntegrityError("stored data failed authentication")
        if version > _VERSION_MASK:
            raise BadGatewayError("upstream KV version out of range")
        try:
            sealed = _b64.decode(value)
        except ValueError:
            raise IntegrityError("stored data failed authentication") from None
        return _Current(epoch, version, sealed)

    async def read(self, tenant: str, mount: str, key: str) -> Record | None:
        """The record at `key`, or None; `NotFoundError` if the tenant does not exist."""
        _check_key(key)
        record = await self._tenant(tenant)
        path = self._record_path(record, mount, key)
        if self._records.enabled:
            current = await self._records.flight(path, lambda: self._current(path))
        else:
            current = await self._current(path)
        if current is None:
            return None
        value = record.key.open(current.sealed, self._aad(tenant, record, mount, key))
        return Record(value=value, revision=current.revision)

    def committed_revision(self, tenant: str, mount: str, key: str) -> int | None:
        """The revision `read` would answer with now from the record cache (0: absent), or
        None when it would ask the upstream (`RevisionPeek`). Fresh entries only: the same
        staleness bound as `read`, without opening the sealed value again."""
        if self._closed:
            raise ClosedError("backend is closed")
        found, record = self._tenants.peek(tenant)
        if not found or record is None:
            return None
        found, current = self._records.peek(self._record_path(record, mount, key))
        if not found:
            return None
        return 0 if current is None else current.revision

    async def _new_epoch(self, record: _Tenant) -> int:
        """A fresh epoch for a new life of a key, from this instance's reserved block."""
        block = self._epochs.get(record.incarnation)
        if block is None or block[0] > block[1]:
            async with self._epoch_lock:
                block = self._epochs.get(record.incarnation)
                if block is None or block[0] > block[1]:
                    block = await self._reserve_epochs(record)
                    self._epochs[record.incarnation] = block
        epoch = block[0]
        block[0] += 1
        return epoch

    async def _reserve_epochs(self, record: _Tenant) -> list[int]:
        """[first, last] of a block of epochs no other instance holds (a CAS increment)."""
        path = f"epochs/{record.incarnation}"

        async def reserve() -> list[int]:
            found = await self._get(path)
            number, version = (0, 0) if found is None else (found[0].get("n"), found[1])
            if not isinstance(number, int) or isinstance(number, bool):
                raise IntegrityError("stored data failed authentication")
            if number + EPOCH_BLOCK > _MAX_EPOCH:
                raise BackendUnavailableError("the tenant's record epochs are exhausted")
            if await self._put(path, {"n": number + EPOCH_BLOCK}, cas=version) is None:
                raise ConflictError("epoch counter moved on")
            return [number + 1, number + EPOCH_BLOCK]

        return await retry_on_conflict(reserve, what="the record epochs")

    async def write(
        self, tenant: str, mount: str, key: str, value: bytes, *, expected_revision: int | None
    ) -> int:
        """Store `value` with a KV v2 check-and-set and return the new revision."""
        _check_key(key)
        record = await self._tenant(tenant)
        path = self._record_path(record, mount, key)
        sealed = record.key.seal(value, self._aad(tenant, record, mount, key))
        # Forgotten first, and again on any failure (a lost race, an unknown outcome): a read
        # through this instance after the write never sees what was there before it.
        self._records.forget(path)
        try:
            revision, current = await self._write(record, path, sealed, expected_revision)
        except BaseException:
            self._records.forget(path)
            raise
        self._records.store(path, current)
        return revision

    async def _write(
        self, record: _Tenant, path: str, sealed: bytes, expected_revision: int | None
    ) -> tuple[int, _Current]:
        """`write` upstream, comparing with a fresh read: (revision, what is stored now)."""
        encoded = _b64.encode(sealed)
        for attempt in range(DEFAULT_ATTEMPTS):
            if expected_revision == 0:
                current = None  # the cas=0 write below checks the absence, atomically
            else:
                current = await self._current(path)
                found = current.revision if current is not None else 0
                if expected_revision is not None and expected_revision != found:
                    raise ConflictError("record changed since it was read")
            if current is None:
                epoch, cas = await self._new_epoch(record), 0
            else:
                epoch, cas = current.epoch, current.version
            version = await self._put(path, {"e": epoch, "v": encoded}, cas=cas)
            if version is not None:
                if version > _VERSION_MASK:
                    raise BadGatewayError("upstream KV version out of range")
                stored = _Current(epoch, version, sealed)
                return stored.revision, stored
            if expected_revision is not None:
                raise ConflictError("record changed since it was read")
            # An unconditional write lost a race: write over whatever won, from a fresh read.
            await backoff(attempt)
        raise BackendUnavailableError("too much contention on a record; retry")

    async def delete(
        self, tenant: str, mount: str, key: str, *, expected_revision: int | None = None
    ) -> bool:
        """Remove `key`; return whether it existed. `ConflictError` on a revision mismatch."""
        _check_key(key)
        record = await self._tenant(tenant)
        path = self._record_path(record, mount, key)
        self._records.forget(path)
        try:
            current = await self._current(path)  # fresh, never cached: it is compared
            found = current.revision if current is not None else 0
            if expected_revision is not None and expected_revision != found:
                raise ConflictError("record changed since it was read")
            if current is not None:
                await self._remove(path)
        except BaseException:
            self._records.forget(path)
            raise
        self._records.store(path, None)
        return current is not None

    async def list(self, tenant: str, mount: str, prefix: str) -> builtins.list[str]:
        """Immediate children of `prefix` ('' or ending in '/'), sorted."""
        _check_prefix(prefix)
        record = await self._tenant(tenant)
        folder = f"records/{record.incarnation}/{_segment(mount, 'mount')}/{prefix}"
        return sorted(await self._list(folder))

    async def aclose(self) -> None:
        """Close the upstream client (if this backend owns it); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._tenants.clear()
        self._records.clear()
        if self._owns_client:
            await self._client.aclose()
