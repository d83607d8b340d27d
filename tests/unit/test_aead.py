"""AES-256-GCM sealing: what goes in comes out, and anything tampered or misplaced is refused."""

from __future__ import annotations

import pytest

from tenantvault._exceptions import IntegrityError
from tenantvault.crypto import (
    KEY_SIZE,
    NONCE_SIZE,
    OVERHEAD,
    AeadKey,
    encode_aad,
    random_key,
    unwrap_key,
    wrap_key,
)

PLAINTEXT = b"ghp_canary-token-0123456789"
AAD = encode_aad("tenantvault:record", "acme", "key-id", "secret", "github/token")


def test_seal_then_open_returns_the_plaintext() -> None:
    key = AeadKey(random_key())
    sealed = key.seal(PLAINTEXT, AAD)
    assert key.open(sealed, AAD) == PLAINTEXT


def test_sealed_layout_is_nonce_ciphertext_tag() -> None:
    sealed = AeadKey(random_key()).seal(PLAINTEXT, AAD)
    assert len(sealed) == len(PLAINTEXT) + OVERHEAD
    assert PLAINTEXT not in sealed


def test_empty_plaintext_round_trips() -> None:
    key = AeadKey(random_key())
    assert key.open(key.seal(b"", AAD), AAD) == b""


def test_other_associated_data_is_refused() -> None:
    key = AeadKey(random_key())
    sealed = key.seal(PLAINTEXT, AAD)
    other = encode_aad("tenantvault:record", "other", "key-id", "secret", "github/token")
    with pytest.raises(IntegrityError):
        key.open(sealed, other)


def test_aad_parts_cannot_be_shifted_between_fields() -> None:
    """('ab', 'c') and ('a', 'bc') must not authenticate each other's data."""
    assert encode_aad("ab", "c") != encode_aad("a", "bc")
    assert encode_aad("a/", "b") != encode_aad("a", "/b")
    key = AeadKey(random_key())
    with pytest.raises(IntegrityError):
        key.open(key.seal(PLAINTEXT, encode_aad("ab", "c")), encode_aad("a", "bc"))


def test_tampering_with_any_byte_is_refused() -> None:
    key = AeadKey(random_key())
    sealed = key.seal(PLAINTEXT, AAD)
    for index in range(len(sealed)):
        for flip in (0x01, 0x80):
            tampered = bytearray(sealed)
            tampered[index] ^= flip
            with pytest.raises(IntegrityError):
                key.open(bytes(tampered), AAD)


@pytest.mark.parametrize("length", [0, 1, NONCE_SIZE, OVERHEAD - 1, OVERHEAD])
def test_truncated_or_short_input_is_refused(length: int) -> None:
    key = AeadKey(random_key())
    sealed = key.seal(PLAINTEXT, AAD)
    with pytest.raises(IntegrityError):
        key.open(sealed[:length], AAD)


def test_wrong_key_is_refused() -> None:
    sealed = AeadKey(random_key()).seal(PLAINTEXT, AAD)
    with pytest.raises(IntegrityError):
        AeadKey(random_key()).open(sealed, AAD)


def test_integrity_error_leaks_nothing() -> None:
    key = AeadKey(random_key())
    with pytest.raises(IntegrityError) as caught:
        key.open(key.seal(PLAINTEXT, AAD)[:-1] + b"\x00", AAD)
    assert str(caught.value) == "stored data failed authentication"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_nonces_do_not_repeat_over_many_seals() -> None:
    key = AeadKey(random_key())
    nonces = {key.seal(b"", b"")[:NONCE_SIZE] for _ in range(100_000)}
    assert len(nonces) == 100_000


def test_same_plaintext_seals_differently_each_time() -> None:
    key = AeadKey(random_key())
    assert key.seal(PLAINTEXT, AAD) != key.seal(PLAINTEXT, AAD)


def test_random_keys_are_256_bits_and_distinct() -> None:
    keys = {random_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(len(key) == KEY_SIZE for key in keys)


@pytest.mark.parametrize("length", [0, 16, 24, 31, 33])
def test_keys_other_than_256_bits_are_rejected(length: int) -> None:
    with pytest.raises(ValueError, match="32-byte key"):
        AeadKey(b"k" * length)


def test_repr_hides_the_key() -> None:
    raw = random_key()
    text = repr(AeadKey(raw))
    assert raw.hex() not in text
    assert text == "AeadKey(<redacted>)"


def test_wrapped_data_key_unwraps_for_its_tenant_and_key_id() -> None:
    master = AeadKey(random_key())
    data_key = random_key()
    wrapped = wrap_key(master, data_key, tenant="acme", key_id="k1")
    assert data_key not in wrapped
    unwrapped = unwrap_key(master, wrapped, tenant="acme", key_id="k1")
    assert unwrapped.open(AeadKey(data_key).seal(PLAINTEXT, AAD), AAD) == PLAINTEXT


@pytest.mark.parametrize(
    ("tenant", "key_id"), [("globex", "k1"), ("acme", "k2"), ("acmek", "1"), ("", "acmek1")]
)
def test_wrapped_data_key_does_not_unwrap_elsewhere(tenant: str, key_id: str) -> None:
    master = AeadKey(random_key())
    wrapped = wrap_key(master, random_key(), tenant="acme", key_id="k1")
    with pytest.raises(IntegrityError):
        unwrap_key(master, wrapped, tenant=tenant, key_id=key_id)


def test_wrapped_data_key_needs_the_same_master_key() -> None:
    wrapped = wrap_key(AeadKey(random_key()), random_key(), tenant="acme", key_id="k1")
    with pytest.raises(IntegrityError):
        unwrap_key(AeadKey(random_key()), wrapped, tenant="acme", key_id="k1")


def test_wrap_rejects_a_data_key_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        wrap_key(AeadKey(random_key()), b"short", tenant="acme", key_id="k1")
