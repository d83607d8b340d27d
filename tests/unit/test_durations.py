"""The one duration grammar (Vault's ParseDurationSecond) and its two parsers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tenantvault._durations import (
    duration_seconds,
    format_duration,
    parse_duration,
    parse_timedelta,
)
from tenantvault._exceptions import InvalidRequestError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (300, 300.0),
        (1.5, 1.5),
        ("300", 300.0),
        ("1h30m", 5400.0),
        ("1500ms", 1.5),
        ("2\u00b5s", 2e-6),
        ("2\u03bcs", 2e-6),
        (".5s", 0.5),
        ("7d", 604800.0),
        ("0", 0.0),
    ],
)
def test_the_forms_vault_accepts(value: object, seconds: float) -> None:
    assert duration_seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "soon",
        "1d2h",
        "1.5d",
        "-5s",
        "+5s",
        "1.5",
        "1h 30m",
        "\u0663s",
        True,
        None,
        [1],
        "9" * 65,
    ],
)
def test_anything_else_is_not_a_duration(value: object) -> None:
    assert duration_seconds(value) is None


def test_parse_duration_gives_whole_seconds_and_a_range() -> None:
    assert parse_duration(" 90s ", field="ttl") == 90
    assert parse_duration("1500ms", field="ttl") == 1
    assert parse_duration("30d", field="ttl") == 30 * 86400
    with pytest.raises(InvalidRequestError, match="ttl: expected a duration"):
        parse_duration(1.5, field="ttl")
    with pytest.raises(InvalidRequestError, match="ttl: expected a duration"):
        parse_duration("1d2h", field="ttl")
    with pytest.raises(InvalidRequestError, match="ttl: out of range"):
        parse_duration(-1, field="ttl")
    with pytest.raises(InvalidRequestError, match="ttl: out of range"):
        parse_duration("9" * 40, field="ttl")
    with pytest.raises(InvalidRequestError, match="ttl: out of range"):
        parse_duration(10**400, field="ttl")


def test_parse_timedelta_keeps_fractions_and_refuses_negatives() -> None:
    assert parse_timedelta("1500ms") == timedelta(seconds=1.5)
    assert parse_timedelta(-1) is None
    assert parse_timedelta(float("nan")) is None
    with pytest.raises(OverflowError):
        parse_timedelta(10**30)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59, "59s"), (60, "1m0s"), (3600, "1h0m0s"), (-90, "-1m30s")]
)
def test_format_duration_is_gos(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text
