"""What the HTTP layer needs from observability: the text answer of `sys/metrics` in the
Prometheus format, Vault's optional unauthenticated metrics endpoint, and the wiring at
server startup (observer, services, upstream hook, webhook)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import orjson
from prometheus_client import generate_latest

from tenantvault._request import Response
from tenantvault.observability._routes import PROMETHEUS_TEXT, PROMETHEUS_TYPE, json_dump
from tenantvault.observability._webhook import AlertWebhook

if TYPE_CHECKING:
    from tenantvault._config import ServerSettings
    from tenantvault._core import Core
    from tenantvault.services import Supervisor

__all__ = ["METRICS_PATH", "prometheus_reply", "unauthenticated_reply", "wire"]

METRICS_PATH: Final = "/v1/sys/metrics"
Reply = tuple[int, list[tuple[bytes, bytes]], bytes]
_TEXT_HEADERS: Final = ((b"content-type", PROMETHEUS_TYPE), (b"cache-control", b"no-store"))


def prometheus_reply(response: Response) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
    """(headers, body) for a `sys/metrics?format=prometheus` answer; None for any other."""
    data = response.data
    if not response.raw or not data or PROMETHEUS_TEXT not in data:
        return None
    return list(_TEXT_HEADERS), str(data[PROMETHEUS_TEXT]).encode("utf-8")


def unauthenticated_reply(core: Core, method: str, path: bytes, query: bytes) -> Reply | None:
    """Vault's `unauthenticated_metrics_access`: `GET /v1/sys/metrics` without a token is
    answered here, GET only (405 otherwise), and not audited. None: not this endpoint."""
    if path != METRICS_PATH.encode():
        return None
    if method not in ("GET", "HEAD"):
        return 405, [(b"content-type", b"application/json")], b'{"errors":[]}'
    registry = core.observability.registry
    if b"format=prometheus" not in query.split(b"&"):
        body = orjson.dumps(json_dump(registry, core.clock()))
        return 200, [(b"content-type", b"application/json"), (b"cache-control", b"no-store")], body
    return 200, list(_TEXT_HEADERS), generate_latest(registry)


def wire(core: Core, settings: ServerSettings, services: Supervisor) -> None:
    """At server startup: subscribe the observer and start its flush service (unless turned
    off), read services' health, hook the upstream client, and queue alerts for the webhook
    if one is configured."""
    observability = core.observability
    observability.configure(top_tenants=settings.metrics_top_tenants)
    report: Callable[[], Mapping[str, Any]] = services.report
    observability.attach(services_health=report)
    gateway = getattr(core.backend, "gateway", None)
    client = getattr(gateway, "client", None)
    if client is not None:
        client.on_attempt = observability.hooks.upstream
        observability.hooks.circuit(lambda: str(client.breaker.state))
    if not settings.observability:
        return
    core.subscribe(observability)
    # Counts and scores the buffered requests, off the request path (see `Observability`).
    services.add("observability", observability.run)
    if settings.alert_webhook:
        webhook = AlertWebhook(settings.alert_webhook)
        observability.anomalies.listeners.append(webhook.offer)
        services.add("alert-webhook", webhook.run)
