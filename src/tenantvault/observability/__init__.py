"""Observability: Prometheus metrics, anomaly alerts and the dashboard's numbers.

`Observability` (one per Core, `core.observability`) is the request observer that the server
subscribes (`--no-observability` turns it off); `core.observability.hooks` (`MetricsHooks`)
is the counters API other modules call, each call a dict increment on the event loop:

    hooks = core.observability.hooks
    hooks.count("lease", "created", tenant="acme")          # families: token, lease,
    hooks.count("rotation", "rotated", tenant="acme", failed=True)  # rotation, cache, audit
    hooks.count("cache", "hit")                             # tenant None: the root namespace
    hooks.count("admission", "tenant", tenant="acme", failed=True)  # a 429 (server/_admission)
    hooks.queue("audit-file", writer.pending)               # a depth, read at each scrape
    hooks.upstream("GET", seconds, status=200)              # set on UpstreamClient.on_attempt

They appear as `tenantvault_<family>_events_total{event,result,tenant}` (result: success or
failure; tenant bounded like every tenant label), `tenantvault_queue_depth{queue}` and
`tenantvault_upstream_*`; a tenant's admin sees its own tenant's events at `sys/metrics`.
"""

from tenantvault.observability._anomaly import Alert, AnomalyDetector, AnomalySettings
from tenantvault.observability._metrics import EventFamily, Metrics, MetricsHooks
from tenantvault.observability._observability import Observability
from tenantvault.observability._routes import PROMETHEUS_TEXT, PROMETHEUS_TYPE

__all__ = [
    "PROMETHEUS_TEXT",
    "PROMETHEUS_TYPE",
    "Alert",
    "AnomalyDetector",
    "AnomalySettings",
    "EventFamily",
    "Metrics",
    "MetricsHooks",
    "Observability",
]
