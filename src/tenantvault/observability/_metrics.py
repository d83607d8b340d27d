"""The request metrics: an observer that counts every request by operation, mount, outcome
and tenant, with the tenant label bounded to the top N tenants by traffic.

Label cardinality is the cost that grows with tenants, so it is bounded by construction:

- `tenant` is a tenant's name only for the `top_n` tenants with the most requests (`root`
  for the root namespace, `unknown` for requests refused before a tenant was known); every
  other tenant's requests are counted under `other`. The named set is recomputed at each
  scrape: a tenant that leaves it has its series folded into `other` (Prometheus sees the
  series end and `other` grow by as much), one that enters it starts from zero. So every
  exposed counter is monotonic and each request is counted exactly once in the exposition.
- `mount` takes at most `max_mounts` distinct values, then `other` (tenants name mounts).
- Each tenant's own numbers, at full detail, are kept apart for its admin's view
  (`tenant_series`), for at most `max_tenants` tenants (least recently active dropped).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from tenantvault._clock import Clock
from tenantvault._observe import RequestOutcome
from tenantvault.observability._series import History, Series, merged, outcome_of

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

EventFamily = Literal["token", "lease", "rotation", "cache", "audit", "admission"]
EventKey = tuple[EventFamily, str, str]  # (family, event, result)


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

    Each call is a dict increment on the event loop (cheap, never raises for a bad label:
    unknown event names past `MAX_EVENTS` per family count as `other`). `tenant` is the
    tenant's name (None: the root namespace). Examples::

        hooks.count("lease", "created", tenant="acme")
        hooks.count("lease", "revoked", tenant="acme", failed=True)
        hooks.count("rotation", "rotated", tenant="acme")
        hooks.count("cache", "hit")            # also "miss", "eviction"
        hooks.count("audit", "written", n=2)   # or failed=True
        hooks.queue("audit-file", writer.pending)  # a depth read at each scrape
        hooks.upstream("GET", 0.012, status=200)
    """

    __slots__ = ("_metrics",)

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

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
        self._metrics.count_event(family, event, tenant=tenant, failed=failed, n=n)

    def upstream(self, method: str, seconds: float, *, status: int | None) -> None:
        """One upstream attempt: its method, duration, and status (None: it failed)."""
        self._metrics.count_upstream(method, seconds, status=status)

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
        self.hooks = MetricsHooks(self)

    # -- the observer ----------------------------------------------------------------------

    def observe(self, outcome: RequestOutcome) -> None:
        """Count one request (called by the Core once per request, on the loop)."""
        operation = outcome.operation or "none"
        mount = self._mount_label(outcome.mount or "none")
        result = outcome_of(outcome.status)
        seconds = outcome.duration_seconds
        minute = self._clock() // _NS_PER_MINUTE
        self.history.add(minute, result, seconds)
        if outcome.refused or (outcome.tenant is None and outcome.tenant_uid):
            label = UNKNOWN_LABEL
        elif outcome.tenant is None:
            self.root.series.add(operation, mount, result, seconds)  # also its exposed series
            self.root.history.add(minute, result, seconds)
            return
        else:
            numbers = self._numbers(outcome.tenant, outcome.tenant_uid)
            numbers.series.add(operation, mount, result, seconds)
            numbers.history.add(minute, result, seconds)
            label = self._label(outcome.tenant)
            if outcome.cross_tenant:
                numbers.cross_tenant += 1
                self.cross_tenant[label] = self.cross_tenant.get(label, 0) + 1
        exposed = self.exposed.get(label)
        if exposed is None:
            exposed = self.exposed[label] = Series()
        exposed.add(operation, mount, result, seconds)

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
        top = heapq.nlargest(
            self.top_n, self._tenants.items(), key=lambda item: item[1].series.total
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
        return sorted(self._tenants.items(), key=lambda item: -item[1].series.total)

    def minute(self) -> int:
        """The current minute (the index the histories use)."""
        return self._clock() // _NS_PER_MINUTE

    # -- hooks -----------------------------------------------------------------------------

    def count_event(
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

    def count_upstream(self, method: str, seconds: float, *, status: int | None) -> None:
        result = "failure" if status is None else outcome_of(status)
        self.upstream.series.add(method.upper()[:8], "upstream", result, seconds)
