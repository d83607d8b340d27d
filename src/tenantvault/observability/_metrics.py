"""The request metrics: counts every request by operation, mount, outcome and tenant, with
the tenant label bounded to the top N tenants by traffic.

Counting is done in batches, off the request path: `Observability` buffers request
outcomes and hands them to `record` (`observe` is the one-request form), and the hooks only
add to a pending dict that `fold_events` folds in. Whoever reads the numbers flushes first
(`Observability.flush`), so a scrape sees every request and event made before it.

Label cardinality is the cost that grows with tenants, so it is bounded by construction:

- `tenant` is a tenant's name only for the `top_n` tenants with the most requests (`root`
  for the root namespace, `unknown` for requests refused before a tenant was known); every
  other tenant's requests are counted under `other`. The named set is recomputed at each
  scrape: a tenant that leaves it has its series folded into `other` (Prometheus sees the
  series end and `other` grow by as much), one that enters it starts from zero. So every
  exposed counter is monotonic and each request is counted exactly once in the exposition.
- `mount` takes at most `max_mounts` distinct values, then `other` (tenants name mounts).
- Each tenant's own numbers, at full detail, are kept apart for its admin's view
  (`tenant_series`), for at most `max_tenants` tenants (least recently active dropped,
  recency counted by batch).
- Ties in traffic are broken the same way whatever the batches were: a named tenant keeps
  its name (no label churn between equally busy tenants), then by name.
"""

from __future__ import annotations

import heapq
import operator
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from tenantvault._clock import Clock
from tenantvault._observe import RequestOutcome
from tenantvault.observability._series import Histogram, History, Series, merged, outcome_of

__all__ = [
    "DEFAULT_MAX_TENANTS",
    "DEFAULT_TOP_TENANTS",
    "EventFamily",
    "Metrics",
    "MetricsHooks",
    "TenantNumbers",
]

DEFAULT_TOP_TENANTS: Final = 20
DEFAULT_MAX_TENANTS: Final = 10_000
DEFAULT_MAX_MOUNTS: Final = 32
# Distinct `event` values per hook family; beyond it, `other` (callers pass constants).
MAX_EVENTS: Final = 32
ROOT_LABEL: Final = "root"  # Vault's `namespace` label for the root namespace
UNKNOWN_LABEL: Final = "unknown"
OTHER_LABEL: Final = "other"
_NS_PER_MINUTE: Final = 60_000_000_000
# Distinct pending hook keys (family, event, tenant, failed) or upstream calls held between
# two folds; past it the hook folds them at once (memory stays bounded if nobody flushes).
MAX_PENDING_EVENTS: Final = 4096

EventFamily = Literal["token", "lease", "rotation", "cache", "audit", "admission"]
EventKey = tuple[EventFamily, str, str]  # (family, event, result)
# A hook count not folded yet: (family, event, tenant name or None, failed).
PendingKey = tuple[EventFamily, str, str | None, bool]
# What tells requests apart in the counters: requests alike in these, in the same minute,
# are counted as one group. Fetched by name: reordering the tuple cannot break it.
_LABELS: Final = operator.itemgetter(
    *map(
        RequestOutcome._fields.index,
        ("tenant", "tenant_uid", "operation", "mount", "status", "refused", "cross_tenant"),
    )
)
_Group = tuple[int, tuple[str | None, str, str, str, int, bool, bool]]


@dataclass(slots=True)
class TenantNumbers:
    """One tenant's own numbers: its requests, its hook events and its history."""

    uid: str
    series: Series = field(default_factory=Series)
    history: History = field(default_factory=History)
    events: dict[EventKey, int] = field(default_factory=dict)
    # Its tokens' requests naming another namespace (refused).
    cross_tenant: int = 0


@dataclass(slots=True)
class UpstreamNumbers:
    """Calls to the upstream Vault/OpenBao (gateway mode), by method and result."""

    series: Series = field(default_factory=Series)
    circuit: Callable[[], str] | None = None


class MetricsHooks:
    """The counters API other modules call: tokens, leases, rotations, the cache, upstream.

    Each call adds to a pending dict on the event loop, folded into the counters before
    anyone reads them (cheap, never raises for a bad label: unknown event names past
    `MAX_EVENTS` per family count as `other`). `tenant` is the tenant's name (None: the
    root namespace). Examples::

        hooks.count("lease", "created", tenant="acme")
        hooks.count("lease", "revoked", tenant="acme", failed=True)
        hooks.count("rotation", "rotated", tenant="acme")
        hooks.count("cache", "hit")            # also "miss", "eviction"
        hooks.count("audit", "written", n=2)   # or failed=True
        hooks.queue("audit-file", writer.pending)  # a depth read at each scrape
        hooks.upstream("GET", 0.012, status=200)
    """

    __slots__ = ("_events", "_metrics", "_upstream")

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        # The same objects as the metrics' pending ones (folded and emptied in place).
        self._events = metrics.pending_events
        self._upstream = metrics.pending_upstream

    def count(
        self,
        family: EventFamily,
        event: str,
        *,
        tenant: str | None = None,
        failed: bool = False,
        n: int = 1,
    ) -> None:
        """Count `n` events of `family` (e.g. ("lease", "created")), failed or not."""
        # Called several times per request (a cache hit, two audit entries): one dict
        # update here, the labels are worked out when the pending counts are folded.
        events = self._events
        key = (family, event, tenant, failed)
        events[key] = events.get(key, 0) + n
        if len(events) > MAX_PENDING_EVENTS:
            self._metrics.fold_events()

    @property
    def pending(self) -> dict[PendingKey, int]:
        """The pending counts `count` adds to, (family, event, tenant, failed) -> n: a
        producer called on every request may add to it directly, then call `fold_if_full`."""
        return self._events

    def fold_if_full(self) -> None:
        """Fold the pending counts if they hold more than `MAX_PENDING_EVENTS` keys."""
        if len(self._events) > MAX_PENDING_EVENTS:
            self._metrics.fold_events()

    def upstream(self, method: str, seconds: float, *, status: int | None) -> None:
        """One upstream attempt: its method, duration, and status (None: it failed)."""
        self._upstream.append((method, seconds, status))
        if len(self._upstream) > MAX_PENDING_EVENTS:
            self._metrics.fold_events()

    def queue(self, name: str, depth: Callable[[], int]) -> None:
        """Report the depth of a queue (`tenantvault_queue_depth{queue=name}`), read at each
        scrape; registering a name again replaces its reader."""
        self._metrics.queues[name] = depth

    def circuit(self, state: Callable[[], str]) -> None:
        """Where the upstream circuit breaker's state ('closed', 'open', 'half-open') is read."""
        self._metrics.upstream.circuit = state


class Metrics:
    """Counts request outcomes (a `RequestObserver`) and hook events; see the module."""

    def __init__(
        self,
        *,
        clock: Clock,
        top_n: int = DEFAULT_TOP_TENANTS,
        max_tenants: int = DEFAULT_MAX_TENANTS,
        max_mounts: int = DEFAULT_MAX_MOUNTS,
    ) -> None:
        if top_n < 0 or max_tenants < 1 or max_mounts < 1:
            raise ValueError("top_n must be >= 0, max_tenants and max_mounts >= 1")
        self._clock = clock
        self.top_n = top_n
        self._max_tenants = max_tenants
        self._max_mounts = max_mounts
        self._mounts: set[str] = set()
        # Full-detail numbers per tenant name, least recently active first.
        self._tenants: OrderedDict[str, TenantNumbers] = OrderedDict()
        self.root = TenantNumbers(uid="")
        # What the global exposition shows, by `tenant` label value. The root namespace is
        # always named: its exposed series is its own (one update per request, not two).
        self.exposed: dict[str, Series] = {
            OTHER_LABEL: Series(),
            UNKNOWN_LABEL: Series(),
            ROOT_LABEL: self.root.series,
        }
        self.exposed_events: dict[tuple[EventFamily, str, str, str], int] = {}
        self.cross_tenant: dict[str, int] = {}
        self._named: set[str] = set()
        self.history = History(latency=True)
        self.upstream = UpstreamNumbers()
        self.queues: dict[str, Callable[[], int]] = {}
        self._event_names: dict[str, set[str]] = {}
        # What the hooks counted since the last fold: (family, event, tenant, failed) -> n,
        # and upstream attempts (method, seconds, status).
        self.pending_events: dict[PendingKey, int] = {}
        self.pending_upstream: list[tuple[str, float, int | None]] = []
        self.hooks = MetricsHooks(self)

    # -- requests --------------------------------------------------------------------------

    def observe(self, outcome: RequestOutcome) -> None:
        """Count one request, now (a `RequestObserver`; the server batches: `record`)."""
        self.record(((self._clock(), outcome),))

    def record(self, batch: Iterable[tuple[int, RequestOutcome]]) -> None:
        """Count a batch of requests, each with the clock reading of when it ended."""
        # Requests with the same labels in the same minute are counted as one group: a busy
        # server's batch holds a few groups, and the rest is done once per group. Alike
        # requests come in runs (a client repeating its request): within a run the work per
        # request is its labels, one comparison and one append (no group key to build and
        # hash, no division for the minute: a clock reading inside the run's minute keeps it).
        groups: dict[_Group, list[float]] = {}
        labels: tuple[object, ...] | None = None
        durations: list[float] = []
        start = end = 0  # the run's minute, [start, end) in clock readings
        for now, outcome in batch:
            found = _LABELS(outcome)
            if found != labels or not start <= now < end:
                minute = now // _NS_PER_MINUTE
                start = minute * _NS_PER_MINUTE
                end = start + _NS_PER_MINUTE
                labels = found
                key = (minute, found)
                run = groups.get(key)
                if run is None:
                    run = groups[key] = []
                durations = run
            durations.append(outcome.duration_seconds)
        for key, durations in groups.items():
            self._count(key, Histogram.of(durations))

    def _count(self, key: _Group, durations: Histogram) -> None:
        minute, (tenant, tenant_uid, operation, mount, status, refused, cross_tenant) = key
        operation = operation or "none"
        mount = self._mount_label(mount or "none")
        result = outcome_of(status)
        self.history.add(minute, result, durations)
        if refused or (tenant is None and tenant_uid):
            label = UNKNOWN_LABEL
        elif tenant is None:
            self.root.series.add(operation, mount, result, durations)  # also its exposed series
            self.root.history.add(minute, result, durations)
            return
        else:
            numbers = self._numbers(tenant, tenant_uid)
            numbers.series.add(operation, mount, result, durations)
            numbers.history.add(minute, result, durations)
            label = self._label(tenant)
            if cross_tenant:
                n = durations.count
                numbers.cross_tenant += n
                self.cross_tenant[label] = self.cross_tenant.get(label, 0) + n
        exposed = self.exposed.get(label)
        if exposed is None:
            exposed = self.exposed[label] = Series()
        exposed.add(operation, mount, result, durations)

    def _numbers(self, tenant: str, uid: str) -> TenantNumbers:
        numbers = self._tenants.get(tenant)
        if numbers is None or (uid and numbers.uid != uid):
            # New, or deleted and created again: the new incarnation starts from nothing.
            numbers = self._tenants[tenant] = TenantNumbers(uid=uid)
            if len(self._tenants) > self._max_tenants:
                dropped, _ = self._tenants.popitem(last=False)
                self._unname(dropped)
            if len(self._named) < self.top_n:
                self._name(tenant)
        else:
            self._tenants.move_to_end(tenant)
        return numbers

    def _label(self, tenant: str) -> str:
        return tenant if tenant in self._named else OTHER_LABEL

    def _mount_label(self, mount: str) -> str:
        if mount in self._mounts:
            return mount
        if len(self._mounts) < self._max_mounts:
            self._mounts.add(mount)
            return mount
        return OTHER_LABEL

    # -- the named set ---------------------------------------------------------------------

    def rebalance(self) -> None:
        """Name the top `top_n` tenants by traffic (each scrape calls this)."""
        named = self._named
        top = heapq.nlargest(
            self.top_n,
            self._tenants.items(),
            key=lambda item: (item[1].series.total, item[0] in named, item[0]),
        )
        wanted = {name for name, _ in top}
        for name in self._named - wanted:
            self._unname(name)
        for name in wanted - self._named:
            self._name(name)

    def _name(self, tenant: str) -> None:
        self._named.add(tenant)
        self.exposed[tenant] = Series()

    def _unname(self, tenant: str) -> None:
        """Fold a tenant's exposed series into `other`: its series end, `other` grows by as
        much, so every exposed counter stays monotonic and the sum over tenants is whole."""
        if tenant not in self._named:
            return
        self._named.discard(tenant)
        series = self.exposed.pop(tenant, None)
        if series is not None:
            self.exposed[OTHER_LABEL] = merged((self.exposed[OTHER_LABEL], series))
        if (crossed := self.cross_tenant.pop(tenant, 0)) != 0:
            self.cross_tenant[OTHER_LABEL] = self.cross_tenant.get(OTHER_LABEL, 0) + crossed
        for key in [key for key in self.exposed_events if key[3] == tenant]:
            folded = (*key[:3], OTHER_LABEL)
            self.exposed_events[folded] = self.exposed_events.get(
                folded, 0
            ) + self.exposed_events.pop(key)

    @property
    def named(self) -> frozenset[str]:
        """The tenants that have their own `tenant` label value now."""
        return frozenset(self._named)

    def tenant_numbers(self, tenant: str | None) -> TenantNumbers | None:
        """One tenant's own numbers (None: the root namespace's)."""
        return self.root if tenant is None else self._tenants.get(tenant)

    def tenants(self) -> list[tuple[str, TenantNumbers]]:
        """Every tracked tenant's numbers, busiest first."""
        return sorted(self._tenants.items(), key=lambda item: (-item[1].series.total, item[0]))

    def minute(self) -> int:
        """The current minute (the index the histories use)."""
        return self._clock() // _NS_PER_MINUTE

    # -- hooks -----------------------------------------------------------------------------

    def fold_events(self) -> None:
        """Fold what the hooks counted since the last fold into the counters."""
        events = self.pending_events
        if events:
            pending = list(events.items())
            events.clear()  # in place: the hooks hold this dict
            for (family, event, tenant, failed), n in pending:
                self._count_event(family, event, tenant=tenant, failed=failed, n=n)
        calls = self.pending_upstream
        if calls:
            grouped: dict[tuple[str, str], list[float]] = {}
            for method, seconds, status in calls:
                result = "failure" if status is None else outcome_of(status)
                grouped.setdefault((method.upper()[:8], result), []).append(seconds)
            calls.clear()
            for (method, result), durations in grouped.items():
                self.upstream.series.add(method, "upstream", result, Histogram.of(durations))

    def _count_event(
        self, family: EventFamily, event: str, *, tenant: str | None, failed: bool, n: int
    ) -> None:
        names = self._event_names.setdefault(family, set())
        if event not in names:
            if len(names) >= MAX_EVENTS:
                event = OTHER_LABEL
            else:
                names.add(event)
        result = "failure" if failed else "success"
        key: EventKey = (family, event, result)
        if tenant is None:
            label = ROOT_LABEL
            numbers: TenantNumbers | None = self.root
        else:
            numbers = self._tenants.get(tenant)
            label = self._label(tenant)
        if numbers is not None:
            numbers.events[key] = numbers.events.get(key, 0) + n
        exposed_key = (family, event, result, label)
        self.exposed_events[exposed_key] = self.exposed_events.get(exposed_key, 0) + n
