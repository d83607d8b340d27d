"""The anomaly detector's memory is bounded (tokens, tenants, alerts kept), and its alerts
reach the operator's webhook: a real loopback HTTP server receives them as JSON."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from tenantvault._exceptions import ConfigurationError
from tenantvault._observe import RequestOutcome
from tenantvault.observability import AnomalyDetector, AnomalySettings
from tenantvault.observability._webhook import AlertWebhook, check_url
from tests.conftest import FakeClock


def read(
    accessor: str, target: str, *, tenant: str = "acme", address: str = "10.0.0.1"
) -> RequestOutcome:
    return RequestOutcome(
        request_id="r",
        operation="read",
        mount="secret",
        tenant_uid=f"uid-{tenant}",
        status=200,
        duration_seconds=0.001,
        denied=False,
        tenant=tenant,
        accessor=accessor,
        display_name="token-app",
        client_address=address,
        target=target,
    )


def test_tokens_and_tenants_tracked_are_capped() -> None:
    settings = AnomalySettings(max_tokens=100, max_tenants=50, max_addresses=4)
    detector = AnomalyDetector(clock=FakeClock(), settings=settings)
    for i in range(1_000):
        detector.observe(
            read(f"accessor-{i}", f"s{i}", tenant=f"t{i}", address=f"10.0.{i % 256}.1")
        )
    assert detector.tracked == (100, 50)


def _burst(detector: AnomalyDetector, clock: FakeClock) -> None:
    for _ in range(6):
        clock.advance(60)
        detector.observe(read("a1", "s0"))
    clock.advance(60)
    for i in range(12):
        detector.observe(read("a1", f"s{i}"))


def test_alerts_kept_are_capped() -> None:
    clock = FakeClock()
    detector = AnomalyDetector(clock=clock, settings=AnomalySettings(max_alerts=3))
    for _ in range(5):
        _burst(detector, clock)
    kept = list(detector.alerts())
    assert len(kept) == 3
    assert detector.counts == {"distinct_secrets": 5}
    assert [alert.id for alert in kept] == [3, 4, 5]


@pytest.mark.parametrize(
    "url", ["http://hooks.example.com/x", "ftp://127.0.0.1/", "https://", "http://10.0.0.1/"]
)
def test_the_webhook_must_be_https_or_loopback(url: str) -> None:
    with pytest.raises(ConfigurationError):
        check_url(url)
    assert check_url("https://hooks.example.com/a") == "https://hooks.example.com/a"
    assert check_url("http://127.0.0.1:9/a") == "http://127.0.0.1:9/a"


async def test_alerts_are_posted_to_the_webhook(
    webhook: tuple[str, asyncio.Queue[dict[str, Any]]],
) -> None:
    url, received = webhook
    clock = FakeClock()
    detector = AnomalyDetector(clock=clock)
    sender = AlertWebhook(url, timeout_seconds=5)
    detector.listeners.append(sender.offer)
    task = asyncio.create_task(sender.run())
    try:
        _burst(detector, clock)
        alert = await asyncio.wait_for(received.get(), timeout=10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert alert["kind"] == "distinct_secrets"
    assert alert["tenant"] == "acme"
    assert alert["numbers"]["observed"] == 10
