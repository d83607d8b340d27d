"""The project's base64 and the master key's text form: one spelling per value, no echo."""

from __future__ import annotations

import base64

import pytest

from tenantvault import _b64
from tenantvault.crypto import KEY_SIZE, decode_master_key, encode_master_key


def test_decode_reads_exactly_what_encode_writes() -> None:
    for raw in (b"", b"a", b"ab", b"abc", bytes(range(256))):
        assert _b64.decode(_b64.encode(raw)) == raw
        assert _b64.decode(_b64.encode(raw).encode()) == raw


@pytest.mark.parametrize(
    "text",
    [
        "YQ",  # padding missing
        "YR==",  # unused low bits set: a second spelling of b"a"
        "YQ==\n",
        " YQ==",
        "Y Q==",
        "YQ==YQ==",
        "YQ=",
        "-_8=",  # URL alphabet
        "é",
    ],
)
def test_decode_refuses_every_other_spelling(text: str) -> None:
    with pytest.raises(ValueError, match="not canonical base64"):
        _b64.decode(text)


def test_urlsafe_is_unpadded_and_refuses_the_standard_alphabet() -> None:
    raw = bytes(range(250, 256))
    text = _b64.encode_urlsafe(raw)
    assert "=" not in text
    assert _b64.decode_urlsafe(text) == raw
    for bad in (text + "=", base64.b64encode(raw).decode(), "é"):
        with pytest.raises(ValueError, match="URL-safe"):
            _b64.decode_urlsafe(bad)


def test_master_key_round_trip_and_refusals() -> None:
    key = bytes(range(KEY_SIZE))
    line = encode_master_key(key)
    assert line.endswith(b"\n")
    assert decode_master_key(line) == key
    assert decode_master_key(f"  {line.decode().strip()}  ") == key
    assert decode_master_key(_b64.encode(key[:-1])) is None  # 31 bytes
    assert decode_master_key("not base64!") is None
    assert decode_master_key(base64.b64encode(key).replace(b"=", b"")) is None
