"""Renders the numbers as Prometheus metric families (`prometheus_client` does the format).

Two views: the server's (`ServerCollector`: every exposed tenant label, audit, services,
upstream, alerts; process metrics come from prometheus_client's own collectors) and one
tenant's (`TenantCollector`: only that tenant's series, at full detail). Each `Core` has its
own registry, never prometheus_client's global default one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tenantvault.observability._metrics import EventKey, Metrics, TenantNumbers
from tenantvault.observability._series import Series

__all__ = ["PREFIX", "ServerCollector", "TenantCollector", "server_registry", "tenant_registry"]

PREFIX = "tenantvault"
HealthReport = Callable[[], Mapping[str, Any]]


def _request_families(series: Mapping[str, Series]) -> Iterator[Metric]:
    """Requests, denials and latency by (operation, mount, outcome/-, tenant)."""
    requests = CounterMetricFamily(
        f"{PREFIX}_requests",
        "Requests served, by operation, mount, outcome and tenant.",
        labels=["operation", "mount", "outcome", "tenant"],
    )
    denials = CounterMetricFamily(
        f"{PREFIX}_authorization_denials",
        "Requests refused by policy or for a bad token (403), by tenant.",
        labels=["tenant"],
    )
    latency = HistogramMetricFamily(
        f"{PREFIX}_request_duration_seconds",
        "Time from the Core taking a request to its audited answer.",
        labels=["operation", "mount", "tenant"],
    )
    for tenant, one in sorted(series.items()):
        for (operation, mount, outcome), count in sorted(one.requests.items()):
            requests.add_metric([operation, mount, outcome, tenant], count)
        denials.add_metric([tenant], one.denied)
        for (operation, mount), histogram in sorted(one.latency.items()):
            latency.add_metric(
                [operation, mount, tenant], histogram.cumulative(), sum_value=histogram.total
            )
    yield requests
    yield denials
    yield latency


def _cross_tenant_family(counts: Mapping[str, int]) -> Metric:
    family = CounterMetricFamily(
        f"{PREFIX}_cross_tenant_attempts",
        "Requests by a tenant's token naming another namespace (refused), by the token's tenant.",
        labels=["tenant"],
    )
    for tenant, count in sorted(counts.items()):
        family.add_metric([tenant], count)
    return family


def _event_families(events: Iterable[tuple[EventKey, str, int]]) -> Iterator[Metric]:
    """The hook counters: tokens, leases, rotations, the cache."""
    families = {
        "token": CounterMetricFamily(
            f"{PREFIX}_token_events",
            "Token events (created, revoked, ...).",
            labels=["event", "result", "tenant"],
        ),
        "lease": CounterMetricFamily(
            f"{PREFIX}_lease_events",
            "Lease events (created, renewed, revoked, ...).",
            labels=["event", "result", "tenant"],
        ),
        "rotation": CounterMetricFamily(
            f"{PREFIX}_rotation_events",
            "Secret rotation events (rotated, ...).",
            labels=["event", "result", "tenant"],
        ),
        "cache": CounterMetricFamily(
            f"{PREFIX}_cache_events",
            "Read cache events: hit, miss, eviction, stale (served on a backend outage).",
            labels=["event", "result", "tenant"],
        ),
        "audit": CounterMetricFamily(
            f"{PREFIX}_audit_events",
            "Audit entries written or failed, as the audit devices report them.",
            labels=["event", "result", "tenant"],
        ),
        "admission": CounterMetricFamily(
            f"{PREFIX}_admission_events",
            "Requests refused 429 past an in-flight bound (event: tenant, server, shared).",
            labels=["event", "result", "tenant"],
        ),
    }
    for (family, event, result), tenant, count in sorted(events):
        families[family].add_metric([event, result, tenant], count)
    yield from families.values()


class TenantCollector(Collector):
    """One tenant's own series: what its admin may read."""

    def __init__(self, label: str, numbers: TenantNumbers | None) -> None:
        self._label = label
        self._numbers = numbers

    def collect(self) -> Iterator[Metric]:
        numbers = self._numbers
        series = {self._label: numbers.series} if numbers is not None else {}
        yield from _request_families(series)
        events = numbers.events.items() if numbers is not None else ()
        yield from _event_families((key, self._label, count) for key, count in events)
        yield _cross_tenant_family(
            {self._label: numbers.cross_tenant} if numbers is not None else {}
        )


class ServerCollector(Collector):
    """The whole server: bounded tenant labels, audit, services, upstream, alerts."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        audit_health: HealthReport | None = None,
        services_health: HealthReport | None = None,
        alert_counts: Callable[[], Mapping[str, int]] | None = None,
        flush: Callable[[], None] | None = None,
    ) -> None:
        self._metrics = metrics
        self.audit_health = audit_health
        self.services_health = services_health
        self._alert_counts = alert_counts
        self._flush = flush

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        if self._flush is not None:
            self._flush()  # count what is buffered: a scrape sees every request before it
        metrics.rebalance()
        yield from _request_families(metrics.exposed)
        yield from _event_families(
            ((family, event, result), tenant, count)
            for (family, event, result, tenant), count in metrics.exposed_events.items()
        )
        yield _cross_tenant_family(metrics.cross_tenant)
        tracked = GaugeMetricFamily(
            f"{PREFIX}_tenants_tracked", "Tenants whose requests are counted individually."
        )
        tracked.add_metric([], len(metrics.tenants()))
        yield tracked
        yield from self._upstream()
        queues = GaugeMetricFamily(
            f"{PREFIX}_queue_depth",
            "Items waiting in a queue (audit writers, ...).",
            labels=["queue"],
        )
        for name, depth in sorted(metrics.queues.items()):
            queues.add_metric([name], float(depth()))
        yield queues
        yield from self._audit()
        yield from self._services()
        if self._alert_counts is not None:
            alerts = CounterMetricFamily(
                f"{PREFIX}_anomaly_alerts", "Anomaly alerts raised, by kind.", labels=["kind"]
            )
            for kind, count in sorted(self._alert_counts().items()):
                alerts.add_metric([kind], count)
            yield alerts

    def _upstream(self) -> Iterator[Metric]:
        upstream = self._metrics.upstream
        calls = CounterMetricFamily(
            f"{PREFIX}_upstream_requests",
            "Calls to the upstream Vault/OpenBao, by method and outcome.",
            labels=["method", "outcome"],
        )
        latency = HistogramMetricFamily(
            f"{PREFIX}_upstream_duration_seconds",
            "Upstream call latency (retries included), by method.",
            labels=["method"],
        )
        for (method, _, outcome), count in sorted(upstream.series.requests.items()):
            calls.add_metric([method, outcome], count)
        for (method, _), histogram in sorted(upstream.series.latency.items()):
            latency.add_metric([method], histogram.cumulative(), sum_value=histogram.total)
        yield calls
        yield latency
        if upstream.circuit is not None:
            state = upstream.circuit()
            circuit = GaugeMetricFamily(
                f"{PREFIX}_upstream_circuit_state",
                "The upstream circuit breaker: 1 for its current state.",
                labels=["state"],
            )
            for name in ("closed", "open", "half-open"):
                circuit.add_metric([name], 1.0 if state == name else 0.0)
            yield circuit

    def _audit(self) -> Iterator[Metric]:
        if self.audit_health is None:
            return
        health = self.audit_health()
        enabled = GaugeMetricFamily(
            f"{PREFIX}_audit_enabled", "Whether any audit device is enabled (1) or not (0)."
        )
        enabled.add_metric([], 1.0 if health.get("enabled") else 0.0)
        failing = GaugeMetricFamily(
            f"{PREFIX}_audit_failing_sinks", "Audit devices failing to record right now."
        )
        failing.add_metric([], float(len(health.get("failing_sinks") or ())))
        failures = CounterMetricFamily(
            f"{PREFIX}_audit_failures",
            "Entries no audit device could record, by phase (the client got 500).",
            labels=["phase"],
        )
        failures.add_metric(["response"], float(health.get("response_failures") or 0))
        failures.add_metric(["refusal"], float(health.get("refusal_failures") or 0))
        intact = GaugeMetricFamily(
            f"{PREFIX}_audit_chain_intact", "1 while no gap in an audit hash chain is known."
        )
        intact.add_metric([], 1.0 if health.get("chain_intact", True) else 0.0)
        yield from (enabled, failing, failures, intact)

    def _services(self) -> Iterator[Metric]:
        if self.services_health is None:
            return
        restarts = CounterMetricFamily(
            f"{PREFIX}_service_restarts",
            "Restarts of each supervised background service.",
            labels=["service"],
        )
        running = GaugeMetricFamily(
            f"{PREFIX}_service_running", "1 while the service runs.", labels=["service"]
        )
        for name, report in sorted(self.services_health().items()):
            restarts.add_metric([name], float(report.get("restarts") or 0))
            running.add_metric([name], 1.0 if report.get("state") == "running" else 0.0)
        yield restarts
        yield running


def server_registry(collector: ServerCollector) -> CollectorRegistry:
    """The Core's own registry: the server collector plus process, platform and GC metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def tenant_registry(label: str, numbers: TenantNumbers | None) -> CollectorRegistry:
    """A registry holding one tenant's series only (built per request: it is cheap)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TenantCollector(label, numbers))
    return registry
