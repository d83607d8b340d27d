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
  slow work (exporting, scoring) queues the outcome for a task of its own.
- No secret in what it receives: a `RequestOutcome` holds no token, path, body or tenant
  name — only the operation, the mount, the tenant's incarnation id, the status and the time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from tenantvault._audit_hook import Refusal, RequestContext
from tenantvault._exceptions import TenantVaultError

__all__ = ["RequestObserver", "RequestOutcome", "handled_outcome", "notify", "refused_outcome"]

logger = logging.getLogger("tenantvault.observe")


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """How one request ended, as far as an observer may know."""

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
    return RequestOutcome(
        request_id=context.request.request_id,
        operation=str(context.request.operation),
        mount=context.mount,
        tenant_uid=context.tenant_uid,
        status=status,
        duration_seconds=time.perf_counter() - context.started,
        denied=status == 403,
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
