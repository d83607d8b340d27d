"""Queries and compliance reports over partitions of the audit store (`Partition`).

A query names no tenant: it runs over the partitions it is given, and the view that gave
them decides which (a tenant's view has its own one; root's picks any).
"""

from __future__ import annotations

import asyncio
import csv
import heapq
import io
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from tenantvault._durations import duration_seconds, parse_duration
from tenantvault._exceptions import InvalidRequestError
from tenantvault.audit._partitions import Partition

__all__ = [
    "ANY_INCARNATION",
    "EventQuery",
    "parse_incarnation",
    "parse_time",
    "report_csv",
    "run_query",
    "secret_activity",
]

_NS = 1_000_000_000
MAX_PAGE = 1000
DEFAULT_PAGE = 100
_OPERATIONS = frozenset({"read", "list", "create", "update", "patch", "delete"})
_OUTCOMES = frozenset({"success", "denied", "invalid", "error"})
# ASCII digits only: str.isdigit and \d also accept '²' and '١٢', which int() refuses or reads.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Entries are stamped in nanoseconds since the epoch, stored as SQLite's int64: a bound
# outside that range can match nothing, and binding it would overflow (a 500, not a 400).
_MAX_NS = 2**63 - 1
_RANGE = "out of range: 1970-01-01 to 2262-04-11"
# A tenant's incarnation id (a uuid's hex today); `*` asks for every incarnation of a name.
_UID = re.compile(r"[A-Za-z0-9-]{1,64}\Z")
ANY_INCARNATION = "*"


def parse_time(value: Any, *, now_ns: int, field: str) -> int | None:
    """A point in time: RFC 3339, Unix seconds, or a duration meaning that long ago ('30d')."""
    if value in (None, ""):
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidRequestError(f"invalid value for {field}")
    text = str(value)
    if text.isascii() and text.isdigit():
        # More digits than any int64 nanosecond count has seconds: refuse before multiplying.
        moment_ns = int(text) * _NS if len(text.lstrip("0")) <= 19 else _MAX_NS + 1
    elif duration_seconds(text) is not None:  # the one duration grammar (_durations)
        moment_ns = now_ns - parse_duration(text, field=field) * _NS
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequestError(
                f"invalid value for {field}: use RFC 3339, Unix seconds or a duration like 30d"
            ) from None
        if moment.tzinfo is None:
            raise InvalidRequestError(f"invalid value for {field}: the time zone is missing")
        try:
            delta = moment - _EPOCH
        except OverflowError:  # year 1 with a positive offset is before datetime.min in UTC
            raise InvalidRequestError(f"invalid value for {field}: {_RANGE}") from None
        # Integer arithmetic: a float timestamp would round away the nanoseconds.
        moment_ns = (delta.days * 86400 + delta.seconds) * _NS + delta.microseconds * 1000
    if not 0 <= moment_ns <= _MAX_NS:
        raise InvalidRequestError(f"invalid value for {field}: {_RANGE}")
    return moment_ns


def parse_incarnation(value: Any) -> str | None:
    """The root-only `tenant_uid` filter: an incarnation id, `*` (every one) or None."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not (value == ANY_INCARNATION or _UID.match(value)):
        raise InvalidRequestError(
            "invalid value for tenant_uid: a tenant's incarnation id, or * for every one"
        )
    return value


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for `sys/audit/events`, within whatever partitions the query runs over."""

    since_ns: int | None = None
    until_ns: int | None = None
    path_prefix: str = ""
    operation: str = ""
    outcome: str = ""
    accessor_hmac: str = ""
    type: str = ""
    after_id: int = 0
    limit: int = DEFAULT_PAGE

    def validate(self) -> EventQuery:
        if self.operation and self.operation not in _OPERATIONS:
            raise InvalidRequestError("invalid value for operation")
        if self.outcome and self.outcome not in _OUTCOMES:
            raise InvalidRequestError(
                "invalid value for outcome: use success, denied, invalid or error"
            )
        if self.type and self.type not in ("request", "response"):
            raise InvalidRequestError("invalid value for type: use request or response")
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidRequestError(f"invalid value for limit: 1 to {MAX_PAGE}")
        if self.since_ns is not None and self.until_ns is not None:
            if self.until_ns <= self.since_ns:
                raise InvalidRequestError("invalid value for until: it must be later than since")
        return self


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _filters(query: EventQuery) -> tuple[str, list[Any]]:
    where = ["id > ?"]
    params: list[Any] = [query.after_id]
    if query.since_ns is not None:
        where.append("time_ns >= ?")
        params.append(query.since_ns)
    if query.until_ns is not None:
        where.append("time_ns < ?")
        params.append(query.until_ns)
    if query.path_prefix:
        where.append("path LIKE ? ESCAPE '\\'")
        params.append(_like_prefix(query.path_prefix))
    if query.operation:
        where.append("operation = ?")
        params.append(query.operation)
    if query.outcome:
        # The outcome is known on response entries; their request entries share the id (and
        # the partition: both entries of a request are the same tenant's).
        where.append("request_id IN (SELECT request_id FROM {events} WHERE outcome = ?)")
        params.append(query.outcome)
    if query.accessor_hmac:
        where.append("accessor = ?")
        params.append(query.accessor_hmac)
    if query.type:
        where.append("type = ?")
        params.append(query.type)
    return " AND ".join(where), params


def _page(
    partitions: Sequence[Partition], sql: str, params: list[Any], after: int, limit: int
) -> list[tuple[Any, ...]]:
    """The first `limit` rows (by id) of the partitions' merged pages, blocking.

    Row ids are global (one counter across partitions), so a page is the smallest ids of
    the partitions' own pages. Partitions are read in the order of the least id they can
    hold past `after`, and the reading stops once none left can beat the page: a page over
    thousands of tenants reads the few partitions its ids are in.
    """
    known = [p for p in partitions if p.ids is None or p.ids[1] > after]
    known.sort(key=lambda p: max(p.ids[0], after + 1) if p.ids is not None else after + 1)
    rows: list[tuple[Any, ...]] = []
    for partition in known:
        floor = max(partition.ids[0], after + 1) if partition.ids is not None else after + 1
        if len(rows) >= limit and floor > int(rows[-1][0]):
            break
        rows = heapq.nsmallest(
            limit, [*rows, *partition.read(sql, params)], key=lambda row: int(row[0])
        )
    return rows


async def run_query(
    partitions: Sequence[Partition], query: EventQuery
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of entries (oldest first) and the cursor for the next page, if any."""
    where, params = _filters(query)
    sql = f"SELECT id, entry FROM {{events}} WHERE {where} ORDER BY id LIMIT ?"  # noqa: S608 -- only fixed fragments; values are bound parameters
    params.append(query.limit + 1)
    rows = await asyncio.to_thread(_page, partitions, sql, params, query.after_id, query.limit + 1)
    events = [orjson.loads(entry) for _, entry in rows[: query.limit]]
    cursor = int(rows[query.limit - 1][0]) if len(rows) > query.limit else None
    return events, cursor


_ACTIVITY = (
    "SELECT path, operation, outcome, accessor, entry FROM {events} "
    "WHERE type = 'response' AND mount = 'secret' AND time_ns >= ?"
)


async def secret_activity(partitions: Sequence[Partition], since_ns: int | None) -> dict[str, Any]:
    """Per-secret reads, writes, denials and readers in the KV mount of one incarnation's
    partitions (one, or none if it has no entries)."""

    def read() -> list[tuple[Any, ...]]:
        return [row for p in partitions for row in p.read(_ACTIVITY, (since_ns or 0,))]

    rows = await asyncio.to_thread(read)
    secrets: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"reads": 0, "writes": 0, "denied": 0, "readers": set()}
    )
    denied_total = 0
    for path, operation, outcome, accessor, entry in rows:
        if not path.startswith(("secret/data/", "secret/metadata/", "secret/subkeys/")):
            continue
        key = path.split("/", 2)[2].rstrip("/")
        stats = secrets[key]
        if outcome == "denied":
            stats["denied"] += 1
            denied_total += 1
            continue
        if outcome != "success":
            continue
        if operation == "read" and path.startswith(("secret/data/", "secret/subkeys/")):
            stats["reads"] += 1
            display = orjson.loads(entry)["auth"].get("display_name", "")
            stats["readers"].add((accessor, display))
        elif operation in ("create", "update", "patch", "delete"):
            stats["writes"] += 1
    return {
        "secrets": {
            key: {
                "reads": s["reads"],
                "writes": s["writes"],
                "denied": s["denied"],
                "readers": [{"accessor": a, "display_name": d} for a, d in sorted(s["readers"])],
            }
            for key, s in sorted(secrets.items())
        },
        "denied_total": denied_total,
    }


def report_csv(report: dict[str, Any]) -> str:
    """The report as CSV rows: section, subject, metric, value."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "subject", "metric", "value"])
    for key, stats in report["secrets"].items():
        for metric in ("reads", "writes", "denied"):
            writer.writerow(["secret", key, metric, stats[metric]])
        for reader in stats["readers"]:
            writer.writerow(["secret", key, "reader", reader["display_name"] or reader["accessor"]])
    for key in report["never_read"]:
        writer.writerow(["never_read", key, "", ""])
    for token in report["tokens_without_expiry"]:
        writer.writerow(
            ["token_without_expiry", token["display_name"], "accessor", token["accessor"]]
        )
    writer.writerow(["summary", report["tenant"], "denied_total", report["denied_total"]])
    return out.getvalue()
