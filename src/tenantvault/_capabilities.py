"""`sys/capabilities`, `-self` and `-accessor`: answered by the Core, which alone holds ACLs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantvault._authorize import ROOT_ACL, acl_of
from tenantvault._exceptions import InternalError, InvalidRequestError
from tenantvault._policy import ACL
from tenantvault._policy_store import PolicyStore
from tenantvault._request import Operation, Response
from tenantvault._tokens import Principal
from tenantvault.engines._route import Call, Route

__all__ = ["CapabilityEndpoints"]

_PATHS = frozenset({"sys/capabilities", "sys/capabilities-self", "sys/capabilities-accessor"})
# Each endpoint's parameters (`Route.parameters`): the paths asked about (`path` is Vault's
# older name), and the token or accessor whose capabilities they are.
_PARAMETERS = {
    "sys/capabilities": frozenset({"paths", "path", "token"}),
    "sys/capabilities-self": frozenset({"paths", "path"}),
    "sys/capabilities-accessor": frozenset({"paths", "path", "accessor"}),
}
_MAX_PATHS = 256


class CapabilityEndpoints:
    """The Core's own routes: they evaluate an ACL, so no engine may serve them."""

    def __init__(self, policies: PolicyStore) -> None:
        self._policies = policies

    def route(self, operation: Operation, path: str, principal: Principal | None) -> Route | None:
        """The route for `path` if it is one of these endpoints, else None."""
        if path not in _PATHS or operation not in (Operation.UPDATE, Operation.CREATE):
            return None

        async def handler(call: Call) -> Response:
            if path == "sys/capabilities-self":
                # Authentication made this very principal; the operator is root.
                acl = await acl_of(self._policies, principal, call.tenant)
            else:
                acl = await self._token_acl(call, by_accessor=path.endswith("-accessor"))
            return _capabilities(acl, call.data)

        return Route(path, "update", handler, mount="sys", parameters=_PARAMETERS[path])

    async def _token_acl(self, call: Call, *, by_accessor: bool) -> ACL:
        """The ACL of the token named in the request, looked up in the call's own tenant."""
        if call.tokens is None:
            raise InternalError()
        if by_accessor:
            accessor = call.data.get("accessor")
            found = (
                await call.tokens.lookup_accessor(accessor) if isinstance(accessor, str) else None
            )
            if found is None:
                raise InvalidRequestError("invalid accessor")
        else:
            token = call.data.get("token")
            found = await call.tokens.lookup(token) if isinstance(token, str) else None
            if found is None:
                raise InvalidRequestError("invalid token")
        if "root" in found.policies:
            return ROOT_ACL
        return await self._policies.acl(call.tenant, tuple(found.policies))


def _capabilities(acl: ACL, data: Mapping[str, Any]) -> Response:
    """Vault's sys/capabilities answer: each path's capabilities, sorted ('deny' if none)."""
    paths: list[str] = []
    raw = data.get("paths", data.get("path"))
    if isinstance(raw, str):
        paths = [p for p in raw.split(",") if p]
    elif isinstance(raw, list) and all(isinstance(p, str) for p in raw):
        paths = list(raw)
    if not paths:
        raise InvalidRequestError("paths must be supplied")
    if len(paths) > _MAX_PATHS:
        raise InvalidRequestError("too many paths")
    answer: dict[str, Any] = {
        path: sorted(acl.capabilities(path.lstrip("/"), listing=True)) for path in paths
    }
    if len(paths) == 1:
        answer["capabilities"] = answer[paths[0]]
    # Vault repeats the answer at the top level of the envelope.
    return Response(data=answer, top_level=dict(answer))
