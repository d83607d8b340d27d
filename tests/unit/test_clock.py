"""Vault's RFC 3339 times: format_time and parse_time are exact inverses, to the nanosecond."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantvault._clock import format_time, parse_time


@given(st.integers(min_value=1, max_value=253_402_300_799_999_999_999))
def test_a_formatted_time_parses_back_to_the_same_nanosecond(ns: int) -> None:
    # A float timestamp was off by a few hundred nanoseconds, which made a 10-day-old secret
    # 9 days old now and then.
    assert parse_time(format_time(ns)) == ns


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00Z", 1_767_225_600_000_000_000),
        ("2026-01-01T01:00:00.5+01:00", 1_767_225_600_500_000_000),
        ("2026-01-01t00:00:00.000000001z", 1_767_225_600_000_000_001),
    ],
)
def test_offsets_and_fractions_are_honoured(text: str, expected: int) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "soon", "2026-01-01", "2026-01-01T00:00:00", "2026-01-01T00:00:00.1234567891Z"],
)
def test_anything_but_a_full_rfc3339_time_is_refused(text: str) -> None:
    assert parse_time(text) is None
