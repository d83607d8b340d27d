"""Shamir's secret sharing over GF(2^8): the field against FIPS-197's worked examples, a
hand-computed split, shares made by a real OpenBao, and properties of split/combine."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantvault.seal import _shamir
from tenantvault.seal._shamir import combine, gf_div, gf_mul, split

# `bao operator init -key-shares=5 -key-threshold=3` on a throwaway OpenBao 2.7.2 server.
OPENBAO_SHARES = [
    bytes.fromhex(text)
    for text in (
        "f03f631e3d0e0200a12089cb437f83611702dc6a9d5e8be8205dfd1c867a9fc61b",
        "831467d799f921478c6649b2c552779f79333c8d22264e6a3696abdc642435027f",
        "d6d4cdc23c6173cdf202556295b704417c75eade54f0c23e4c04bffdf7aa9f3c26",
        "bfcd4ffc1ee37ffe874e084e166a871544d8d484fa657f5b88016c117211950fe2",
        "bafacb2feb1c74dd057aa9f1c9acb9db0742930bfea54a0310e263b2fd6751539b",
    )
]


def test_field_multiplication_matches_fips_197() -> None:
    """FIPS-197 §4.2: {57}·{83} = {c1}, {57}·{13} = {fe}; §5.1.1: {53}⁻¹ = {ca}."""
    assert gf_mul(0x57, 0x83) == 0xC1
    assert gf_mul(0x57, 0x13) == 0xFE
    assert gf_mul(0x53, 0xCA) == 0x01
    assert gf_div(1, 0x53) == 0xCA
    assert gf_mul(3, 7) == 9


def test_field_division_inverts_multiplication() -> None:
    for a, b in itertools.product(range(256), range(1, 256)):
        assert gf_div(gf_mul(a, b), b) == a
    with pytest.raises(ZeroDivisionError):
        gf_div(1, 0)


def test_combine_a_hand_computed_split() -> None:
    """f(x) = 0x2a + 0x07·x: f(1) = 0x2d, f(2) = 0x24, f(3) = 0x23 (computed by hand)."""
    shares = [b"\x2d\x01", b"\x24\x02", b"\x23\x03"]
    for pair in itertools.combinations(shares, 2):
        assert combine(list(pair)) == b"\x2a"


def test_every_quorum_of_openbao_shares_gives_one_key() -> None:
    """Vault's layout (y bytes, then x) and field: the ten 3-share subsets of OpenBao's
    shares combine to the same 32-byte key, and a 2-share subset does not."""
    keys = {combine(list(subset)) for subset in itertools.combinations(OPENBAO_SHARES, 3)}
    assert len(keys) == 1
    (key,) = keys
    assert len(key) == 32
    assert combine(OPENBAO_SHARES[:2]) != key


@settings(max_examples=50, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=48),
    shape=st.integers(2, 8).flatmap(lambda n: st.tuples(st.just(n), st.integers(2, n))),
    data=st.data(),
)
def test_any_threshold_shares_rebuild_the_secret(
    secret: bytes, shape: tuple[int, int], data: st.DataObject
) -> None:
    shares_count, threshold = shape
    shares = split(secret, shares_count, threshold)
    assert len(shares) == shares_count
    assert all(len(share) == len(secret) + 1 for share in shares)
    assert len({share[-1] for share in shares}) == shares_count
    assert 0 not in {share[-1] for share in shares}
    chosen = data.draw(st.permutations(shares))[:threshold]
    assert combine(chosen) == secret


def test_fewer_shares_than_the_threshold_do_not_rebuild() -> None:
    secret = bytes(range(32))
    shares = split(secret, 5, 3)
    assert combine(shares[:2]) != secret


def test_shares_come_fresh_from_the_csprng() -> None:
    """Two splits of one secret share nothing (coefficients and coordinates are random)."""
    secret = bytes(32)
    first, second = split(secret, 3, 2), split(secret, 3, 2)
    assert set(first).isdisjoint(second)
    assert "random" not in _shamir.__dict__  # only `secrets` draws coefficients


@pytest.mark.parametrize(("shares", "threshold"), [(1, 2), (3, 1), (2, 3), (256, 2), (0, 0)])
def test_split_refuses_bad_shapes(shares: int, threshold: int) -> None:
    with pytest.raises(ValueError, match="threshold"):
        split(b"x", shares, threshold)


def test_combine_refuses_malformed_parts() -> None:
    with pytest.raises(ValueError, match="less than two parts"):
        combine([b"\x01\x02"])
    with pytest.raises(ValueError, match="same length"):
        combine([b"\x01\x02", b"\x01\x02\x03"])
    with pytest.raises(ValueError, match="duplicate part"):
        combine([b"\x01\x02", b"\x03\x02"])
