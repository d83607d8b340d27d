"""The `sys/leases/` endpoints (lookup, renew, revoke, revoke-prefix, revoke-force, tidy).

Like `sys/wrapping`, these are the Core's own endpoints: only they hold the `LeaseManager`,
and each acts in the tenant the Core resolved for the call. The sudo rules are OpenBao's
(`PathsSpecial.Root`: `leases/lookup/*`, `leases/revoke-prefix/*`, `leases/revoke-force/*`).
OpenBao serves no `sys/renew` or `sys/revoke` aliases (it answers 404 "unsupported path"),
and neither do we; hvac and the CLI use `sys/leases/*`.
"""

from __future__ import annotations

from typing import Final

from tenantvault._durations import parse_duration
from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
    UnsupportedOperationError,
)
from tenantvault._fields import get_bool, get_str
from tenantvault._request import Operation, Response
from tenantvault.engines._route import Call, Route
from tenantvault.leases._manager import LeaseManager

__all__ = ["LeasesEngine"]

_LOOKUP: Final = frozenset({"lease_id"})
_RENEW: Final = frozenset({"lease_id", "increment"})
_REVOKE: Final = frozenset({"lease_id", "sync"})
_SYNC: Final = frozenset({"sync"})
_NONE: Final[frozenset[str]] = frozenset()
_TIDY_WARNING: Final = (
    "Tidy operation successfully started. Any information from the operation will be "
    "printed to OpenBao's server logs."
)


def _lease_id(call: Call, from_path: str) -> str:
    """The lease id: the body's `lease_id`, else the one in the URL (as Vault)."""
    lease_id = get_str(call.data, "lease_id") or from_path
    if not lease_id:
        raise InvalidRequestError("lease_id must be specified")
    return lease_id


class LeasesEngine:
    """Routes of `sys/leases/*` over the Core's lease manager."""

    def __init__(self, manager: LeaseManager) -> None:
        self._manager = manager

    @staticmethod
    def handles(rest: str) -> bool:
        """Whether a `sys/`-relative path is one of these endpoints."""
        return rest == "leases" or rest.startswith("leases/")

    def route(self, operation: Operation, rest: str) -> Route:
        """The route of `sys/<rest>`."""
        action, _, tail = rest.removeprefix("leases/").partition("/")
        write = operation in (Operation.UPDATE, Operation.CREATE)
        manager = self._manager
        if action == "lookup" and operation is Operation.LIST:
            prefix = f"{tail.rstrip('/')}/" if tail.strip("/") else ""

            async def run_list(call: Call) -> Response:
                keys = await manager.list(call.tenant, prefix)
                if not keys:
                    raise NotFoundError()
                return Response(data={"keys": keys})

            acl = f"sys/leases/lookup/{prefix}"
            return Route(acl, "list", run_list, mount="sys", sudo=True, parameters=_NONE)
        if not write:
            if action in ("lookup", "renew", "revoke", "revoke-prefix", "revoke-force", "tidy"):
                raise UnsupportedOperationError()
            raise NotFoundError("unsupported path")
        acl = f"sys/leases/{action}/{tail}" if tail else f"sys/leases/{action}"
        if action == "lookup" and tail:
            raise UnsupportedOperationError()
        if action == "lookup":

            async def run_lookup(call: Call) -> Response:
                return Response(data=await manager.lookup(call.tenant, _lease_id(call, "")))

            return Route(acl, "update", run_lookup, mount="sys", parameters=_LOOKUP)
        if action == "renew":

            async def run_renew(call: Call) -> Response:
                raw = call.data.get("increment")
                increment = 0 if raw in (None, "") else parse_duration(raw, field="increment")
                return await manager.renew(
                    call.tenant, call.tenant_uid, _lease_id(call, tail), increment
                )

            return Route(acl, "update", run_renew, mount="sys", parameters=_RENEW)
        if action == "revoke":

            async def run_revoke(call: Call) -> Response:
                lease_id = _lease_id(call, tail)
                # OpenBao's default is sync: revoke now, 204; sync=false queues it, 202.
                if get_bool(call.data, "sync", default=True):
                    await manager.revoke(call.tenant, call.tenant_uid, lease_id)
                    return Response.no_content()
                await manager.revoke_later(call.tenant, lease_id)
                return Response(status=202)

            return Route(acl, "update", run_revoke, mount="sys", parameters=_REVOKE)
        if action in ("revoke-prefix", "revoke-force") and tail:
            force = action == "revoke-force"

            async def run_prefix(call: Call) -> Response:
                await manager.revoke_prefix(call.tenant, call.tenant_uid, tail, force=force)
                return Response.no_content()

            return Route(
                acl,
                "update",
                run_prefix,
                mount="sys",
                sudo=True,
                parameters=_NONE if force else _SYNC,
            )
        if action == "tidy" and not tail:

            async def run_tidy(call: Call) -> Response:
                await manager.tidy(call.tenant)
                return Response(status=202, warnings=[_TIDY_WARNING])

            return Route(acl, "update", run_tidy, mount="sys", parameters=_NONE)
        raise NotFoundError("unsupported path")
