"""What an engine hands the Core for one request: the ACL path, the capability, the handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tenantvault._policy import ACL
    from tenantvault._request import Response
    from tenantvault._tokens import Principal

__all__ = ["Call", "Route"]


@dataclass(frozen=True, slots=True)
class Call:
    """Everything a handler may use: the tenant it runs in, the caller and the request data."""

    tenant: str
    principal: Principal
    data: Mapping[str, Any] = field(repr=False)
    request_id: str
    acl: ACL = field(repr=False)
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Route:
    """One resolved request.

    `acl_path` is the canonical path the policy is checked against (with a trailing '/' for
    LIST, as Vault does). `capability` is the one needed; when it is None the Core asks
    `exists()` and needs `update` if the target exists and `create` otherwise. A route with
    `public=True` needs no capability at all (health probes, a token looking itself up is
    still checked by policy: only truly public endpoints set it).
    """

    acl_path: str
    capability: str | None
    handler: Callable[[Call], Awaitable[Response]]
    exists: Callable[[str], Awaitable[bool]] | None = None
    public: bool = False
    mount: str = ""
