"""The transit crypto layer: published known-answer vectors, nonce uniqueness, tamper refusal.

The AEAD vectors go through `AeadCipher._seal_with_nonce`, the one internal entry point that
takes a nonce; nothing reachable from the API passes a caller's nonce to it.
"""

from __future__ import annotations

import base64
import string

import pytest

from tenantvault import DecryptionError, InvalidRequestError
from tenantvault.crypto import GoBase64Error, Keyring, KeyType, go_atoi, go_b64decode, hkdf_sha256
from tenantvault.crypto._transit_primitives import AEAD_NONCE_SIZE, AeadCipher, ed25519_keypair

h = bytes.fromhex

# The GCM specification's test cases (McGrew & Viega, "The Galois/Counter Mode of Operation",
# also NIST's gcmEncryptExtIV vectors): 3 and 4 for AES-128, 13 to 16 for AES-256.
GCM_KEY = h("feffe9928665731c6d6a8f9467308308")
GCM_IV = h("cafebabefacedbaddecaf888")
GCM_PLAINTEXT = h(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
GCM_AAD = h("feedfacedeadbeeffeedfacedeadbeefabaddad2")
GCM_VECTORS = [
    pytest.param(
        KeyType.AES128_GCM96,
        GCM_KEY,
        GCM_IV,
        GCM_PLAINTEXT,
        None,
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
        "4d5c2af327cd64a62cf35abd2ba6fab4",
        id="gcm-case-3",
    ),
    pytest.param(
        KeyType.AES128_GCM96,
        GCM_KEY,
        GCM_IV,
        GCM_PLAINTEXT[:60],
        GCM_AAD,
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
        "5bc94fbc3221a5db94fae95ae7121a47",
        id="gcm-case-4",
    ),
    pytest.param(
        KeyType.AES256_GCM96,
        bytes(32),
        bytes(12),
        b"",
        None,
        "",
        "530f8afbc74536b9a963b4f1c4cb738b",
        id="gcm-case-13",
    ),
    pytest.param(
        KeyType.AES256_GCM96,
        bytes(32),
        bytes(12),
        bytes(16),
        None,
        "cea7403d4d606b6e074ec5d3baf39d18",
        "d0d1c8a799996bf0265b98b5d48ab919",
        id="gcm-case-14",
    ),
    pytest.param(
        KeyType.AES256_GCM96,
        GCM_KEY * 2,
        GCM_IV,
        GCM_PLAINTEXT,
        None,
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
        "b094dac5d93471bdec1a502270e3cc6c",
        id="gcm-case-15",
    ),
    pytest.param(
        KeyType.AES256_GCM96,
        GCM_KEY * 2,
        GCM_IV,
        GCM_PLAINTEXT[:60],
        GCM_AAD,
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        "76fc6ece0f4e1768cddf8853bb2d551b",
        id="gcm-case-16",
    ),
    # RFC 8439 §2.8.2: the AEAD_CHACHA20_POLY1305 example.
    pytest.param(
        KeyType.CHACHA20_POLY1305,
        bytes(range(0x80, 0xA0)),
        h("070000004041424344454647"),
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
        b"the future, sunscreen would be it.",
        h("50515253c0c1c2c3c4c5c6c7"),
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
        "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
        "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
        "3ff4def08e4b7a9de576d26586cec64b6116",
        "1ae10b594f09e26a7e902ecbd0600691",
        id="rfc8439-2.8.2",
    ),
]


@pytest.mark.parametrize(
    ("key_type", "key", "nonce", "plaintext", "aad", "ciphertext", "tag"), GCM_VECTORS
)
def test_aead_known_answers(
    key_type: KeyType,
    key: bytes,
    nonce: bytes,
    plaintext: bytes,
    aad: bytes | None,
    ciphertext: str,
    tag: str,
) -> None:
    cipher = AeadCipher(key_type, key)
    sealed = cipher._seal_with_nonce(nonce, plaintext, aad)
    assert sealed == nonce + h(ciphertext) + h(tag)  # Vault's layout: nonce ‖ body ‖ tag
    assert cipher.open(sealed, aad) == plaintext


# RFC 5869 appendix A, test cases 1 to 3 (HKDF-SHA256).
HKDF_VECTORS = [
    pytest.param(
        b"\x0b" * 22,
        bytes(range(0x0D)),
        bytes(range(0xF0, 0xFA)),
        42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        id="rfc5869-case-1",
    ),
    pytest.param(
        bytes(range(0x00, 0x50)),
        bytes(range(0x60, 0xB0)),
        bytes(range(0xB0, 0x100)),
        82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87",
        id="rfc5869-case-2",
    ),
    pytest.param(
        b"\x0b" * 22,
        b"",
        b"",
        42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        id="rfc5869-case-3",
    ),
]


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "okm"), HKDF_VECTORS)
def test_hkdf_known_answers(ikm: bytes, salt: bytes, info: bytes, length: int, okm: str) -> None:
    assert hkdf_sha256(ikm, info, length, salt=salt) == h(okm)


def test_hkdf_without_salt_is_the_zero_salt_vault_uses() -> None:
    """Vault derives with Go's hkdf.New(sha256, key, nil, context): no salt = 32 zero bytes."""
    key, context = bytes(range(32)), b"tenant-7"
    assert hkdf_sha256(key, context, 32) == hkdf_sha256(key, context, 32, salt=bytes(32))


def test_ed25519_keys_use_gos_layout() -> None:
    """RFC 8032 §7.1 test 1: the seed's public key, stored as Go does (seed ‖ public)."""
    seed = h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public = h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert ed25519_keypair(seed) == seed + public


# -- Go's base64 ---------------------------------------------------------------------------

# Inputs and the answers `bao server -dev` (OpenBao 2.7.2) gave for them as a plaintext.
GO_BASE64 = [
    ("!!", 0),
    ("aGVsbG8", 4),
    ("abc", 0),
    ("abcde", 4),
    ("ab=c", 2),
    ("a===", 1),
    ("ab==cd", 4),
    ("abc=d", 4),
    ("ab=", 3),
    ("====", 0),
    ("YWJjZA=", 7),
    ("YWJj ZA==", 4),
    ("é", 0),
    ("YWJjZA==YWJj", 8),
    ("Y", 0),
    ("YQ", 0),
    ("YQ=", 3),
    ("YQ===", 4),
    ("-_-_", 0),
    ("YWJjZA\n=\n=", b"abcd"),
    ("YWJj\nZA==", b"abcd"),
    ("YW\rJj", b"abc"),
    ("ab=\n=", b"i"),
    ("YWJjZA==\n", b"abcd"),
    ("\n", b""),
    ("YQ==", b"a"),
    ("aGVsbG9=", b"hello"),
]


@pytest.mark.parametrize(("text", "expected"), GO_BASE64)
def test_base64_decoding_matches_go(text: str, expected: int | bytes) -> None:
    if isinstance(expected, int):
        with pytest.raises(GoBase64Error) as caught:
            go_b64decode(text)
        assert str(caught.value) == f"illegal base64 data at input byte {expected}"
    else:
        assert go_b64decode(text) == expected


def test_atoi_matches_go() -> None:
    assert go_atoi("12") == 12
    assert go_atoi("+3") == 3
    assert go_atoi("-1") == -1
    assert go_atoi("9223372036854775807") == 2**63 - 1
    for bad in ("", "x", "1_0", " 1", "9223372036854775808", "١"):
        assert go_atoi(bad) is None


# -- nonces --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_million_encryptions_under_one_key_never_repeat_a_nonce() -> None:
    """K-10 / ASVS 6.2.6, on the seal path every encrypt request takes."""
    cipher = AeadCipher(KeyType.AES256_GCM96, bytes(range(32)))
    count = 1_000_000
    seal = cipher.seal
    nonces = {seal(b"", None)[:AEAD_NONCE_SIZE] for _ in range(count)}
    assert len(nonces) == count


def test_convergent_nonces_depend_on_the_plaintext_only() -> None:
    cipher = AeadCipher(KeyType.AES256_GCM96, bytes(32))
    hmac_key = bytes(range(32))
    first = cipher.seal_convergent(hmac_key, b"alice", None)
    assert cipher.seal_convergent(hmac_key, b"alice", None) == first
    assert cipher.seal_convergent(hmac_key, b"bob", None)[:12] != first[:12]


def test_the_seal_path_refuses_a_nonce_of_the_wrong_size() -> None:
    cipher = AeadCipher(KeyType.AES256_GCM96, bytes(32))
    with pytest.raises(ValueError, match="12 bytes"):
        cipher._seal_with_nonce(b"\x00" * 8, b"x", None)


# -- tampering -----------------------------------------------------------------------------


def _keyring(key_type: KeyType = KeyType.AES256_GCM96) -> Keyring:
    return Keyring.generate("k", key_type, now_ns=1)


@pytest.mark.parametrize("key_type", [KeyType.AES256_GCM96, KeyType.CHACHA20_POLY1305])
def test_every_bit_flip_in_nonce_body_or_tag_fails_the_same_way(key_type: KeyType) -> None:
    keyring = _keyring(key_type)
    ciphertext = keyring.encrypt(b"attack at dawn", associated_data=b"hdr")
    prefix, blob = ciphertext[:9], base64.b64decode(ciphertext[9:])
    messages = set()
    for index in range(len(blob)):
        for bit in range(8):
            tampered = bytearray(blob)
            tampered[index] ^= 1 << bit
            forged = prefix + base64.b64encode(bytes(tampered)).decode()
            with pytest.raises(DecryptionError) as caught:
                keyring.decrypt(forged, associated_data=b"hdr")
            messages.add(caught.value.message)
    # One answer for a flipped nonce, body or tag bit: nothing tells them apart.
    assert len(messages) == 1
    assert messages.pop().endswith("message authentication failed")


def test_every_character_substitution_is_refused() -> None:
    """Any one character of the text replaced — prefix, version, separator, base64 — fails,
    including Vault's alternative spellings (v0, v01, v+1, unused low bits)."""
    keyring = _keyring()
    keyring.rotate(now_ns=2)
    ciphertext = keyring.encrypt(b"attack at dawn", version=1)
    alphabet = string.ascii_letters + string.digits + "+/=:-_ \n\r\x00é"
    for index, original in enumerate(ciphertext):
        for replacement in alphabet:
            if replacement == original:
                continue
            forged = ciphertext[:index] + replacement + ciphertext[index + 1 :]
            with pytest.raises(DecryptionError):
                keyring.decrypt(forged)
    assert keyring.decrypt(ciphertext) == b"attack at dawn"


def test_truncation_and_extension_are_refused() -> None:
    keyring = _keyring()
    ciphertext = keyring.encrypt(b"attack at dawn")
    for end in range(len(ciphertext)):
        with pytest.raises(DecryptionError):
            keyring.decrypt(ciphertext[:end])
    for suffix in ("A", "AAAA", "\n", "=", ":"):
        with pytest.raises(DecryptionError):
            keyring.decrypt(ciphertext + suffix)


def test_another_keys_ciphertext_fails_like_a_tampered_one() -> None:
    mine, theirs = _keyring(), _keyring()
    foreign = theirs.encrypt(b"secret")
    with pytest.raises(DecryptionError) as caught:
        mine.decrypt(foreign)
    assert caught.value.message == "cipher: message authentication failed"


def test_decryption_checks_run_in_vaults_order() -> None:
    keyring = _keyring()
    keyring.rotate(now_ns=2)
    old = keyring.encrypt(b"x", version=1)
    keyring.min_decryption_version = 2
    with pytest.raises(DecryptionError, match=r"disallowed by policy \(too old\)"):
        keyring.decrypt(old)
    with pytest.raises(DecryptionError, match="version is too new"):
        keyring.decrypt("vault:v3:" + old[9:])


def test_derived_keys_refuse_a_missing_context() -> None:
    keyring = Keyring.generate("d", KeyType.AES256_GCM96, now_ns=1, derived=True)
    with pytest.raises(InvalidRequestError, match="missing 'context'"):
        keyring.encrypt(b"x")


def test_stored_form_round_trips_without_showing_key_material() -> None:
    keyring = _keyring(KeyType.ED25519)
    copy = Keyring.from_record(keyring.to_record())
    signature, _, _ = keyring.sign(b"m")
    assert copy.verify_signature(b"m", signature)
    secret = keyring.versions[1].key
    assert secret.hex() not in repr(keyring) + repr(keyring.versions[1])
