"""The audit seam between the Core and the audit broker: what a request looks like to audit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tenantvault._exceptions import TenantVaultError
from tenantvault._request import Request, Response
from tenantvault._tokens import Principal

__all__ = ["AuditHook", "RequestContext"]


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


class AuditHook(Protocol):
    """The audit seam. `request` runs before the engine and may refuse (fail closed) by raising;
    `response` runs after it, with the response or the error."""

    async def request(self, context: RequestContext) -> None: ...

    async def response(
        self, context: RequestContext, response: Response | None, error: TenantVaultError | None
    ) -> None: ...
