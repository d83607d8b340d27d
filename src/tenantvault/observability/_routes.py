"""The observability endpoints, declared as routes like any engine's, so the Core
authenticates, authorizes and audits them:

- `GET sys/metrics` (Vault's): `?format=prometheus` for the text exposition, JSON (Vault's
  in-memory dump shape) otherwise. In the root namespace it needs `read` and `sudo` (the
  server view names every busy tenant); in a tenant, `read` on `sys/metrics` there, and it
  shows that tenant's series only.
- `GET sys/alerts`: the anomaly alerts, the caller's tenant's only (root: all).
- `GET sys/dashboard`: what the dashboard's overview draws, for the caller's scope.
- `GET sys/in-flight-req` (Vault's): the HTTP requests being served, by request id, this one
  included; bare JSON, as Vault answers it. Root namespace only (`read`): the paths are
  every tenant's. In a tenant the path does not exist, as in OpenBao's namespaces.
- `GET sys/host-info` (Vault's): the host's CPUs, CPU times, disks, host and memory
  (`_host_info`); root namespace only (`read`): the host is everyone's.

Tenant scoping is decided from the call's tenant incarnation, which the Core bound; a
handler names no other tenant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import generate_latest

from tenantvault._clock import format_time
from tenantvault._exceptions import InvalidRequestError, NotFoundError, UnsupportedOperationError
from tenantvault._fields import get_int, get_str
from tenantvault._request import Operation, Response
from tenantvault.engines._route import Call, Route
from tenantvault.observability._collector import tenant_registry
from tenantvault.observability._host_info import host_info

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from tenantvault.observability._observability import Observability

__all__ = ["PROMETHEUS_TEXT", "PROMETHEUS_TYPE", "ObservabilityRoutes", "json_dump"]

# The key under which a prometheus-format answer carries its text (the HTTP layer sends it
# as text/plain instead of JSON).
PROMETHEUS_TEXT: Final = "_prometheus_text"
PROMETHEUS_TYPE: Final = b"text/plain; version=0.0.4; charset=utf-8"
_METRICS_PARAMETERS = frozenset({"format"})
_ALERT_PARAMETERS = frozenset({"since"})
_NONE: frozenset[str] = frozenset()


def json_dump(registry: CollectorRegistry, now_ns: int) -> dict[str, Any]:
    """Vault's JSON shape (go-metrics' in-memory dump): Gauges, Counters, Samples."""
    gauges: list[dict[str, Any]] = []
    counters: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    for family in registry.collect():
        if family.type == "histogram":
            sums: dict[tuple[tuple[str, str], ...], float] = {}
            counts: dict[tuple[tuple[str, str], ...], float] = {}
            for sample in family.samples:
                key = tuple(sorted(sample.labels.items()))
                if sample.name.endswith("_sum"):
                    sums[key] = sample.value
                elif sample.name.endswith("_count"):
                    counts[key] = sample.value
            for key, count in counts.items():
                total = sums.get(key, 0.0)
                samples.append(
                    {
                        "Name": family.name,
                        "Count": count,
                        "Sum": total,
                        "Mean": total / count if count else 0.0,
                        "Labels": dict(key),
                    }
                )
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            entry = {"Name": sample.name, "Labels": dict(sample.labels)}
            if family.type == "counter":
                counters.append({**entry, "Count": sample.value})
            else:
                gauges.append({**entry, "Value": sample.value})
    return {
        "Timestamp": format_time(now_ns),
        "Gauges": gauges,
        "Counters": counters,
        "Samples": samples,
        "Points": [],
    }


class ObservabilityRoutes:
    """Routes for `sys/metrics`, `sys/alerts` and `sys/dashboard`."""

    def __init__(self, observability: Observability) -> None:
        self._obs = observability

    @staticmethod
    def handles(rest: str) -> bool:
        """Whether `rest` (the path after 'sys/') is one of these endpoints."""
        return rest in ("metrics", "alerts", "dashboard", "in-flight-req", "host-info")

    def route(self, op: Operation, rest: str, *, tenant: str | None) -> Route:
        if op is Operation.LIST:
            raise NotFoundError("unsupported path")
        if op is not Operation.READ:
            raise UnsupportedOperationError()
        if rest in ("in-flight-req", "host-info"):
            if tenant is not None:
                raise NotFoundError("unsupported path")
            serve = self._in_flight if rest == "in-flight-req" else self._host_info
            return Route(f"sys/{rest}", "read", serve, mount="sys", parameters=_NONE)
        handlers: Mapping[str, tuple[Callable[[Call], Any], frozenset[str]]] = {
            "metrics": (self._metrics, _METRICS_PARAMETERS),
            "alerts": (self._alerts, _ALERT_PARAMETERS),
            "dashboard": (self._dashboard, _NONE),
        }
        handler, parameters = handlers[rest]
        return Route(
            f"sys/{rest}",
            "read",
            handler,
            mount="sys",
            # The server view (root namespace) shows every busy tenant: sudo, as Vault asks of
            # its other server-wide endpoints; a tenant's view shows only itself.
            sudo=tenant is None,
            parameters=parameters,
        )

    def _registry(self, call: Call) -> CollectorRegistry:
        self._obs.flush()  # the tenant's numbers include every request buffered before this
        if not call.tenant_uid:
            return self._obs.registry
        numbers = self._obs.metrics.tenant_numbers(call.tenant)
        if numbers is not None and numbers.uid != call.tenant_uid:
            numbers = None  # an earlier incarnation's numbers are not this one's
        return tenant_registry(call.tenant, numbers)

    async def _metrics(self, call: Call) -> Response:
        output = get_str(call.data, "format", default="") or ""
        registry = self._registry(call)
        if output == "prometheus":
            text = generate_latest(registry).decode("utf-8")
            return Response(data={PROMETHEUS_TEXT: text}, raw=True)
        if output not in ("", "json"):
            raise InvalidRequestError(f'metric response format "{output}" unknown')
        return Response(data=json_dump(registry, self._obs.clock()), raw=True)

    async def _alerts(self, call: Call) -> Response:
        since = get_int(call.data, "since", default=0, minimum=0) or 0
        scope = call.tenant_uid or None
        # Root (no scope) sees every alert, each naming its tenant; a tenant only its own.
        # (The buffered requests are scored first: an alert they raise is listed.)
        found = self._obs.alerts(tenant_uid=scope, since_id=since)
        return Response(data={"alerts": [alert.as_dict() for alert in found]})

    async def _in_flight(self, call: Call) -> Response:
        report = self._obs.in_flight
        return Response(data=dict(report()) if report is not None else {}, raw=True)

    async def _host_info(self, call: Call) -> Response:
        # Off the loop: reading /proc and statvfs of every partition can block on a slow mount.
        data, warnings = await asyncio.to_thread(host_info, self._obs.clock())
        return Response(data=data, warnings=warnings or None)

    async def _dashboard(self, call: Call) -> Response:
        return Response(data=self._obs.dashboard(tenant=call.tenant if call.tenant_uid else None))
