"""Random bytes that are not secret (AEAD nonces, request ids), drawn 4 KiB at a time.

Under load on the 2-core VMs this runs on, one `getrandom` call per request cost ~55 µs
on average for request ids (cProfile of 4,000 reads; 2.5 µs idle), and a nonce per transit
encrypt cost 9 % of its throughput (`bench/ab.py`, 2026-12-03). A block of the kernel's
CSPRNG output handed out in slices is as random as one call per slice. Only values that
are public anyway come from here — a nonce travels with its ciphertext, a request id is
shown to the client — never a key: key bytes must not linger in a shared block.

A block never serves two processes: a forked child starts with an empty one, so no nonce
is handed out twice under one key (the one mistake AES-GCM does not survive).
"""

from __future__ import annotations

import os
import threading
from typing import Final

__all__ = ["public_random"]

_BLOCK_BYTES: Final = 4096


class _Block:
    """The current block and how much of it is used; one lock, taken for a slice."""

    __slots__ = ("data", "lock", "used")

    def __init__(self) -> None:
        self.data = b""
        self.used = 0
        self.lock = threading.Lock()


_block = _Block()


def _fresh_after_fork() -> None:
    # A new object, lock included: the parent's lock may have been held across the fork.
    global _block
    _block = _Block()


os.register_at_fork(after_in_child=_fresh_after_fork)


def public_random(size: int) -> bytes:
    """`size` bytes from the OS CSPRNG, for values that are not secret (nonces, ids)."""
    if size > _BLOCK_BYTES:
        return os.urandom(size)
    block = _block
    with block.lock:
        start = block.used
        if start + size > len(block.data):
            block.data, start = os.urandom(_BLOCK_BYTES), 0
        block.used = start + size
        return block.data[start : start + size]
