"""Property tests of the request-target and body parsers (the code every request crosses)."""

from __future__ import annotations

import base64
from urllib.parse import quote

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantvault._exceptions import InvalidRequestError, TenantVaultError
from tenantvault._request import OCSP_GET_FIELD
from tenantvault.server._json import parse_body
from tenantvault.server._translate import (
    HTTPError,
    api_path,
    ocsp_get_form,
    parse_headers,
    printable,
)

# Characters that make paths interesting: separators, dots, escapes, controls, Unicode.
_PATH_CHARS = st.sampled_from(
    [
        *"ab.-_/%25fF\\?#~ \t\x00\x7f",
        *("%2e", "%2f", "%2F", "%00", "%c0%ae", "\u00e9", "\u202e", "\u2028", "%e2%80%ae"),
    ]
)


def _reference_segments_ok(path: str) -> bool:
    segments = path.split("/")
    if segments and segments[-1] == "":
        segments.pop()
    return all(segment not in ("", ".", "..") for segment in segments)


@given(st.lists(_PATH_CHARS, max_size=24).map("".join))
def test_api_path_never_lets_a_dot_segment_or_control_through(raw: str) -> None:
    try:
        path = api_path(b"/v1/" + raw.encode("utf-8", "surrogatepass"))
    except (TenantVaultError, HTTPError):
        return
    assert path is not None
    assert _reference_segments_ok(path)
    assert path.isprintable()
    assert not set("\\%?# ") & set(path)


@given(
    st.lists(st.from_regex(r"[A-Za-z0-9_.@=:~-]{1,12}", fullmatch=True), min_size=1, max_size=6),
    st.booleans(),
)
def test_plain_paths_come_back_unchanged_and_dot_segments_are_refused(
    segments: list[str], trailing: bool
) -> None:
    text = "/".join(segments) + ("/" if trailing else "")
    if _reference_segments_ok(text):
        assert api_path(b"/v1/" + text.encode()) == text
        # The percent-encoded spelling of the same path decodes to the same string.
        assert api_path(b"/v1/" + quote(text, safe="/").encode()) == text
    else:
        with pytest.raises(InvalidRequestError):
            api_path(b"/v1/" + text.encode())


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.text(max_size=8)
        | st.floats(allow_nan=False, allow_infinity=False),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=6), children, max_size=4)
        ),
        max_leaves=30,
    )
)
def test_parse_body_round_trips_every_valid_object(value: object) -> None:
    body = {"data": value}
    assert parse_body(orjson.dumps(body), max_depth=64, max_items=10_000) == body


@given(st.dictionaries(st.text(max_size=6), st.integers(0, 3), min_size=1, max_size=5), st.data())
def test_parse_body_finds_every_duplicate_key(value: dict[str, int], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(value)))
    raw = orjson.dumps(value)
    duplicated = raw[:-1] + b"," + orjson.dumps(key) + b":0}"
    with pytest.raises(InvalidRequestError, match="duplicate key"):
        parse_body(duplicated, max_depth=64, max_items=10_000)


@given(st.binary(max_size=64))
def test_parse_body_refuses_garbage_with_400_only(raw: bytes) -> None:
    try:
        result = parse_body(raw, max_depth=64, max_items=10_000)
    except InvalidRequestError as error:
        status = error.status
    else:
        status = 200 if isinstance(result, dict) else 500
    assert status in (200, 400)


@given(st.binary(max_size=300))
def test_printable_output_is_safe_for_a_log_line(raw: bytes) -> None:
    shown = printable(raw)
    assert shown.isascii()
    assert shown.isprintable()
    assert len(shown) <= 64 * 4 + 3


def test_parse_headers_reads_the_token_without_trimming() -> None:
    headers = parse_headers([(b"x-vault-token", b" tok "), (b"x-vault-namespace", b"acme")])
    assert headers.token == " tok "
    assert headers.namespace == "acme"
    assert "tok" not in repr(headers)


@given(st.binary(min_size=1, max_size=300), st.sampled_from(["pki", "acme/pki-int", "a/b/c"]))
def test_ocsp_get_form_gives_back_the_escaped_base64(der: bytes, mount: str) -> None:
    """Any DER, its base64 URL-escaped after `<mount>/ocsp/`: the target loses its tail and
    the base64 comes back as data, whatever `/`, `+` and `=` it holds."""
    encoded = base64.b64encode(der).decode()
    raw = f"/v1/{mount}/ocsp/{quote(encoded, safe='')}".encode()
    found = ocsp_get_form(raw)
    if "%" not in quote(encoded, safe=""):
        assert found is None  # nothing escaped: the plain form, a path like any other
        return
    assert found == (f"/v1/{mount}/ocsp".encode(), {OCSP_GET_FIELD: encoded})


@pytest.mark.parametrize(
    "raw",
    [
        b"/v1/pki/ocsp/MEow",  # plain form
        b"/v1/pki/ocsp/MEo%2Fw%2E",  # an escape base64 never needs
        b"/v1/pki/ocsp/MEo%2Fw%",  # malformed escape
        b"/v1/pki/ocsp/",
        b"/v2/pki/ocsp/MEo%2Fw",
        b"/v1/pki/ocspx/MEo%2Fw",
    ],
)
def test_ocsp_get_form_leaves_every_other_target_to_the_path_rules(raw: bytes) -> None:
    assert ocsp_get_form(raw) is None
