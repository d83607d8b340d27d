"""Public random bytes (nonces, request ids): slices of CSPRNG blocks, never handed out twice."""

from __future__ import annotations

import itertools
import os

import pytest

from tenantvault import _public_random
from tenantvault._public_random import public_random


@pytest.fixture
def counting_os(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """`os.urandom` replaced by blocks of distinct, recognisable bytes; a fresh pool."""
    calls: list[int] = []
    counter = itertools.count()

    def urandom(size: int) -> bytes:
        calls.append(size)
        # Each 4-byte group is a distinct big-endian number: any reuse of bytes shows.
        return b"".join(next(counter).to_bytes(4, "big") for _ in range(size // 4))

    monkeypatch.setattr(os, "urandom", urandom)
    monkeypatch.setattr(_public_random, "_block", _public_random._Block())
    return calls


def test_slices_follow_each_other_and_a_block_serves_many(counting_os: list[int]) -> None:
    taken = [public_random(12) for _ in range(1000)]  # 12,000 bytes: three 4 KiB blocks
    assert len(set(taken)) == 1000
    assert counting_os == [4096] * 3  # one call per block, not one per nonce
    # The first block is handed out in order, to its last whole slice (4,092 of 4,096).
    first = b"".join(taken[:341])
    assert first == b"".join(n.to_bytes(4, "big") for n in range(1023))


def test_a_slice_never_straddles_two_blocks(counting_os: list[int]) -> None:
    public_random(4090)
    straddling = public_random(12)  # 6 bytes left in the block: a new block serves it
    assert straddling == b"".join(n.to_bytes(4, "big") for n in range(1024, 1027))


def test_a_request_larger_than_a_block_goes_to_the_os(counting_os: list[int]) -> None:
    assert len(public_random(5000)) == 5000
    assert counting_os == [5000]


def test_a_forked_child_never_hands_out_its_parents_next_bytes() -> None:
    """The parent's half-used block stays the parent's: a child that took from it would
    repeat the parent's next nonce under the same key."""
    public_random(12)  # the parent has a block, mostly unused
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its first slice and leave at once
        os.close(read)
        os.write(write, public_random(12))
        os._exit(0)
    os.close(write)
    child = os.read(read, 12)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 12
    assert child != public_random(12)
