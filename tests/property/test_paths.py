"""Property tests of the path and tenant-id grammar (A-1…A-11): only the canonical form passes."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantvault._exceptions import InvalidPathError
from tenantvault._paths import (
    MAX_PATH_BYTES,
    MAX_PATH_SEGMENTS,
    RESERVED_TENANT_IDS,
    decode_raw_path,
    parse_path,
    validate_tenant_id,
)

_ASCII_SEGMENT_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@=:~"
segment = st.text(alphabet=_ASCII_SEGMENT_CHARS + "éüßкл日本", min_size=1, max_size=20).filter(
    lambda s: s not in (".", "..") and unicodedata.is_normalized("NFC", s)
)
canonical_path = st.lists(segment, min_size=1, max_size=8).map("/".join)


@given(canonical_path)
def test_every_canonical_path_is_accepted_unchanged(path: str) -> None:
    parsed = parse_path(path)
    assert parsed.key == path
    assert str(parsed) == path


@given(canonical_path)
def test_a_trailing_slash_means_a_directory_only_where_allowed(path: str) -> None:
    assert parse_path(path + "/", allow_dir=True).is_dir
    with pytest.raises(InvalidPathError):
        parse_path(path + "/")


# Each case is one of A-1…A-11 spliced into an otherwise valid path.
BAD_PARTS = [
    "..",
    ".",
    "",  # traversal and empty segments
    "a\\b",
    "\\",
    "%2e%2e",
    "%2F",
    "a%00",
    "%252e",  # A-4 (as decoded text)
    "a\x00b",
    "a\x1fb",
    "a\x7fb",
    "a\u2028b",
    "a\u202eb",
    "a\u200bb",
    "a\ufeffb",
    "e\u0301",  # not NFC
    "a b",
    " a",
    "a\t",  # whitespace is never trimmed
    "*",
    "a*",
    "+",
    "a+b",
    "a?b",
    "a[b]",
    "a{b}",
    "a#b",
    "a;b",
    "a,b",
    "a%b",
]


@given(canonical_path, st.sampled_from(BAD_PARTS), st.booleans())
def test_any_bad_segment_anywhere_is_rejected(path: str, bad: str, before: bool) -> None:
    candidate = f"{bad}/{path}" if before else f"{path}/{bad}"
    with pytest.raises(InvalidPathError):
        parse_path(candidate)


@given(canonical_path)
def test_leading_slash_and_double_slash_are_rejected(path: str) -> None:
    with pytest.raises(InvalidPathError):
        parse_path("/" + path)
    with pytest.raises(InvalidPathError):
        parse_path(path.replace("/", "//") if "/" in path else path + "//x")


def test_length_and_segment_limits() -> None:
    """A-8: over 512 bytes or 32 segments is refused; exactly at the limit is fine."""
    parse_path("/".join(["a"] * MAX_PATH_SEGMENTS))
    with pytest.raises(InvalidPathError):
        parse_path("/".join(["a"] * (MAX_PATH_SEGMENTS + 1)))
    at_limit = "a" * 255 + "/" + "b" * 254 + "/c"
    assert len(at_limit) == MAX_PATH_BYTES
    parse_path(at_limit)
    with pytest.raises(InvalidPathError):
        parse_path(at_limit + "d")
    with pytest.raises(InvalidPathError):
        parse_path("a" * 256)
    with pytest.raises(InvalidPathError):
        parse_path("x" * (1 << 20))


tenant_id = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True).filter(
    lambda t: t not in RESERVED_TENANT_IDS
)


@given(tenant_id)
def test_valid_tenant_ids_are_accepted(tenant: str) -> None:
    assert validate_tenant_id(tenant) == tenant


@given(st.text(max_size=70))
def test_tenant_ids_outside_the_grammar_are_rejected(text: str) -> None:
    import re

    valid = re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", text) and text not in RESERVED_TENANT_IDS
    if valid:
        assert validate_tenant_id(text) == text
    else:
        with pytest.raises(InvalidPathError):
            validate_tenant_id(text)


@pytest.mark.parametrize(
    "tenant",
    [
        "ｔｅｎａｎｔ",
        "\u212aelvin",
        "İstanbul",
        "straße",
        "acme\u200b",
        "аcme",
        "Acme",
        " acme",
        "acme ",
        "a" * 64,
        "*",
        "+",
        "a*",
        "_system",
        *sorted(RESERVED_TENANT_IDS),
    ],
)
def test_lookalike_case_reserved_and_glob_tenant_ids_are_rejected(tenant: str) -> None:
    """A-6, A-7, A-9, A-11."""
    with pytest.raises(InvalidPathError):
        validate_tenant_id(tenant)


@pytest.mark.parametrize(
    "raw",
    [
        b"a%2Fb",
        b"a%2fb",
        b"a%5cb",
        b"a%5Cb",
        b"%c0%ae%c0%ae",
        b"a%zz",
        b"a%2",
        b"a%",
        b"\xff",
        b"a?b",
        b"a#b",
    ],
)
def test_raw_paths_that_decoding_would_hide_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidPathError):
        decode_raw_path(raw)


def test_raw_paths_decode_exactly_once() -> None:
    assert decode_raw_path(b"a%252e%252e") == "a%2e%2e"  # then refused by the grammar
    with pytest.raises(InvalidPathError):
        parse_path(decode_raw_path(b"a/%252e%252e"))
    with pytest.raises(InvalidPathError):
        parse_path(decode_raw_path(b"a/%2e%2e/b"))
    assert decode_raw_path(b"caf%C3%A9") == "café"


@given(canonical_path)
def test_percent_encoding_a_canonical_path_decodes_back_to_it(path: str) -> None:
    from urllib.parse import quote

    assert decode_raw_path(quote(path, safe="/").encode()) == path
