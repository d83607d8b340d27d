"""The audit seam between the Core and the audit broker: what a request looks like to audit."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from tenantvault._exceptions import TenantVaultError
from tenantvault._request import Request, Response
from tenantvault._tokens import Principal

__all__ = ["AuditHook", "Refusal", "RequestContext"]


@dataclass(slots=True)
class RequestContext:
    """What the audit hook learns about a request, filled in as the pipeline resolves it.

    A request that fails early (bad token, foreign tenant, invalid path) is audited with
    what was known by then: principal, tenant, tenant_uid and mount may still be empty.
    """

    request: Request
    principal: Principal | None
    tenant: str | None
    mount: str
    path: str
    capability: str | None
    # The incarnation id of `tenant` (its uid): what audit entries are scoped by, since a
    # tenant deleted and created again under the same name must not see the old one's trail.
    tenant_uid: str = ""
    # The audit hook's own bookkeeping (which sinks recorded the request entry).
    audit_state: object = None
    # When the Core took the request (a monotonic reading), and its response once it was
    # answered and audited: what the request observers are told.
    started: float = field(default_factory=time.perf_counter, repr=False)
    answered: Response | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request the HTTP layer refused before it became a `Request`, as far as it was read.

    Nothing was authenticated (a refusal must not consume a token use) and no tenant was
    resolved: the entry belongs to no tenant. `raw_path` may hold a secret a client put in
    the URL by mistake, so audit records it only as an HMAC (of the bytes as sent, which is
    what `sys/audit-hash` computes for the same text); the query string is never kept.
    `token` is the header token if the headers were read (recorded as its HMAC, like any
    token); `claimed_namespace` is the namespace header, a claim and never the tenant.
    """

    request_id: str
    status: int
    error: str
    method: str
    raw_path: bytes = field(repr=False)
    client_address: str | None = None
    claimed_namespace: str = ""
    token: str | None = field(default=None, repr=False)


class AuditHook(Protocol):
    """The audit seam. `request` runs before the engine and may refuse (fail closed) by raising;
    `response` runs after it, with the response or the error. `refused` records a request the
    HTTP layer refused before translation: it raises `AuditError` if nothing recorded it,
    which changes nothing about the refusal itself."""

    async def request(self, context: RequestContext) -> None: ...

    async def response(
        self, context: RequestContext, response: Response | None, error: TenantVaultError | None
    ) -> None: ...

    async def refused(self, refusal: Refusal) -> None: ...
