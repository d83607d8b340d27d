"""The lease manager: the Core's one owner of leases (create, look up, renew, revoke, expire).

Engines never see it. An engine answers a dynamic secret with `Response.secret`; the Core
hands that to `attach`, which registers a lease in the tenant the Core resolved, indexed by
the creating token. Renewing and revoking go back to the engine of the lease's mount through
`LeasingEngine`, in that same tenant: a lease id names no tenant, so a request can only ever
reach the leases of its own tenant's space.

Expiry: a schedule (a heap of due times) is loaded at start from the leases of the tenants
that hold any (a `TenantSet`: start-up reads no tenant without leases, however many there
are), so leases that fell due while the server was down are revoked by the first pass. A failed
revocation is retried after `backoff_base_seconds * 2**attempt` (±50 %), and after
`max_attempts` the lease is kept as irrevocable with its error (as Vault), retried daily.
"""

from __future__ import annotations

import heapq
import logging
import random
import string
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol, runtime_checkable

from tenantvault._cas import retry_on_conflict
from tenantvault._clock import Clock, format_time
from tenantvault._exceptions import (
    ConflictError,
    InvalidRequestError,
    TaintedNamespaceError,
    TenantVaultError,
)
from tenantvault._paths import parse_path
from tenantvault._random_text import random_text
from tenantvault._request import Response
from tenantvault._router import Router
from tenantvault._tenant_sets import TenantSet
from tenantvault._tokens import TokenRecord
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.engines._protocol import Mount
from tenantvault.leases._store import Lease, LeaseStore
from tenantvault.leases._ttl import LeaseTTL, calculate_ttl

__all__ = [
    "LeaseManager",
    "LeaseQuotaError",
    "LeasesRemainError",
    "LeasingEngine",
    "TenantDeletingError",
]

logger = logging.getLogger("tenantvault.leases")

_NS: Final = 1_000_000_000
_ID_ALPHABET: Final = string.ascii_letters + string.digits
_IRREVOCABLE_RETRY_NS: Final = 24 * 3600 * _NS
_ERROR_CHARS: Final = 240

# (token space, token hash) → the token's expiry now (0: never), None when it is gone.
TokenExpiry = Callable[[str, str], Awaitable[int | None]]
# (event, tenant, failed): "created" or "revoked"; tenant None for the root namespace.
LeaseEvents = Callable[[str, str | None, bool], None]


class LeaseQuotaError(TenantVaultError):
    """The tenant holds as many leases as its quota allows (429, so clients back off)."""

    status = 429

    def __init__(self) -> None:
        super().__init__("lease count quota exceeded")


# A lease issued in a tenant that began to be deleted meanwhile: revoked at once, answered as
# a request into a tainted namespace.
TenantDeletingError = TaintedNamespaceError


class LeasesRemainError(InvalidRequestError):
    """A tenant cannot be deleted yet: some of its leases could not be revoked (400, as
    OpenBao answers a failed synchronous revocation)."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"cannot delete the namespace: {count} lease(s) could not be revoked; they are "
            "retried in the background (sys/leases/lookup shows the error, "
            "sys/leases/revoke-force gives them up); delete the namespace again afterwards"
        )


@runtime_checkable
class LeasingEngine(Protocol):
    """What an engine that issues leased secrets offers the lease manager."""

    async def revoke_secret(self, mount: Mount, internal: Mapping[str, Any]) -> None:
        """Destroy the secret (drop the database user); idempotent."""
        ...

    async def renew_secret(
        self,
        mount: Mount,
        internal: Mapping[str, Any],
        *,
        increment_seconds: int,
        issued_ns: int,
        now_ns: int,
    ) -> LeaseTTL:
        """Extend the secret (move `VALID UNTIL`); the new TTL within the role's maximum."""
        ...


def _lease_suffix() -> str:
    return random_text(_ID_ALPHABET, 24)


def _token_space(record: TokenRecord) -> str:
    """The space a token's record (and so its lease index) lives in."""
    return record.tenant if record.space and record.tenant is not None else SYSTEM_TENANT


def _valid_id(lease_id: str) -> bool:
    try:
        parse_path(lease_id)
    except InvalidRequestError:
        return False
    return True


def _error_text(error: BaseException) -> str:
    """The engine's error for `revoke_error` and the caller: TenantVaultError texts are
    written to be shown (no secret); anything else is named by type only."""
    if isinstance(error, TenantVaultError) and error.message:
        return error.message[:_ERROR_CHARS]
    return type(error).__name__


class LeaseManager:
    """Leases of every tenant over one Backend; the engines found through the `Router`."""

    def __init__(
        self,
        backend: Backend,
        router: Router,
        *,
        tenant_uid: Callable[[str], Awaitable[str | None]],
        clock: Clock,
        quota: int = 0,
        backoff_base_seconds: float = 10.0,
        max_attempts: int = 6,
        token_expiry: TokenExpiry | None = None,
        events: LeaseEvents | None = None,
        tainted: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        """`quota`: the most leases one tenant may hold (0: no limit). `token_expiry` tells
        when a lease's creating token expires now (it may have been renewed since); without
        it a lease is revoked at its token's expiry as first seen. `events` is told of each
        lease created, revoked or failing revocation (the metrics counters). `tainted` tells
        whether a tenant is being deleted (read now): see `attach`. `tenant_uid` must answer
        for a tenant being deleted too: its leases are revoked then."""
        self._token_expiry = token_expiry
        self._tainted = tainted
        self._events = events
        self._backend = backend
        self._store = LeaseStore(backend)
        # The tenants holding leases: each joins before its first lease is stored.
        self._holders = TenantSet(backend, "leases", holds=self._holds_leases)
        self._router = router
        self._tenant_uid = tenant_uid
        self._clock = clock
        self.quota = quota
        # The first retry's pause; each further failure doubles it.
        self.backoff_base_seconds = backoff_base_seconds
        self._max_attempts = max_attempts
        # (due time, tenant, lease id); stale entries (renewed, revoked) are skipped on pop.
        self._schedule: list[tuple[int, str, str]] = []
        self._failures = 0
        self._revoked = 0

    # -- start and health --------------------------------------------------------------------

    async def start(self) -> None:
        """Load the leases of every tenant holding any into the schedule (those overdue run
        at the next pass); tenants without leases are not read."""
        self._schedule = []
        for tenant in [SYSTEM_TENANT, *await self._holders.members()]:
            lease_ids = await self._store.walk(tenant)
            if not lease_ids and tenant != SYSTEM_TENANT:
                if not await self._backend.has_tenant(tenant):
                    await self._holders.forget(tenant)
                continue
            for lease_id in lease_ids:
                lease = await self._store.read(tenant, lease_id)
                if lease is not None:
                    self._schedule.append((lease.due_ns, tenant, lease.id))
        heapq.heapify(self._schedule)

    async def _holds_leases(self, tenant: str) -> bool:
        """Whether `tenant` holds a lease (the one-time scan of a store from before the set)."""
        return bool(await self._store.children(tenant, ""))

    def health(self) -> dict[str, Any]:
        """The expiration backlog for `sys/health` (counts only, no lease ids)."""
        now = self._clock()
        return {
            "scheduled": len(self._schedule),
            "due": sum(1 for due, _, _ in self._schedule if due <= now),
            "revoked": self._revoked,
            "failures": self._failures,
        }

    # -- registering -------------------------------------------------------------------------

    async def attach(
        self,
        response: Response,
        *,
        tenant: str,
        mount: Mount,
        path: str,
        token: TokenRecord | None,
        engine: LeasingEngine,
    ) -> None:
        """Register the lease for `response.secret` (issued at `path` of `mount`) and fill
        the envelope. If it cannot be registered the secret is revoked at once: no secret
        outlives a lease that was never recorded."""
        secret = response.secret
        if secret is None:
            return
        response.secret = None
        now = self._clock()
        ttl = calculate_ttl(
            mount.config,
            backend_ttl_seconds=secret.ttl_seconds,
            backend_max_ttl_seconds=secret.max_ttl_seconds,
        )
        lease = Lease(
            id=f"{path}/{_lease_suffix()}",
            path=path,
            mount=mount.path,
            mount_uuid=mount.uuid,
            issue_ns=now,
            expire_ns=now + ttl.ttl_seconds * _NS,
            renewable=secret.renewable,
            internal=dict(secret.internal),
        )
        if token is not None:
            lease.token_space, lease.token_hash = _token_space(token), token.token_hash
            lease.token_expire_ns = token.expire_ns
        try:
            if tenant != SYSTEM_TENANT:
                await self._holders.add(tenant)  # first: the schedule must find this lease
            await self._count(tenant, +1)
            try:
                if lease.token_hash:
                    await self._store.link(lease.token_space, lease.token_hash, tenant, lease.id)
                await self._store.create(tenant, lease)
            except BaseException:
                await self._count(tenant, -1)
                raise
            # Asked after the lease is stored: a deletion that tainted the tenant before this
            # read lists the leases after it too, so it finds this one or this one sees the
            # taint. Either way the secret is revoked; none outlives its tenant.
            if tenant != SYSTEM_TENANT and self._tainted is not None:
                if await self._tainted(tenant):
                    await self._forget(tenant, lease)
                    raise TenantDeletingError(tenant, path)
        except BaseException:
            try:
                await engine.revoke_secret(mount, lease.internal)
            except TenantVaultError as error:
                # The caller learns why the lease failed; the stray secret is in the log.
                logger.error("could not revoke an unregistered secret (%s)", type(error).__name__)
            raise
        heapq.heappush(self._schedule, (lease.due_ns, tenant, lease.id))
        self._event("created", tenant, failed=False)
        response.lease_id = lease.id
        response.renewable = lease.renewable
        response.lease_duration = ttl.ttl_seconds
        if ttl.warnings:
            response.warnings = [*(response.warnings or []), *ttl.warnings]

    async def _count(self, tenant: str, delta: int) -> None:
        async def attempt() -> None:
            count, revision = await self._store.count(tenant)
            if delta > 0 and self.quota and count + delta > self.quota:
                raise LeaseQuotaError()
            await self._store.set_count(tenant, count + delta, revision=revision)

        await retry_on_conflict(attempt, what="the lease count")

    # -- the sys/leases endpoints ------------------------------------------------------------

    async def _find(self, tenant: str, lease_id: str) -> Lease | None:
        return await self._store.read(tenant, lease_id) if _valid_id(lease_id) else None

    async def lookup(self, tenant: str, lease_id: str) -> dict[str, Any]:
        """`sys/leases/lookup`: Vault's description of a lease; 400 `invalid lease`."""
        lease = await self._find(tenant, lease_id)
        if lease is None:
            raise InvalidRequestError("invalid lease")
        now = self._clock()
        data: dict[str, Any] = {
            "id": lease.id,
            "issue_time": format_time(lease.issue_ns),
            "expire_time": format_time(lease.expire_ns),
            "last_renewal": format_time(lease.last_renewal_ns) or None,
            "ttl": max(0, (lease.expire_ns - now) // _NS),
            "renewable": lease.renewable and not lease.irrevocable,
            "path": lease.path,
        }
        if lease.revoke_error:
            data["revoke_error"] = lease.revoke_error
        if tenant != SYSTEM_TENANT:
            data["namespace_path"] = f"{tenant}/"  # as OpenBao shows a namespace's lease
        return data

    async def list(self, tenant: str, prefix: str) -> list[str]:
        """`LIST sys/leases/lookup/<prefix>`: the ids and folders directly under `prefix`."""
        if prefix and not _valid_id(prefix.rstrip("/")):
            return []
        return await self._store.children(tenant, prefix)

    async def renew(self, tenant: str, uid: str, lease_id: str, increment_seconds: int) -> Response:
        """`sys/leases/renew`: extend the lease (and the secret) within its maximum."""
        lease = await self._find(tenant, lease_id)
        if lease is None:
            raise InvalidRequestError("lease not found")
        now = self._clock()
        if lease.irrevocable:
            raise InvalidRequestError(
                "lease is expired and has failed previous revocation attempts"
            )
        if lease.expire_ns <= now:
            raise InvalidRequestError("lease expired")
        if not lease.renewable:
            raise InvalidRequestError("lease is not renewable")
        mount, engine = await self._engine_of(tenant, uid, lease)
        if mount is None or engine is None:
            raise InvalidRequestError("lease not found")
        ttl = await engine.renew_secret(
            mount,
            lease.internal,
            increment_seconds=increment_seconds,
            issued_ns=lease.issue_ns,
            now_ns=now,
        )

        async def attempt() -> Lease:
            current = await self._store.read(tenant, lease.id)
            if current is None:
                raise InvalidRequestError("lease not found")
            current.expire_ns = now + ttl.ttl_seconds * _NS
            current.last_renewal_ns = now
            current.next_attempt_ns = 0
            await self._store.save(tenant, current)
            return current

        renewed = await retry_on_conflict(attempt, what="the lease")
        heapq.heappush(self._schedule, (renewed.due_ns, tenant, renewed.id))
        return Response(
            lease_id=renewed.id,
            renewable=True,
            lease_duration=ttl.ttl_seconds,
            warnings=list(ttl.warnings) or None,
        )

    async def revoke(self, tenant: str, uid: str, lease_id: str) -> None:
        """`sys/leases/revoke`: revoke now; the engine's error goes to the caller (400)."""
        lease = await self._find(tenant, lease_id)
        if lease is not None:
            await self._revoke(tenant, uid, lease, force=False)

    async def revoke_later(self, tenant: str, lease_id: str) -> None:
        """`sys/leases/revoke` with `sync=false`: due now, for the expiration service."""
        lease = await self._find(tenant, lease_id)
        if lease is None:
            return
        now = self._clock()
        lease.next_attempt_ns = now
        try:
            await self._store.save(tenant, lease)
        except ConflictError:
            return  # changed meanwhile (revoked, renewed): the caller may ask again
        heapq.heappush(self._schedule, (now, tenant, lease.id))

    async def revoke_prefix(self, tenant: str, uid: str, prefix: str, *, force: bool) -> None:
        """`sys/leases/revoke-prefix|revoke-force/<prefix>`. With `force` an engine error
        is ignored and the lease forgotten anyway (Vault's "potentially very dangerous")."""
        folder = prefix.rstrip("/")
        if not folder or not _valid_id(folder):
            return
        lease = await self._store.read(tenant, folder)
        ids = [folder] if lease is not None else []
        ids += await self._store.walk(tenant, folder + "/")
        for lease_id in ids:
            found = await self._store.read(tenant, lease_id)
            if found is not None:
                await self._revoke(tenant, uid, found, force=force)

    async def tidy(self, tenant: str) -> int:
        """`sys/leases/tidy`: drop token index entries whose lease is gone and recount the
        tenant's leases (a crash between a revocation's steps leaves either); how many
        entries were dropped."""
        dropped = 0
        for token_hash in await self._store.indexed_tokens(tenant):
            for owner, lease_id in await self._store.linked(tenant, token_hash):
                if await self._store.read(owner, lease_id) is None:
                    await self._store.unlink(tenant, token_hash, lease_id)
                    dropped += 1
        held = len(await self._store.walk(tenant))

        async def recount() -> None:
            _, revision = await self._store.count(tenant)
            await self._store.set_count(tenant, held, revision=revision)

        await retry_on_conflict(recount, what="the lease count")
        return dropped

    # -- revocation ----------------------------------------------------------------------------

    async def _engine_of(
        self, tenant: str, uid: str, lease: Lease
    ) -> tuple[Mount | None, LeasingEngine | None]:
        """The lease's mount (if it is still the same incarnation) and its leasing engine."""
        table = await self._router.table(tenant, uid)
        mount = table.mounts.get(lease.mount)
        if mount is None or mount.uuid != lease.mount_uuid:
            return None, None
        engine = self._router.engine(table.entries[lease.mount])
        return mount, engine if isinstance(engine, LeasingEngine) else None

    async def _revoke(self, tenant: str, uid: str, lease: Lease, *, force: bool) -> None:
        mount, engine = await self._engine_of(tenant, uid, lease)
        if mount is not None and engine is not None:
            try:
                await engine.revoke_secret(mount, lease.internal)
            except TenantVaultError as error:
                if not force:
                    raise InvalidRequestError(
                        f"failed to revoke entry: resp: (*logical.Response)(nil) err: "
                        f"{_error_text(error)}"
                    ) from None
        await self._forget(tenant, lease)

    async def _forget(self, tenant: str, lease: Lease) -> None:
        """Delete a revoked lease, its token link and its count (once, however many try)."""
        current = await self._store.read(tenant, lease.id)
        if current is None or not await self._store.remove(tenant, current):
            return
        if current.token_hash:
            await self._store.unlink(current.token_space, current.token_hash, current.id)
        await self._count(tenant, -1)
        self._revoked += 1
        self._event("revoked", tenant, failed=False)

    def _event(self, event: str, tenant: str, *, failed: bool) -> None:
        if self._events is not None:
            self._events(event, None if tenant == SYSTEM_TENANT else tenant, failed)

    async def _token_outlived(self, tenant: str, lease: Lease, now: int) -> bool:
        """Whether a lease fell due only at its token's expiry as first seen while the token
        was renewed since: then its new expiry is recorded and the lease rescheduled."""
        if self._token_expiry is None or lease.next_attempt_ns or not lease.token_expire_ns:
            return False
        if lease.expire_ns <= now or lease.token_expire_ns > now:
            return False
        current = await self._token_expiry(lease.token_space, lease.token_hash)
        if current is None or (current and current <= now):
            return False  # gone or expired: the lease dies with it
        lease.token_expire_ns = current
        try:
            await self._store.save(tenant, lease)
        except ConflictError:
            return True  # changed meanwhile (renewed, revoked): its own entry stands
        heapq.heappush(self._schedule, (lease.due_ns, tenant, lease.id))
        return True

    async def mount_destroyed(self, mount: Mount, engine: LeasingEngine) -> int:
        """Revoke the leases of a mount being disabled (as Vault's RevokePrefix on unmount),
        with the `Mount` as it was: its table entry is gone, its records not yet. A secret
        the engine cannot revoke is logged and its lease forgotten, since the mount's records
        go next. How many were revoked."""
        tenant = mount.storage.tenant
        done = 0
        for lease_id in await self._store.walk(tenant, mount.path):
            lease = await self._store.read(tenant, lease_id)
            if lease is None or lease.mount_uuid != mount.uuid:
                continue
            try:
                await engine.revoke_secret(mount, lease.internal)
                done += 1
            except TenantVaultError as error:
                self._failures += 1
                self._event("revoked", tenant, failed=True)
                logger.error(
                    "a lease of a disabled mount could not be revoked (%s)", type(error).__name__
                )
            await self._forget(tenant, lease)
        return done

    async def tenant_deleting(self, tenant: str) -> None:
        """The tenant registry's first delete step: revoke every lease of the tenant while
        its mounts and configs can still be read (the database users are dropped). As
        OpenBao, whose namespace deletion stops when an unmount's lease revocation fails,
        a lease that cannot be revoked stops the deletion: it stays, with its error, due for
        the expiration service's retries, and the tenant stays until a later deletion finds
        no lease left (`sys/leases/revoke-force` gives up on a secret for good)."""
        uid = await self._tenant_uid(tenant)
        if uid is None:
            return
        failed = 0
        now = self._clock()
        for lease_id in await self._store.walk(tenant):
            lease = await self._store.read(tenant, lease_id)
            if lease is None:
                continue
            try:
                mount, engine = await self._engine_of(tenant, uid, lease)
                if mount is not None and engine is not None:
                    await engine.revoke_secret(mount, lease.internal)
            except TenantVaultError as error:
                failed += 1
                await self._failed(tenant, lease, error, now)
                continue
            await self._forget(tenant, lease)
        if failed:
            raise LeasesRemainError(failed)

    async def token_revoked(self, record: TokenRecord) -> None:
        """The token store's `on_revoke` hook: revoke every lease the token created. A lease
        whose engine fails is left due now, for the expiration service to retry."""
        space = _token_space(record)
        for tenant, lease_id in await self._store.linked(space, record.token_hash):
            lease = await self._store.read(tenant, lease_id)
            if lease is None:
                await self._store.unlink(space, record.token_hash, lease_id)
                continue
            uid = "" if tenant == SYSTEM_TENANT else await self._tenant_uid(tenant)
            if uid is None:
                continue  # the tenant is gone, with its leases
            try:
                await self._revoke(tenant, uid, lease, force=False)
            except TenantVaultError:
                heapq.heappush(self._schedule, (self._clock(), tenant, lease_id))

    async def revoke_due(self) -> int:
        """One pass of the expiration service: revoke every lease now due; how many."""
        now = self._clock()
        done = 0
        while self._schedule and self._schedule[0][0] <= now:
            _, tenant, lease_id = heapq.heappop(self._schedule)
            lease = await self._store.read(tenant, lease_id)
            if lease is None or lease.due_ns > now:
                continue  # revoked meanwhile, or renewed (its new entry is queued)
            if await self._token_outlived(tenant, lease, now):
                continue
            uid = "" if tenant == SYSTEM_TENANT else await self._tenant_uid(tenant)
            if uid is None:
                continue
            try:
                mount, engine = await self._engine_of(tenant, uid, lease)
                if mount is not None and engine is not None:
                    await engine.revoke_secret(mount, lease.internal)
            except TenantVaultError as error:
                await self._failed(tenant, lease, error, now)
                continue
            await self._forget(tenant, lease)
            done += 1
        return done

    async def _failed(self, tenant: str, lease: Lease, error: TenantVaultError, now: int) -> None:
        """Record a failed revocation and when to try again (backoff, then irrevocable)."""
        self._failures += 1
        self._event("revoked", tenant, failed=True)
        lease.attempts += 1
        if lease.attempts >= self._max_attempts:
            lease.irrevocable = True
            lease.revoke_error = f"out of retries: {_error_text(error)}"[:_ERROR_CHARS]
            pause = _IRREVOCABLE_RETRY_NS
        else:
            lease.revoke_error = _error_text(error)
            # Jitter, not cryptography: spread the retries of many leases apart.
            jitter = 0.5 + random.random()  # noqa: S311
            pause = int(self.backoff_base_seconds * _NS * 2 ** (lease.attempts - 1) * jitter)
        lease.next_attempt_ns = now + pause
        logger.warning(
            "lease revocation failed (%s), attempt %d", type(error).__name__, lease.attempts
        )
        try:
            await self._store.save(tenant, lease)
        except ConflictError:
            # Changed meanwhile (renewed or revoked elsewhere): its own entry stands.
            return
        heapq.heappush(self._schedule, (lease.due_ns, tenant, lease.id))
