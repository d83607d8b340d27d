"""The time bounds of audit queries: every form a user may write, right to the nanosecond, and
nothing an int64 nanosecond count cannot hold (issue 8, item 9)."""

from __future__ import annotations

import pytest

from tenantvault import InvalidRequestError
from tenantvault.audit._query import parse_time

NOW = 1_796_150_807_000_000_000
LAST_NS = 2**63 - 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("00000000000000000000001", 1_000_000_000),  # leading zeros are still one second
        ("9223372036", 9_223_372_036_000_000_000),  # the last whole second before 2262-04-11
        ("1970-01-01T00:00:00Z", 0),
        ("2026-12-01T18:46:47.123456+02:00", 1_796_143_607_123_456_000),
        ("2262-04-11T23:47:16.854775Z", LAST_NS - 807),
        ("30d", NOW - 30 * 86_400 * 1_000_000_000),
        ("1h30m", NOW - 5_400 * 1_000_000_000),
    ],
)
def test_times_users_write_are_read_exactly(text: str, expected: int) -> None:
    assert parse_time(text, now_ns=NOW, field="since") == expected


@pytest.mark.parametrize(
    "value",
    ["9223372037", "2262-04-12T00:00:00Z", "1969-12-31T23:59:59Z", "99999d", 10**30, -1, 1.5],
)
def test_times_outside_int64_nanoseconds_are_refused(value: object) -> None:
    with pytest.raises(InvalidRequestError, match="invalid value for since"):
        parse_time(value, now_ns=NOW, field="since")
