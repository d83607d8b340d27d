"""The audit endpoints: Vault's `sys/audit` devices and `sys/audit-hash`, plus our tenant-scoped
`sys/audit/events` queries and `sys/audit/report` compliance reports."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from tenantvault._clock import Clock, format_time
from tenantvault._exceptions import (
    InternalError,
    InvalidRequestError,
    NotFoundError,
    UnsupportedOperationError,
)
from tenantvault._fields import get_int, get_mapping, get_str
from tenantvault._paths import validate_name
from tenantvault._request import Operation, Response
from tenantvault.audit._broker import AuditBroker
from tenantvault.audit._partitions import Partition
from tenantvault.audit._query import (
    DEFAULT_PAGE,
    MAX_PAGE,
    EventQuery,
    parse_time,
    report_csv,
    run_query,
    secret_activity,
)
from tenantvault.audit._view import AuditView
from tenantvault.engines._route import Call, RootOnly, Route

__all__ = ["STORE_ROUTES", "AuditEngine"]

Handler = Callable[[Call], Awaitable[Response]]
# Device names that would shadow our own endpoints under sys/audit/.
_RESERVED = frozenset({"events", "report"})

# The parameters of each audit endpoint (`Route.parameters`): a device's (as OpenBao's
# sys/audit/<name>) and the query parameters of our own events and report.
_NONE: frozenset[str] = frozenset()
_ENABLE = frozenset({"type", "description", "options", "local"})
_SCOPE = frozenset({"tenant", "tenant_uid", "since"})
_EVENTS = _SCOPE | {
    "until",
    "path_prefix",
    "operation",
    "outcome",
    "accessor",
    "type",
    "after",
    "limit",
}
_REPORT = _SCOPE | {"format"}
_REPORT_FORMATS = ("json", "csv")
# The routes that read the audit store: the Core opens an `AuditView` for these only.
STORE_ROUTES = frozenset({"sys/audit/events", "sys/audit/report"})


class AuditEngine:
    """`sys/audit*` within one tenant or the root namespace."""

    def __init__(self, broker: AuditBroker, *, clock: Clock) -> None:
        self._broker = broker
        self._clock = clock

    def route(self, op: Operation, rest: str) -> Route:
        """`rest` is the path after 'sys/'."""
        if rest.startswith("audit-hash/"):
            # An HMAC oracle over the sinks' salts, which every tenant's entries share: root
            # only, with OpenBao's 400 (the Core answers a tenant before the name is parsed).
            return _root_only(
                rest,
                RootOnly.REFUSE,
                lambda: self._route_hash(op, rest.removeprefix("audit-hash/")),
            )
        sub = rest.removeprefix("audit").lstrip("/")
        if sub in ("events", "report"):
            if op is not Operation.READ:
                raise UnsupportedOperationError()
            handler = self._events if sub == "events" else self._report
            parameters = _EVENTS if sub == "events" else _REPORT
            return Route(f"sys/audit/{sub}", "read", handler, mount="sys", parameters=parameters)
        # Device management is the operator's alone, as in Vault (root namespace, sudo).
        return _root_only(rest, RootOnly.DENY, lambda: self._route_devices(op, sub))

    def _route_hash(self, op: Operation, sub: str) -> Route:
        name = validate_name(sub, kind="audit device name")
        if op not in (Operation.UPDATE, Operation.CREATE):
            raise UnsupportedOperationError()
        return Route(
            f"sys/audit-hash/{name}",
            "update",
            lambda call: self._hash(call, name),
            mount="sys",
            parameters=frozenset({"input"}),
        )

    def _route_devices(self, op: Operation, sub: str) -> Route:
        if not sub:
            if op not in (Operation.READ, Operation.LIST):
                raise UnsupportedOperationError()
            return Route("sys/audit", "sudo", self._list, mount="sys", parameters=_NONE)
        name = validate_name(sub.rstrip("/"), kind="audit device name")
        if name in _RESERVED:
            raise InvalidRequestError("that audit device name is reserved")
        if op in (Operation.UPDATE, Operation.CREATE):
            return Route(
                f"sys/audit/{name}",
                "sudo",
                lambda call: self._enable(call, name),
                mount="sys",
                parameters=_ENABLE,
            )
        if op is Operation.DELETE:
            return Route(
                f"sys/audit/{name}",
                "sudo",
                lambda call: self._disable(name),
                mount="sys",
                parameters=_NONE,
            )
        if op is Operation.READ:
            # Ours (Vault has no read here): the device and its chain head, the anchor that
            # `audit verify --device` checks a log against.
            return Route(
                f"sys/audit/{name}",
                "sudo",
                lambda call: self._read(name),
                mount="sys",
                parameters=_NONE,
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
        options = _kv_pairs(get_mapping(call.data, "options") or {})
        await self._broker.enable(
            name, sink_type, options, description=get_str(call.data, "description") or ""
        )
        return Response.no_content()

    async def _disable(self, name: str) -> Response:
        await self._broker.disable(name)
        return Response.no_content()

    async def _hash(self, call: Call, name: str) -> Response:
        value = get_str(call.data, "input")
        if not value:
            raise InvalidRequestError('the "input" parameter is empty')
        try:
            hashed = self._broker.hash(name, value)
        except NotFoundError:
            # OpenBao's 400 for a device that is not enabled (not a 404: nothing is routed).
            raise InvalidRequestError(f'unknown audit backend "{name}/"') from None
        return Response(data={"hash": hashed})

    async def _events(self, call: Call) -> Response:
        view = _view(call)
        now = self._clock()
        data = call.data
        accessor = get_str(data, "accessor", default="") or ""
        if accessor and not accessor.startswith("hmac-sha256:"):
            accessor = view.hash_accessor(accessor)
        partitions = await view.partitions(data)
        query = EventQuery(
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
        events, cursor = await run_query(partitions, query)
        return Response(
            data={"events": events, "next": cursor}, warnings=_retention_warnings(partitions)
        )

    async def _report(self, call: Call) -> Response:
        view = _view(call)
        output = get_str(call.data, "format", default="json") or "json"
        if output not in _REPORT_FORMATS:
            raise InvalidRequestError("invalid value for format: use json or csv")
        subject = await view.subject(call.data)
        now = self._clock()
        since = parse_time(call.data.get("since") or "30d", now_ns=now, field="since")
        activity = await secret_activity(subject.partitions, since)
        keys: list[str] = []
        tokens: list[dict[str, Any]] = []
        # Secrets and tokens are the current incarnation's: a deleted one's were destroyed.
        if subject.current:
            keys = await view.secret_keys(subject)
            tokens = [
                {
                    "accessor": view.hash_accessor(record.accessor),
                    "display_name": record.display_name,
                    "policies": sorted(record.policies),
                    "created": format_time(record.created_ns),
                }
                for record in await view.tokens(subject)
                if not record.expire_ns
            ]
        read = {key for key, stats in activity["secrets"].items() if stats["reads"]}
        report = {
            "tenant": subject.tenant,
            "tenant_uid": subject.tenant_uid,
            "since": format_time(since or 0),
            "until": format_time(now),
            "secrets": activity["secrets"],
            "denied_total": activity["denied_total"],
            "never_read": sorted(set(keys) - read),
            "tokens_without_expiry": tokens,
        }
        warnings = _retention_warnings(subject.partitions)
        if output == "csv":
            return Response(data={"csv": report_csv(report)}, warnings=warnings)
        return Response(data=report, warnings=warnings)


def _root_only(rest: str, answer: RootOnly, build: Callable[[], Route]) -> Route:
    """A root-namespace-only area: the Core refuses it in a tenant (`answer`) before the path
    is parsed; in the root namespace, `build()` parses it into the real route."""

    async def unreachable(call: Call) -> Response:
        raise InternalError()  # the Core runs the resolved route, never this placeholder

    return Route(
        f"sys/{rest}",
        "sudo",
        unreachable,
        mount="sys",
        parameters=frozenset(),  # a placeholder: the resolved route declares the real ones
        root_namespace_only=answer,
        resolve=lambda: dataclasses.replace(build(), root_namespace_only=answer),
    )


def _kv_pairs(raw: Mapping[str, Any]) -> dict[str, str]:
    """Device options as Vault takes them (`TypeKVPairs`, weakly decoded): strings as they
    are, booleans as "1" and "0", numbers as their text; nothing nested (400)."""
    options: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            options[key] = value
        elif isinstance(value, bool):
            options[key] = "1" if value else "0"
        elif isinstance(value, int | float):
            options[key] = repr(value)
        else:
            raise InvalidRequestError(f"options must map names to strings: {key!r} does not")
    return options


def _retention_warnings(partitions: Sequence[Partition]) -> list[str] | None:
    """Say so when the store keeps only its newest entries (a store in memory): an answer
    that reaches back no further than that must not read as the whole trail."""
    kept = [p.keeps_newest for p in partitions if p.keeps_newest is not None]
    if not kept:
        return None
    return [
        f"this audit store is in memory and keeps only its newest {min(kept):,} entries "
        "(of all tenants): older entries are no longer in it"
    ]


def _view(call: Call) -> AuditView:
    if call.audit is None:
        raise InternalError()
    return call.audit


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
