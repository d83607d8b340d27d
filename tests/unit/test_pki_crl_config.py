"""`config/crl`'s model: Go's duration grammar and texts, defaults, and OpenBao's checks of a
write (the HTTP side is in tests/server/test_pki_crl.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantvault._exceptions import InvalidRequestError
from tenantvault.engines.pki._crl_config import CrlConfig, go_duration, updated


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("", 0.0),
        ("0", 0.0),
        ("3600", 3600.0),
        ("-5", -5.0),
        ("72h", 259200.0),
        ("1h30m", 5400.0),
        ("-5s", -5.0),
        ("+5s", 5.0),
        (".5h", 1800.0),
        ("7d", 604800.0),
        ("1500ms", 1.5),
    ],
)
def test_go_duration_accepts_what_go_accepts(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("bogus", 'time: invalid duration "bogus"'),
        ("-", 'time: invalid duration "-"'),
        ("5x", 'time: unknown unit "x" in duration "5x"'),
        ("1h5", 'time: missing unit in duration "1h5"'),
        ("xd", 'strconv.ParseInt: parsing "x": invalid syntax'),
        ("1d2h", 'time: unknown unit "d" in duration "1d2h"'),
    ],
)
def test_go_duration_refuses_with_gos_texts(text: str, error: str) -> None:
    with pytest.raises(ValueError, match="^" + error.replace("(", r"\(") + "$"):
        go_duration(text)


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=59))
def test_go_duration_composes_hours_and_minutes(hours: int, minutes: int) -> None:
    assert go_duration(f"{hours}h{minutes}m") == hours * 3600 + minutes * 60
    assert go_duration(f"-{hours}h{minutes}m") == -(hours * 3600 + minutes * 60)


def test_defaults_and_read_back() -> None:
    """The defaults are OpenBao's; a write keeps the durations as written."""
    assert CrlConfig().data() == {
        "allow_expired_cert_revocation": False,
        "auto_rebuild": False,
        "auto_rebuild_grace_period": "12h",
        "delta_rebuild_interval": "15m",
        "disable": False,
        "enable_delta": False,
        "expiry": "72h",
        "ocsp_disable": False,
        "ocsp_expiry": "12h",
    }
    new = updated(CrlConfig(), {"expiry": 5400, "ocsp_expiry": "30m", "disable": "t"})
    assert (new.expiry, new.ocsp_expiry, new.disable) == ("5400", "30m", True)
    assert new.expiry_seconds == 5400
    assert updated(new, {"disable": 0}).disable is False


def test_checks_apply_to_the_merged_settings() -> None:
    """A write is checked with the values already stored: delta CRLs need auto-rebuild, so
    they can be switched on in a later write once it is on, and not before."""
    with pytest.raises(InvalidRequestError, match="Delta CRLs cannot be enabled"):
        updated(CrlConfig(), {"enable_delta": True})
    rebuilding = updated(CrlConfig(), {"auto_rebuild": True})
    assert updated(rebuilding, {"enable_delta": True}).enable_delta
    with pytest.raises(InvalidRequestError, match=r"grace period \(12h\) .* expiry \(12h\)"):
        updated(rebuilding, {"expiry": "12h"})
