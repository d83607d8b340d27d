"""Request observers: the Core tells subscribers how each request ended; they can never refuse it.

The seam for metrics, anomaly detection and the cache (issues to come), kept apart from the
fail-closed audit hook [STYLE: "Observers are Protocols"; stamina's instrumentation hooks]:

- `RequestObserver` is a Protocol with one method, `observe(outcome)`. Subscribe one with
  `Core.subscribe(observer)` or `create_app(observers=[...])`.
- The Core calls every observer exactly once per request, after the request was answered
  and audited: once from the pipeline (`Core.handle`, whatever its outcome: success, refusal,
  error, a bug answered 500) and once for each request the HTTP layer refused before it
  became a `Request` (`Core.refused`, with `refused=True`).
- Never fail-closed: an observer that raises is logged (its exception's type only) and
  ignored; the request, its answer and its audit entries are already settled. `observe` runs
  on the event loop, synchronously: it must be quick and must not block — an observer with
  slow work (exporting, scoring) queues the outcome for a task of its own, as
  `Observability` does (it buffers outcomes and counts them in batches).
- Cheap to make: a `RequestOutcome` is a named tuple built positionally, because one is
  made for every request (as a frozen dataclass, `handled_outcome` took 5.8 µs in a
  micro-benchmark on a busy machine; as a named tuple, 1.1 µs).
- No secret in what it receives: a `RequestOutcome` holds no token, path or body — only
  the operation, the mount, the tenant (name and incarnation id), the status and the time,
  and for the anomaly detector who asked (the token's accessor and display name, never the
  token), from where, and an opaque digest of the path (`target`: equal paths give equal
  digests within one process; the key is random per process, so it names no path).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from tenantvault._audit_hook import Refusal, RequestContext
from tenantvault._exceptions import TenantVaultError

__all__ = ["RequestObserver", "RequestOutcome", "handled_outcome", "notify", "refused_outcome"]

logger = logging.getLogger("tenantvault.observe")


class RequestOutcome(NamedTuple):
    """How one request ended, as far as an observer may know (immutable)."""

    request_id: str
    # Vault's operation ('read', 'update', ...); '' for a request the HTTP layer refused.
    operation: str
    # The mount the request was routed to, as its route names it ('secret', 'transit', 'sys',
    # 'auth'); '' if it was refused before routing.
    mount: str
    # The tenant's incarnation id ('' in the root namespace, or before the tenant was known).
    tenant_uid: str
    status: int
    duration_seconds: float
    # Refused by policy or for a bad token (403).
    denied: bool
    # Refused by the HTTP layer before it reached the Core's pipeline (malformed JSON, 413...).
    refused: bool = False
    # The tenant's name (None: the root namespace, or not known yet).
    tenant: str | None = None
    # The caller's token accessor and display name ('' without a token, or not known yet).
    accessor: str = ""
    display_name: str = ""
    client_address: str | None = None
    # A keyed digest of (tenant incarnation, ACL path): counts distinct paths, names none.
    target: str = ""
    # A tenant's token used outside its tenant (another namespace named): the outcome is
    # then that token's tenant's, so its admin sees the attempt (the target is not named).
    cross_tenant: bool = False


# Random per process: a `target` digest cannot be matched against a guessed path offline.
_TARGET_KEY = secrets.token_bytes(32)


# Recent digests: a busy server reads the same few paths over and over (a keyed hash per
# request was a fifth of the observers' cost). Bounded; emptied when full.
_TARGETS: dict[tuple[str, str], str] = {}
_TARGETS_KEPT = 4096


def _target(tenant_uid: str, path: str) -> str:
    if not path:
        return ""
    key = (tenant_uid, path)
    found = _TARGETS.get(key)
    if found is None:
        digest = hashlib.blake2b(f"{tenant_uid}\0{path}".encode(), key=_TARGET_KEY, digest_size=12)
        if len(_TARGETS) >= _TARGETS_KEPT:
            _TARGETS.clear()
        found = _TARGETS[key] = digest.hexdigest()
    return found


class RequestObserver(Protocol):
    """Receives every request's outcome; must not block, and cannot refuse anything."""

    def observe(self, outcome: RequestOutcome) -> None: ...


def handled_outcome(
    context: RequestContext, failure: BaseException | None
) -> RequestOutcome | None:
    """The outcome of a request the pipeline served (`context.answered`) or the `failure` it
    is ending with; None if it was cancelled (no answer)."""
    if context.answered is not None:
        # Answered: whatever `failure` is, it is not this request's (sys.exception() in the
        # Core's `finally` also sees an exception its caller is handling).
        status = context.answered.status
    elif isinstance(failure, TenantVaultError):
        status = failure.status
    elif isinstance(failure, Exception):
        status = 500  # a bug: HTTP answers 500, and so does the audit trail
    else:
        return None
    tenant, tenant_uid = context.tenant, context.tenant_uid
    record = context.principal.record if context.principal is not None else None
    cross_tenant = tenant is None and record is not None and record.tenant is not None
    if cross_tenant and record is not None:
        tenant, tenant_uid = record.tenant, record.tenant_uid
    request = context.request
    # Positional, every field in declaration order: the fastest way to build a named tuple
    # (keyword arguments go through its generated `__new__`, twice the cost).
    return RequestOutcome._make(
        (
            request.request_id,
            str(request.operation),
            context.mount,
            tenant_uid,
            status,
            time.perf_counter() - context.started,
            status == 403,  # denied
            False,  # refused
            tenant,
            record.accessor if record is not None else "",
            record.display_name if record is not None else "",
            request.client_address,
            _target(tenant_uid, context.path),
            cross_tenant,
        )
    )


def refused_outcome(refusal: Refusal, *, started: float) -> RequestOutcome:
    """The outcome of a request the HTTP layer refused; `started` is its perf_counter()."""
    return RequestOutcome(
        request_id=refusal.request_id,
        operation="",
        mount="",
        tenant_uid="",
        status=refusal.status,
        duration_seconds=time.perf_counter() - started,
        denied=refusal.status == 403,
        refused=True,
        client_address=refusal.client_address,
    )


def notify(observers: Iterable[RequestObserver], outcome: RequestOutcome | None) -> None:
    """Tell each observer; one that raises is logged and skipped, never the request's problem."""
    if outcome is None:
        return
    for observer in observers:
        try:
            observer.observe(outcome)
        except Exception as error:  # noqa: BLE001 -- observers are never fail-closed (see above)
            # The type only: the message might quote whatever the observer was holding.
            logger.warning(
                "request observer %s failed (%s); ignored",
                type(observer).__qualname__,
                type(error).__qualname__,
            )
