"""Vault's table conventions, reproduced by the CLI's formatting helpers."""

from __future__ import annotations

import pytest

from tenantvault.cli._args import UsageError, normalize_bool_flags
from tenantvault.cli._output import go_value, human_duration, table, title
from tenantvault.cli._text import Redactor, printable


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (3630, "1h30s"),
        (2764800, "768h"),
        (3661, "1h1m1s"),
    ],
)
def test_human_duration_matches_vault(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_titles_are_centred_like_vault() -> None:
    assert title("Metadata", len("custom_metadata") + 4 + 5) == "======= Metadata ======="
    assert title("Data", 3 + 4 + 5) == "=== Data ==="
    assert title("Secret Path", len("secret/data/creds")) == "== Secret Path =="
    assert title("Long title", 1) == "== Long title =="


def test_go_values() -> None:
    assert go_value(None) == "<nil>"
    assert go_value(True) == "true"
    assert go_value(["a", "b"]) == "[a b]"
    assert go_value({"b": 1, "a": None}) == "map[a:<nil> b:1]"
    assert go_value(3.0) == "3"


def test_table_columns() -> None:
    assert table([("a", 1), ("longer", "")]) == [
        "Key       Value",
        "---       -----",
        "a         1",
        "longer    n/a",
    ]


def test_bool_flags_accept_vault_spellings() -> None:
    assert normalize_bool_flags(["-orphan", "-renewable=false", "--cas-required=T"]) == [
        "-orphan",
        "--no-renewable",
        "--cas-required",
    ]
    assert normalize_bool_flags(["--", "-orphan=false"]) == ["--", "-orphan=false"]
    assert normalize_bool_flags(["k=-orphan=false"]) == ["k=-orphan=false"]
    with pytest.raises(UsageError):
        normalize_bool_flags(["-self=perhaps"])


def test_redactor_and_printable() -> None:
    redact = Redactor()
    redact.add("hunter2", "ab", None)
    assert redact("x hunter2 ab") == "x <redacted> ab"
    assert printable("a\x1b[0m\tb\n\u200b") == "a\\x1b[0m\tb\n\\u200b"
