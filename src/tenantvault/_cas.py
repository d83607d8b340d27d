"""The one check-and-set retry loop: run an attempt again after a lost race, with jitter.

Every read-modify-write of a stored record (tokens, mount tables, transit keys, KV metadata)
is an attempt that reads the record, computes the new value and writes it with
`expected_revision`; a backend raises `ConflictError` when another writer got there first.
`retry_on_conflict` runs the attempt again on a fresh read, backs off a little between
tries so that one of the racing writers wins soon, and gives up with a retryable 503 rather
than spin forever.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from tenantvault._exceptions import BackendUnavailableError, ConflictError

__all__ = ["DEFAULT_ATTEMPTS", "backoff", "retry_on_conflict"]

_T = TypeVar("_T")

DEFAULT_ATTEMPTS: Final = 64
_MAX_PAUSE_SECONDS: Final = 0.05


async def backoff(
    attempt: int, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Spread out writers that lost a race on the same key, so one of them wins soon."""
    # Jitter, not cryptography: the standard PRNG is right here.
    pause = random.random() * min(0.001 * (attempt + 1), _MAX_PAUSE_SECONDS)  # noqa: S311
    await sleep(pause)


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[_T]],
    *,
    what: str,
    attempts: int = DEFAULT_ATTEMPTS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> _T:
    """`await attempt()` until it does not raise `ConflictError`; its result.

    `attempt` must read what it changes itself (each call starts from a fresh read) and may
    return early without writing. After `attempts` lost races: `BackendUnavailableError`
    ("too much contention on <what>; retry"), which clients retry.
    """
    for number in range(attempts):
        try:
            return await attempt()
        except ConflictError:
            await backoff(number, sleep=sleep)
    raise BackendUnavailableError(f"too much contention on {what}; retry")
