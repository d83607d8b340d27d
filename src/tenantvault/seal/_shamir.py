"""Shamir's secret sharing over GF(2^8), in Vault's share format (y bytes, then x).

Each byte of the secret is the constant term of its own random polynomial of degree
`threshold - 1`; share `i` holds every polynomial's value at the share's x coordinate, with
that coordinate appended as a last byte, as Vault's `shamir.Split` lays it out. Any
`threshold` shares give the secret back by Lagrange interpolation at 0; fewer say nothing
about it. Coefficients and coordinates come from `secrets` (the CSPRNG), never `random`.

The field is the AES one (x^8 + x^4 + x^3 + x + 1); multiplication is carry-less with that
reduction, table-free, so the arithmetic reads as the textbook and the known-answer tests
check it against FIPS-197's worked examples.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Final

__all__ = ["MAX_SHARES", "combine", "gf_div", "gf_mul", "split"]

MAX_SHARES: Final = 255
_REDUCTION: Final = 0x1B  # x^8 = x^4 + x^3 + x + 1 in the AES field


def gf_mul(a: int, b: int) -> int:
    """The product of two field elements (bytes)."""
    product = 0
    for _ in range(8):
        if b & 1:
            product ^= a
        carry = a & 0x80
        a = (a << 1) & 0xFF
        if carry:
            a ^= _REDUCTION
        b >>= 1
    return product


def _inverse(a: int) -> int:
    # a^254 = a^-1 in GF(2^8) (Fermat); 0 has no inverse and never reaches here.
    result, power, exponent = 1, a, 254
    while exponent:
        if exponent & 1:
            result = gf_mul(result, power)
        power = gf_mul(power, power)
        exponent >>= 1
    return result


def gf_div(a: int, b: int) -> int:
    """`a / b` in the field; `ZeroDivisionError` for b == 0."""
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(2^8)")
    return gf_mul(a, _inverse(b))


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    """Horner's rule; `coefficients[0]` is the constant term."""
    value = 0
    for coefficient in reversed(coefficients):
        value = gf_mul(value, x) ^ coefficient
    return value


def split(secret: bytes, shares: int, threshold: int) -> list[bytes]:
    """`shares` shares of `secret`, any `threshold` of which rebuild it (Vault's checks)."""
    if not secret:
        raise ValueError("cannot split an empty secret")
    if not 2 <= threshold <= shares <= MAX_SHARES:
        raise ValueError("need 2 <= threshold <= shares <= 255")
    # Distinct, non-zero x coordinates in random order, as Vault picks them.
    coordinates = list(range(1, 256))
    for i in range(len(coordinates) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        coordinates[i], coordinates[j] = coordinates[j], coordinates[i]
    xs = coordinates[:shares]
    outputs = [bytearray() for _ in range(shares)]
    for byte in secret:
        polynomial = [byte, *(secrets.randbelow(256) for _ in range(threshold - 1))]
        for output, x in zip(outputs, xs, strict=True):
            output.append(_evaluate(polynomial, x))
    for output, x in zip(outputs, xs, strict=True):
        output.append(x)
    return [bytes(output) for output in outputs]


def combine(parts: Sequence[bytes]) -> bytes:
    """The secret behind `parts` (at least two shares of one split, each given once).

    With too few or foreign shares this returns a wrong value, not an error: only the
    caller's authenticated decryption can tell (as in Vault).
    """
    if len(parts) < 2:
        raise ValueError("less than two parts cannot be used to reconstruct the secret")
    length = len(parts[0])
    if length < 2 or any(len(part) != length for part in parts):
        raise ValueError("all parts must be the same length, at least two bytes")
    xs = [part[-1] for part in parts]
    if len(set(xs)) != len(xs):
        raise ValueError("duplicate part detected")
    # Lagrange basis polynomials at 0: l_i(0) = prod_{j != i} x_j / (x_j - x_i); in
    # characteristic 2, subtraction is XOR.
    weights = []
    for i, xi in enumerate(xs):
        weight = 1
        for j, xj in enumerate(xs):
            if i != j:
                weight = gf_mul(weight, gf_div(xj, xj ^ xi))
        weights.append(weight)
    secret = bytearray()
    for index in range(length - 1):
        value = 0
        for part, weight in zip(parts, weights, strict=True):
            value ^= gf_mul(part[index], weight)
        secret.append(value)
    return bytes(secret)
