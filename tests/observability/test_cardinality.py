"""The server view's label cardinality stays bounded with 1,000 tenants: only the top N by
traffic are named, everything else is `other`, and no request goes uncounted."""

from __future__ import annotations

from prometheus_client import generate_latest

from tenantvault._observe import RequestOutcome
from tenantvault.observability import Observability
from tests.conftest import FakeClock
from tests.server.test_metrics import parse, value

TENANTS = 1_000
TOP = 10


def outcome(tenant: str, *, status: int = 200, mount: str = "secret") -> RequestOutcome:
    return RequestOutcome(
        request_id="r",
        operation="read",
        mount=mount,
        tenant_uid=f"uid-{tenant}",
        status=status,
        duration_seconds=0.001,
        denied=status == 403,
        tenant=tenant,
    )


def test_a_thousand_tenants_give_at_most_top_n_tenant_labels() -> None:
    observability = Observability(clock=FakeClock(), top_tenants=TOP)
    # One request each, except the TOP busiest (t990...t999), which make more.
    busiest = {f"t{i}" for i in range(TENANTS - TOP, TENANTS)}
    sent = 0
    for i in range(TENANTS):
        for _ in range(20 + i if f"t{i}" in busiest else 1):
            observability.observe(outcome(f"t{i}"))
            sent += 1
    first = parse(generate_latest(observability.registry).decode())
    # The first TOP tenants seen were named at once (there was room); the scrape moved the
    # names to the busiest TOP, folding the others into `other`: every request is counted
    # exactly once.
    counted = sum(v for (name, _), v in first.items() if name == "tenantvault_requests_total")
    assert counted == sent
    assert observability.metrics.named == busiest
    # From now on the busiest have their own series; 5 more requests each show exactly.
    for name in busiest:
        for _ in range(5):
            observability.observe(outcome(name))
    for _ in range(3):
        observability.observe(outcome("t0"))
    second = parse(generate_latest(observability.registry).decode())
    labels = {dict(labels).get("tenant") for _, labels in second} - {None}
    assert labels <= busiest | {"other", "unknown", "root"}
    assert len(labels) <= TOP + 3
    for name in busiest:
        assert (
            value(
                second,
                "tenantvault_requests_total",
                operation="read",
                mount="secret",
                outcome="success",
                tenant=name,
            )
            == 5
        )
    other = {"operation": "read", "mount": "secret", "outcome": "success", "tenant": "other"}
    rose = value(second, "tenantvault_requests_total", **other) - value(
        first, "tenantvault_requests_total", **other
    )
    assert rose == 3  # `other` only grows: counters stay monotonic
    # Samples grow with the named tenants, not with the 1,000.
    assert len(second) < 1_000


def test_mount_labels_are_bounded_too() -> None:
    """Tenants name their mounts: past 32 distinct mount labels, `other`."""
    observability = Observability(clock=FakeClock(), top_tenants=TOP)
    for i in range(100):
        observability.observe(outcome("acme", mount=f"kv-{i}"))
    samples = parse(generate_latest(observability.registry).decode())
    mounts = {dict(labels).get("mount") for name, labels in samples if "mount" in dict(labels)}
    assert len(mounts) == 33  # 32 named + other
    assert "other" in mounts


def test_a_tenant_view_has_its_full_numbers_even_when_not_named() -> None:
    """A tenant outside the top N is `other` in the server view, but its admin's view holds
    its own series exactly (and nothing of anyone else)."""
    observability = Observability(clock=FakeClock(), top_tenants=1)
    for _ in range(10):
        observability.observe(outcome("busy"))
    for _ in range(4):
        observability.observe(outcome("quiet"))
    list(observability.collector.collect())  # a scrape: `busy` stays named, `quiet` is other
    numbers = observability.metrics.tenant_numbers("quiet")
    assert numbers is not None
    assert numbers.series.total == 4
    assert observability.metrics.named == {"busy"}
