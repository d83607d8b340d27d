"""The audit endpoints: Vault's `sys/audit` devices and `sys/audit-hash`, plus our tenant-scoped
`sys/audit/events` queries and `sys/audit/report` compliance reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tenantvault._clock import Clock, format_time
from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedOperationError,
)
from tenantvault._paths import validate_name
from tenantvault._request import Operation, Response
from tenantvault._tokens import TokenStore
from tenantvault.audit._broker import AuditBroker
from tenantvault.audit._query import (
    DEFAULT_PAGE,
    EventQuery,
    parse_time,
    report_csv,
    run_query,
    secret_activity,
)
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.engines._common import get_int, get_mapping, get_str
from tenantvault.engines._route import Call, Route

__all__ = ["AuditEngine"]

Handler = Callable[[Call], Awaitable[Response]]
# Device names that would shadow our own endpoints under sys/audit/.
_RESERVED = frozenset({"events", "report"})


class AuditEngine:
    """`sys/audit*` within one tenant or the root namespace."""

    def __init__(
        self, broker: AuditBroker, *, tokens: TokenStore, backend: Backend, clock: Clock
    ) -> None:
        self._broker = broker
        self._tokens = tokens
        self._backend = backend
        self._clock = clock

    def route(self, op: Operation, rest: str, *, tenant: str | None) -> Route:
        """`rest` is the path after 'sys/'."""
        if rest.startswith("audit-hash/"):
            name = validate_name(rest.removeprefix("audit-hash/"), kind="audit device name")
            if op not in (Operation.UPDATE, Operation.CREATE):
                raise UnsupportedOperationError()
            return Route(
                f"sys/audit-hash/{name}", "update", lambda call: self._hash(call, name), mount="sys"
            )
        sub = rest.removeprefix("audit").lstrip("/")
        if sub in ("events", "report"):
            if op is not Operation.READ:
                raise UnsupportedOperationError()
            handler = self._events if sub == "events" else self._report
            return Route(f"sys/audit/{sub}", "read", handler, mount="sys")
        # Device management is the operator's alone, as in Vault (root namespace, sudo).
        if tenant is not None:
            raise PermissionDeniedError()
        if not sub:
            if op not in (Operation.READ, Operation.LIST):
                raise UnsupportedOperationError()
            return Route("sys/audit", "sudo", self._list, mount="sys")
        name = validate_name(sub.rstrip("/"), kind="audit device name")
        if name in _RESERVED:
            raise InvalidRequestError("that audit device name is reserved")
        if op in (Operation.UPDATE, Operation.CREATE):
            return Route(
                f"sys/audit/{name}", "sudo", lambda call: self._enable(call, name), mount="sys"
            )
        if op is Operation.DELETE:
            return Route(f"sys/audit/{name}", "sudo", lambda call: self._disable(name), mount="sys")
        raise UnsupportedOperationError()

    async def _list(self, call: Call) -> Response:
        return Response(data=self._broker.describe())

    async def _enable(self, call: Call, name: str) -> Response:
        sink_type = get_str(call.data, "type")
        if not sink_type:
            raise InvalidRequestError("type is required")
        raw = get_mapping(call.data, "options") or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
            raise InvalidRequestError("options must be an object of strings")
        await self._broker.enable(
            name, sink_type, dict(raw), description=get_str(call.data, "description") or ""
        )
        return Response.no_content()

    async def _disable(self, name: str) -> Response:
        await self._broker.disable(name)
        return Response.no_content()

    async def _hash(self, call: Call, name: str) -> Response:
        value = get_str(call.data, "input")
        if value is None:
            raise InvalidRequestError("input is required")
        return Response(data={"hash": self._broker.hash(name, value)})

    def _scope(self, call: Call) -> str | None:
        """The tenant whose entries the caller may see: its own; root namespace: any/all."""
        if call.tenant != SYSTEM_TENANT:
            return call.tenant
        requested = get_str(call.data, "tenant")
        return requested or None

    def _store(self) -> Any:
        store = self._broker.store()
        if store is None:
            raise NotFoundError("no queryable audit store is enabled")
        return store

    async def _events(self, call: Call) -> Response:
        now = self._clock()
        data = call.data
        accessor = get_str(data, "accessor", default="") or ""
        if accessor and not accessor.startswith("hmac-sha256:"):
            accessor = self._store().redactor.hash(accessor)
        query = EventQuery(
            tenant=self._scope(call),
            since_ns=parse_time(data.get("since"), now_ns=now, field="since"),
            until_ns=parse_time(data.get("until"), now_ns=now, field="until"),
            path_prefix=get_str(data, "path_prefix", default="") or "",
            operation=get_str(data, "operation", default="") or "",
            outcome=get_str(data, "outcome", default="") or "",
            accessor_hmac=accessor,
            type=get_str(data, "type", default="") or "",
            after_id=get_int(data, "after", default=0) or 0,
            limit=get_int(data, "limit", default=DEFAULT_PAGE) or DEFAULT_PAGE,
        ).validate()
        events, cursor = await run_query(self._store(), query)
        return Response(data={"events": events, "next": cursor})

    async def _kv_keys(self, tenant: str, prefix: str = "meta/") -> list[str]:
        keys: list[str] = []
        for child in await self._backend.list(tenant, "secret", prefix):
            if child.endswith("/"):
                keys.extend(await self._kv_keys(tenant, prefix + child))
            else:
                keys.append((prefix + child).removeprefix("meta/"))
        return keys

    async def _report(self, call: Call) -> Response:
        tenant = self._scope(call)
        if tenant is None:
            raise InvalidRequestError("tenant is required in the root namespace")
        now = self._clock()
        since = parse_time(call.data.get("since") or "30d", now_ns=now, field="since")
        activity = await secret_activity(self._store(), tenant, since)
        keys = await self._kv_keys(tenant)
        read = {key for key, stats in activity["secrets"].items() if stats["reads"]}
        redactor = self._store().redactor
        tokens = [
            {
                "accessor": redactor.hash(record.accessor),
                "display_name": record.display_name,
                "policies": sorted(record.policies),
                "created": format_time(record.created_ns),
            }
            for record in await self._tokens.tenant_tokens(tenant)
            if not record.expire_ns
        ]
        report = {
            "tenant": tenant,
            "since": format_time(since or 0),
            "until": format_time(now),
            "secrets": activity["secrets"],
            "denied_total": activity["denied_total"],
            "never_read": sorted(set(keys) - read),
            "tokens_without_expiry": tokens,
        }
        if (get_str(call.data, "format", default="json") or "json") == "csv":
            return Response(data={"csv": report_csv(report)})
        return Response(data=report)
