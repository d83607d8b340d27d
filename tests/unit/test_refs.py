"""`tv://` references: the one parser is strict, round-trips, and never quotes its input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantvault._paths import MAX_PATH_BYTES
from tenantvault._refs import InvalidReferenceError, Reference, is_reference, parse_reference

_NAME_START = st.sampled_from("abcxyzABCXYZ0189")
_NAME_CHARS = st.text(alphabet="abcXYZ019_.@=:~-", max_size=12)
names = st.builds(lambda head, tail: head + tail, _NAME_START, _NAME_CHARS)
# Path segments: the server's grammar allows letters of any script (in NFC).
segments = st.text(alphabet="abcXYZ019_.@=:~-éßж", min_size=1, max_size=10).filter(
    lambda segment: segment not in (".", "..")
)
paths = st.lists(segments, min_size=1, max_size=5).map("/".join)
tenants = st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True).filter(
    lambda tenant: tenant not in ("root", "sys", "auth", "audit", "default", "ui", "v1")
)
references = st.builds(
    Reference,
    mount=names.filter(lambda name: name not in (".", "..")),
    path=paths,
    field=names,
    version=st.none() | st.integers(min_value=1, max_value=10**17),
    namespace=st.none() | tenants,
)


def test_a_plain_reference_parses_into_its_parts() -> None:
    ref = parse_reference("tv://secret/mcp/github#token")
    assert ref == Reference("secret", "mcp/github", "token")
    assert ref.data_path == "secret/data/mcp/github"
    assert ref.metadata_path == "secret/metadata/mcp/github"


def test_version_and_namespace_are_read_in_either_order() -> None:
    one = parse_reference("tv://secret/app?version=3&namespace=acme#key")
    other = parse_reference("tv://secret/app?namespace=acme&version=3#key")
    assert one == other == Reference("secret", "app", "key", version=3, namespace="acme")
    assert str(other) == "tv://secret/app?version=3&namespace=acme#key"


@given(references)
def test_every_reference_round_trips_through_its_text(ref: Reference) -> None:
    assert parse_reference(str(ref)) == ref
    assert is_reference(str(ref))


@given(st.text(max_size=40), st.text(max_size=40))
def test_any_text_is_either_refused_cleanly_or_canonical(before: str, after: str) -> None:
    # A marker inside the input: if the input were quoted back, the marker would show.
    text = f"tv://{before}Q9zK{after}"
    try:
        ref = parse_reference(text)
    except InvalidReferenceError as error:
        message = str(error)
        assert message.startswith("invalid reference")
        assert "Q9zK" not in message, "the input (maybe a credential) is never quoted"
        return
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("secret/app#token", "must start with tv://"),
        ("TV://secret/app#token", "must start with tv://"),
        ("tv://secret/app", "no #field"),
        ("tv://secret/app#", "no #field"),
        ("tv://secret/app#a#b", "more than one '#'"),
        ("tv://secret#token", "needs a mount and a path"),
        ("tv:///app#token", "needs a mount and a path"),
        ("tv://secret/#token", "needs a mount and a path"),
        ("tv://secret/a//b#token", "empty"),
        ("tv://secret/a/../b#token", "'..'"),
        ("tv://secret/./b#token", "'.'"),
        ("tv://secret/a/#token", "empty"),
        ("tv://secret/a%2Fb#token", "character not allowed"),
        ("tv://secret/a b#token", "character not allowed"),
        ("tv://secret/a\tb#token", "character not allowed"),
        ("tv://secret/a\\b#token", "character not allowed"),
        ("tv://secret/a*#token", "character not allowed"),
        ("tv://secret/cafe\u0301#token", "NFC"),
        ("tv://secret/a\u200bb#token", "character not allowed"),
        ("tv://secret/" + "a" * MAX_PATH_BYTES + "#token", "longer than"),
        ("tv://secret/app#to ken", "field"),
        ("tv://secret/app#-token", "field"),
        ("tv://secret/app#caf\u00e9", "field"),
        ("tv://secret/app?#token", "empty query"),
        ("tv://secret/app?version#token", "key=value"),
        ("tv://secret/app?version=#token", "key=value"),
        ("tv://secret/app?version=0#token", "positive decimal"),
        ("tv://secret/app?version=01#token", "positive decimal"),
        ("tv://secret/app?version=-1#token", "positive decimal"),
        ("tv://secret/app?version=\u0661#token", "positive decimal"),
        ("tv://secret/app?version=1&version=2#token", "more than once"),
        ("tv://secret/app?namespace=Acme#token", "namespace"),
        ("tv://secret/app?namespace=sys#token", "reserved"),
        ("tv://secret/app?ttl=1#token", "unknown query item"),
        ("tv://secret/app#token?version=1", "field"),
    ],
)
def test_malformed_references_are_refused_with_a_clear_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidReferenceError, match=r"^invalid reference") as refused:
        parse_reference(text)
    assert reason in str(refused.value)


def test_a_reference_built_by_hand_is_checked_too() -> None:
    with pytest.raises(InvalidReferenceError):
        Reference("secret", "a/../b", "token")
    with pytest.raises(InvalidReferenceError, match="one segment"):
        Reference("kv/team", "app", "token")
    with pytest.raises(InvalidReferenceError):
        Reference("secret", "app", "token", version=0)


def test_the_repr_is_the_reference_not_a_value() -> None:
    assert "token" in repr(parse_reference("tv://secret/app#token"))
    assert not is_reference("ghp_plaintext")
