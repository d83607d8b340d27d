"""Random text: uniform over its alphabet, from one CSPRNG call per string (nearly always)."""

from __future__ import annotations

import collections
import os
import string

import pytest

from tenantvault._random_text import random_text

BASE62 = string.ascii_letters + string.digits


def test_length_and_alphabet() -> None:
    for length in (0, 1, 24, 1000):
        text = random_text(BASE62, length)
        assert len(text) == length
        assert set(text) <= set(BASE62)
    assert random_text("x", 5) == "xxxxx"
    assert len({random_text(BASE62, 24) for _ in range(1000)}) == 1000


def test_bytes_that_would_bias_the_draw_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """62 characters: bytes 248-255 would favour the first eight; they are never used."""
    calls: list[int] = []

    def urandom(size: int) -> bytes:
        calls.append(size)
        return bytes([248, 255, 0, 61, 62, 247] + [1] * (size - 6))

    monkeypatch.setattr(os, "urandom", urandom)
    assert random_text(BASE62, 4) == "a9a9"  # 0, 61, 62 % 62 and 247 % 62; 248 and 255 skipped
    assert calls == [16]  # one call for the string: 2 x 4 + 8 bytes


def test_a_short_draw_is_topped_up(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([bytes([255] * 16), bytes([2] * 16)])
    monkeypatch.setattr(os, "urandom", lambda size: next(draws)[:size])
    assert random_text(BASE62, 4) == "cccc"


def test_every_character_is_about_equally_likely() -> None:
    """100,000 characters over 62: each count within 15 % of 1,613 (a biased draw that
    favoured eight characters by 1/31 would still pass; the test above pins the rejection)."""
    counts = collections.Counter(random_text(BASE62, 100_000))
    assert set(counts) == set(BASE62)
    expected = 100_000 / 62
    assert all(abs(count - expected) < 0.15 * expected for count in counts.values())


def test_an_alphabet_must_have_1_to_256_characters() -> None:
    with pytest.raises(ValueError, match="alphabet"):
        random_text("", 3)
    with pytest.raises(ValueError, match="alphabet"):
        random_text("x" * 257, 3)
