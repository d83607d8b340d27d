"""One object per Core for metrics, anomaly alerts and the dashboard's numbers.

It is a `RequestObserver` (the server subscribes it unless `--no-observability`), the owner
of the Core's own `prometheus_client` registry, and the home of `hooks`, the counters API
for tokens, leases, rotations, the cache and the upstream client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tenantvault._clock import Clock
from tenantvault._observe import RequestOutcome
from tenantvault.observability._anomaly import AnomalyDetector, AnomalySettings
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
        self.metrics = Metrics(clock=clock, top_n=top_tenants)
        self.anomalies = AnomalyDetector(clock=clock, settings=anomaly)
        self.collector = ServerCollector(self.metrics, alert_counts=lambda: self.anomalies.counts)
        self.registry = server_registry(self.collector)
        self.routes = ObservabilityRoutes(self)
        self.audit_health: HealthReport | None = None
        self.services_health: HealthReport | None = None

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
    ) -> None:
        """Where the server view reads audit sink and background service health."""
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
        """The Core's observer hook: count, then score, one request."""
        self.metrics.observe(outcome)
        self.anomalies.observe(outcome)

    def dashboard(self, *, tenant: str | None) -> dict[str, Any]:
        """The overview's numbers: the server's (tenant None) or one tenant's only."""
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
            "alerts": sum(1 for _ in self.anomalies.alerts(tenant_uid=numbers.uid))
            if numbers is not None
            else 0,
            "cross_tenant": numbers.cross_tenant if numbers is not None else 0,
        }
