"""The audit endpoints: Vault's `sys/audit` devices and `sys/audit-hash`, plus our tenant-scoped
`sys/audit/events` queries and `sys/audit/report` compliance reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tenantvault._clock import Clock, format_time
from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedOperationError,
)
from tenantvault._paths import validate_name, validate_tenant_id
from tenantvault._request import Operation, Response
from tenantvault._tokens import TenantIdLookup, TokenStore
from tenantvault.audit._broker import AuditBroker
from tenantvault.audit._query import (
    ANY_INCARNATION,
    DEFAULT_PAGE,
    MAX_PAGE,
    EventQuery,
    parse_incarnation,
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
# OpenBao's answer to a namespace calling a root-only endpoint (checked against 2.7.2).
_ROOT_ONLY = "operation only available in root namespace"
_REPORT_FORMATS = ("json", "csv")


class AuditEngine:
    """`sys/audit*` within one tenant or the root namespace."""

    def __init__(
        self,
        broker: AuditBroker,
        *,
        tokens: TokenStore,
        backend: Backend,
        clock: Clock,
        tenant_uid: TenantIdLookup,
    ) -> None:
        self._broker = broker
        self._tokens = tokens
        self._backend = backend
        self._clock = clock
        self._tenant_uid = tenant_uid

    def route(self, op: Operation, rest: str, *, tenant: str | None) -> Route:
        """`rest` is the path after 'sys/'."""
        if rest.startswith("audit-hash/"):
            # An HMAC oracle over the sinks' salts, which every tenant's entries share: root only.
            if tenant is not None:
                raise InvalidRequestError(_ROOT_ONLY)
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
        if op is Operation.READ:
            # Ours (Vault has no read here): the device and its chain head, the anchor that
            # `audit verify --device` checks a log against.
            return Route(
                f"sys/audit/{name}",
                "sudo",
                lambda call: self._read(name),
                mount="sys",
            )
        raise UnsupportedOperationError()

    async def _read(self, name: str) -> Response:
        return Response(data=self._broker.head(name))

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

    async def _scope(self, call: Call) -> tuple[str | None, str | None]:
        """The tenant and incarnation whose entries the caller may see (None: any).

        In a tenant: its own current incarnation, whatever it asks for. In the root namespace:
        everything, or `tenant` (its current incarnation) and/or `tenant_uid` (one incarnation,
        also of a deleted tenant; `*` every incarnation of `tenant`, and entries from before
        incarnation ids).
        """
        if call.tenant != SYSTEM_TENANT:
            record = call.principal.record
            # The token's uid was checked against the tenant's current one when it logged in.
            if record is not None and record.tenant == call.tenant:
                return call.tenant, record.tenant_uid
            uid = await self._tenant_uid(call.tenant)
            if uid is None:
                raise NotFoundError("namespace not found")
            return call.tenant, uid
        tenant = get_str(call.data, "tenant") or None
        if tenant is not None:
            validate_tenant_id(tenant)
        requested = parse_incarnation(call.data.get("tenant_uid"))
        if requested == ANY_INCARNATION:
            if tenant is None:
                raise InvalidRequestError("tenant_uid=* needs a tenant")
            return tenant, None
        if requested is not None or tenant is None:
            return tenant, requested
        uid = await self._tenant_uid(tenant)
        if uid is None:
            raise NotFoundError(
                f"no tenant {tenant!r} exists now; pass tenant_uid to audit a deleted one"
            )
        return tenant, uid

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
        tenant, tenant_uid = await self._scope(call)
        query = EventQuery(
            tenant=tenant,
            tenant_uid=tenant_uid,
            since_ns=parse_time(data.get("since"), now_ns=now, field="since"),
            until_ns=parse_time(data.get("until"), now_ns=now, field="until"),
            path_prefix=get_str(data, "path_prefix", default="") or "",
            operation=get_str(data, "operation", default="") or "",
            outcome=get_str(data, "outcome", default="") or "",
            accessor_hmac=accessor,
            type=get_str(data, "type", default="") or "",
            after_id=_number(data, "after", default=0, minimum=0),
            limit=_number(data, "limit", default=DEFAULT_PAGE, minimum=1, maximum=MAX_PAGE),
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
        output = get_str(call.data, "format", default="json") or "json"
        if output not in _REPORT_FORMATS:
            raise InvalidRequestError("invalid value for format: use json or csv")
        tenant, tenant_uid = await self._scope(call)
        if tenant is None:
            raise InvalidRequestError("tenant is required in the root namespace")
        if tenant_uid is None:
            raise InvalidRequestError("a report covers one incarnation: tenant_uid cannot be *")
        now = self._clock()
        since = parse_time(call.data.get("since") or "30d", now_ns=now, field="since")
        activity = await secret_activity(self._store(), tenant, tenant_uid, since)
        keys: list[str] = []
        tokens: list[dict[str, Any]] = []
        # Secrets and tokens are the current incarnation's: a deleted one's were destroyed.
        if tenant_uid == await self._tenant_uid(tenant):
            keys = await self._kv_keys(tenant)
            redactor = self._store().redactor
            tokens = [
                {
                    "accessor": redactor.hash(record.accessor),
                    "display_name": record.display_name,
                    "policies": sorted(record.policies),
                    "created": format_time(record.created_ns),
                }
                for record in await self._tokens.tenant_tokens(tenant, tenant_uid)
                if not record.expire_ns
            ]
        read = {key for key, stats in activity["secrets"].items() if stats["reads"]}
        report = {
            "tenant": tenant,
            "tenant_uid": tenant_uid,
            "since": format_time(since or 0),
            "until": format_time(now),
            "secrets": activity["secrets"],
            "denied_total": activity["denied_total"],
            "never_read": sorted(set(keys) - read),
            "tokens_without_expiry": tokens,
        }
        if output == "csv":
            return Response(data={"csv": report_csv(report)})
        return Response(data=report)


def _number(
    data: Mapping[str, Any], name: str, *, default: int, minimum: int, maximum: int | None = None
) -> int:
    """A whole-number query parameter within [minimum, maximum]; 400 otherwise."""
    # get_int refuses non-integers and anything beyond 2**53; the range is judged here so
    # that the message can say what the range is.
    value = get_int(data, name, default=default, minimum=-(2**53))
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise InvalidRequestError(f"invalid value for {name}: {bound}")
    return value
