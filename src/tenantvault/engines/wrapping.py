"""The `sys/wrapping/` endpoints: wrap, unwrap, lookup and rewrap (`tenantvault._wrapping`).

Like `sys/capabilities`, these are the Core's own endpoints rather than a tenant's engine:
unwrap and rewrap use up a token, which otherwise only authentication does, so they hold the
Core's `ResponseWrapping` (no other engine gets it) and act only in the tenant the Core
resolved for the call, which the handler cannot choose.
"""

from __future__ import annotations

from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
    UnsupportedOperationError,
)
from tenantvault._fields import get_str
from tenantvault._request import Operation, Response
from tenantvault._wrapping import ResponseWrapping
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.engines._route import Call, Route

__all__ = ["WrappingEngine"]

_TOKEN = frozenset({"token"})
_NONE: frozenset[str] = frozenset()


def _tenant(call: Call) -> str | None:
    """The call's tenant as tokens name it (None: the root namespace)."""
    return None if call.tenant == SYSTEM_TENANT else call.tenant


class WrappingEngine:
    """Routes of `sys/wrapping/*`. Each works on wrapping tokens of the call's own tenant."""

    def __init__(self, wrapping: ResponseWrapping) -> None:
        self._wrapping = wrapping

    @staticmethod
    def handles(rest: str) -> bool:
        """Whether a `sys/`-relative path is one of these endpoints."""
        return rest == "wrapping" or rest.startswith("wrapping/")

    def route(self, operation: Operation, rest: str, *, wrapped: bool) -> Route:
        """The route of `sys/<rest>`; `wrapped`: the request asked for response wrapping."""
        action = rest.removeprefix("wrapping/")
        write = operation in (Operation.UPDATE, Operation.CREATE)
        acl = f"sys/wrapping/{action}"
        if action == "lookup":
            if not (write or operation is Operation.READ):
                raise UnsupportedOperationError()
            # Unauthenticated in Vault: anyone holding a wrapping token may look it up.
            return Route(acl, None, self._lookup, public=True, mount="sys", parameters=_TOKEN)
        if action not in ("wrap", "unwrap", "rewrap"):
            raise NotFoundError("unsupported path")
        if not write:
            raise UnsupportedOperationError()
        if action == "wrap":
            return Route(
                acl,
                "update",
                self._wrap if wrapped else self._not_wrapped,
                mount="sys",
                parameters=None,  # free-form: the body is what gets wrapped
            )
        handler = self._unwrap if action == "unwrap" else self._rewrap
        return Route(acl, "update", handler, mount="sys", parameters=_TOKEN)

    async def _not_wrapped(self, call: Call) -> Response:
        raise InvalidRequestError("endpoint requires response wrapping to be used")

    async def _wrap(self, call: Call) -> Response:
        # The Core wraps this answer: its data is exactly the body sent.
        return Response(data=dict(call.data))

    async def _lookup(self, call: Call) -> Response:
        return await self._wrapping.lookup(
            get_str(call.data, "token"), tenant=_tenant(call), tenant_uid=call.tenant_uid
        )

    async def _unwrap(self, call: Call) -> Response:
        caller = call.tokens.own() if call.tokens is not None else None
        return await self._wrapping.unwrap(
            get_str(call.data, "token"),
            tenant=_tenant(call),
            tenant_uid=call.tenant_uid,
            caller=caller,
            caller_token=call.caller.token if call.caller is not None else None,
        )

    async def _rewrap(self, call: Call) -> Response:
        return await self._wrapping.rewrap(
            get_str(call.data, "token"), tenant=_tenant(call), tenant_uid=call.tenant_uid
        )
