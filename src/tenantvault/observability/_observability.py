"""One object per Core for metrics, anomaly alerts and the dashboard's numbers.

It is a `RequestObserver` (the server subscribes it unless `--no-observability`), the owner
of the Core's own `prometheus_client` registry, and the home of `hooks`, the counters API
for tokens, leases, rotations, the cache and the upstream client.

Off the request path: `observe` only appends (clock reading, outcome) to a bounded buffer,
and the hooks only add to a pending dict. `flush` counts and scores what is buffered, in
batches (a busy server's requests share a few label sets); it runs every `FLUSH_SECONDS`
(`run`, a service of the server), when the buffer is full, and before anything reads the
numbers (a scrape, `sys/alerts`, the dashboard), so what they show is exact and up to date.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from tenantvault._clock import Clock, system_clock
from tenantvault._observe import RequestOutcome
from tenantvault.observability._anomaly import Alert, AnomalyDetector, AnomalySettings
from tenantvault.observability._collector import ServerCollector, server_registry
from tenantvault.observability._metrics import (
    DEFAULT_TOP_TENANTS,
    ROOT_LABEL,
    Metrics,
    MetricsHooks,
)
from tenantvault.observability._routes import ObservabilityRoutes
from tenantvault.observability._series import Series, merged

__all__ = ["Observability"]

HealthReport = Callable[[], Mapping[str, Any]]
# Rows of the dashboard's tenant table (the busiest first).
TABLE_ROWS = 100
# How often the server's flush service counts and scores the buffered requests: the delay
# of an alert (and of its webhook). Counters are exact at any time: readers flush first.
FLUSH_SECONDS: Final = 0.1
# Outcomes buffered at most; the request that fills the buffer flushes it (memory stays
# bounded where no service runs, e.g. a Core used from Python without the server).
MAX_PENDING: Final = 4096


def _summary(series: Series) -> dict[str, Any]:
    latency = series.latency_total()
    return {
        "requests": series.total,
        "denied": series.denied,
        "errors": series.errors,
        "p50_seconds": latency.quantile(0.5),
        "p99_seconds": latency.quantile(0.99),
    }


class Observability:
    """Metrics + anomaly detection for one Core; see the module."""

    def __init__(
        self,
        *,
        clock: Clock,
        top_tenants: int = DEFAULT_TOP_TENANTS,
        anomaly: AnomalySettings | None = None,
    ) -> None:
        self.clock = clock
        # Read once per request: the wall clock's own C function rather than the Python
        # function that wraps it (the same readings, one Python call fewer per request).
        self._now: Clock = time.time_ns if clock is system_clock else clock
        self.metrics = Metrics(clock=clock, top_n=top_tenants)
        self.anomalies = AnomalyDetector(clock=clock, settings=anomaly)
        self.collector = ServerCollector(
            self.metrics, alert_counts=lambda: self.anomalies.counts, flush=self.flush
        )
        self.registry = server_registry(self.collector)
        # Requests observed and not counted yet: (clock reading at the end, outcome).
        self._pending: list[tuple[int, RequestOutcome]] = []
        self.routes = ObservabilityRoutes(self)
        self.audit_health: HealthReport | None = None
        self.services_health: HealthReport | None = None
        # The HTTP layer's requests in flight, by request id (`sys/in-flight-req`).
        self.in_flight: HealthReport | None = None

    def __repr__(self) -> str:
        return f"<Observability tenants={len(self.metrics.tenants())}>"

    @property
    def hooks(self) -> MetricsHooks:
        """The counters API for other modules (see `MetricsHooks`)."""
        return self.metrics.hooks

    def attach(
        self,
        *,
        audit_health: HealthReport | None = None,
        services_health: HealthReport | None = None,
        in_flight: HealthReport | None = None,
    ) -> None:
        """Where the server view reads audit sink and background service health, and
        `sys/in-flight-req` the requests in flight."""
        if in_flight is not None:
            self.in_flight = in_flight
        if audit_health is not None:
            self.audit_health = self.collector.audit_health = audit_health
        if services_health is not None:
            self.services_health = self.collector.services_health = services_health

    def configure(self, *, top_tenants: int | None = None) -> None:
        """Change the number of tenants named in the server view (takes effect at a scrape)."""
        if top_tenants is not None:
            if top_tenants < 0:
                raise ValueError("top_tenants must be >= 0")
            self.metrics.top_n = top_tenants

    def observe(self, outcome: RequestOutcome) -> None:
        """The Core's observer hook: buffer one request's outcome (see the module)."""
        pending = self._pending
        pending.append((self._now(), outcome))
        if len(pending) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        """Count, then score, every buffered request, and fold the hooks' pending counts."""
        batch = self._pending
        if batch:
            # Taken first: an outcome observed while this batch is counted (none today, it
            # all runs on the loop) would go into the next one, never twice.
            self._pending = []
            self.metrics.record(batch)
            self.anomalies.score(batch)
        self.metrics.fold_events()

    def alerts(self, *, tenant_uid: str | None = None, since_id: int = 0) -> list[Alert]:
        """The alerts (see `AnomalyDetector.alerts`), the buffered requests scored first."""
        self.flush()
        return list(self.anomalies.alerts(tenant_uid=tenant_uid, since_id=since_id))

    @property
    def pending(self) -> int:
        """Requests observed and not counted yet."""
        return len(self._pending)

    async def run(self) -> None:
        """Flush every `FLUSH_SECONDS` until cancelled (a service of the server)."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.flush()

    def dashboard(self, *, tenant: str | None) -> dict[str, Any]:
        """The overview's numbers: the server's (tenant None) or one tenant's only."""
        self.flush()
        metrics = self.metrics
        minute = metrics.minute()
        if tenant is None:
            rows = [
                {
                    "tenant": name,
                    **_summary(numbers.series),
                    "sparkline": numbers.history.sparkline(minute),
                }
                for name, numbers in metrics.tenants()[:TABLE_ROWS]
            ]
            rows.insert(
                0,
                {
                    "tenant": ROOT_LABEL,
                    **_summary(metrics.root.series),
                    "sparkline": metrics.root.history.sparkline(minute),
                },
            )
            total = merged([*(n.series for _, n in metrics.tenants()), metrics.root.series])
            return {
                "scope": "server",
                "minute": minute,
                "history": metrics.history.points(minute),
                "totals": _summary(total),
                "tenants": rows,
                "tenants_tracked": len(metrics.tenants()),
                "services": dict(self.services_health()) if self.services_health else {},
                "audit": dict(self.audit_health()) if self.audit_health else {},
                "alerts": sum(self.anomalies.counts.values()),
                "cross_tenant": sum(n.cross_tenant for _, n in metrics.tenants()),
            }
        numbers = metrics.tenant_numbers(tenant)
        own = numbers.series if numbers is not None else Series()
        history = numbers.history.points(minute) if numbers is not None else []
        audit = self.audit_health() if self.audit_health else {}
        return {
            "scope": "tenant",
            "tenant": tenant,
            "minute": minute,
            "history": history,
            "totals": _summary(own),
            "tenants": [
                {
                    "tenant": tenant,
                    **_summary(own),
                    "sparkline": [int(p["requests"] or 0) for p in history],
                }
            ],
            # The server's services and audit devices, as states only (no device names).
            "services": {
                name: {"state": report.get("state"), "restarts": report.get("restarts")}
                for name, report in (self.services_health() if self.services_health else {}).items()
            },
            "audit": {"enabled": audit.get("enabled"), "healthy": audit.get("healthy")},
            "alerts": len(self.alerts(tenant_uid=numbers.uid)) if numbers is not None else 0,
            "cross_tenant": numbers.cross_tenant if numbers is not None else 0,
        }
