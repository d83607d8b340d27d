"""Lease TTLs as Vault's CalculateTTL computes them: mount and role maxima, renewals."""

from __future__ import annotations

import pytest

from tenantvault._exceptions import InvalidRequestError
from tenantvault.leases import SYSTEM_LEASE_TTL_SECONDS, calculate_ttl

NS = 1_000_000_000
MOUNT = {"default_lease_ttl": 0, "max_lease_ttl": 0}


def test_a_new_lease_takes_the_role_ttl_else_the_mount_default_else_the_system() -> None:
    assert calculate_ttl(MOUNT).ttl_seconds == SYSTEM_LEASE_TTL_SECONDS
    tuned = {"default_lease_ttl": 600, "max_lease_ttl": 3600}
    assert calculate_ttl(tuned).ttl_seconds == 600
    assert calculate_ttl(tuned, backend_ttl_seconds=60).ttl_seconds == 60


def test_the_lower_of_mount_and_role_maximum_caps_with_vaults_warning() -> None:
    ttl = calculate_ttl({"max_lease_ttl": 60}, backend_ttl_seconds=3600)
    assert ttl.ttl_seconds == 60
    assert ttl.warnings == (
        'TTL of "1h" exceeded the effective max_ttl of "1m"; TTL value is capped accordingly',
    )
    assert (
        calculate_ttl(MOUNT, backend_ttl_seconds=90, backend_max_ttl_seconds=30).ttl_seconds == 30
    )


def test_a_renewal_stays_within_issue_time_plus_max() -> None:
    issued = 1_000 * NS
    ttl = calculate_ttl(
        MOUNT,
        increment_seconds=99_999,
        backend_max_ttl_seconds=7200,
        issued_ns=issued,
        now_ns=issued + 7 * NS,
    )
    assert ttl.ttl_seconds == 7193
    assert "1h59m53s" in ttl.warnings[0]
    with pytest.raises(InvalidRequestError, match="past the max TTL, cannot renew"):
        calculate_ttl(MOUNT, backend_max_ttl_seconds=10, issued_ns=issued, now_ns=issued + 11 * NS)


@pytest.mark.parametrize(
    ("issued_ns", "now_ns", "left"),
    [
        (1_000 * NS + NS // 10, 1_000 * NS + NS * 9 // 10, 7200),  # the same second
        (1_000 * NS + NS * 9 // 10, 1_001 * NS + NS // 10, 7199),  # 0.2 s, across a second
        (1_000 * NS, 1_000 * NS + NS * 99 // 100, 7200),  # 0.99 s, within one second
    ],
)
def test_a_renewal_counts_whole_seconds_as_openbao_does(
    issued_ns: int, now_ns: int, left: int
) -> None:
    """OpenBao truncates both the issue time and now to the second before it subtracts."""
    ttl = calculate_ttl(
        MOUNT,
        increment_seconds=99_999,
        backend_max_ttl_seconds=7200,
        issued_ns=issued_ns,
        now_ns=now_ns,
    )
    assert ttl.ttl_seconds == left
