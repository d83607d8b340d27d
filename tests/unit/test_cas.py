"""The check-and-set retry loop: a lost race is retried on a fresh read, then gives up (503)."""

from __future__ import annotations

import pytest

from tenantvault._cas import retry_on_conflict
from tenantvault._exceptions import BackendUnavailableError, ConflictError


class Pauses:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


async def test_a_lost_race_is_retried_until_the_write_lands() -> None:
    stored = {"revision": 0}
    tries = 0

    async def attempt() -> int:
        nonlocal tries
        tries += 1
        seen = stored["revision"]  # the fresh read
        if tries < 3:
            stored["revision"] += 1  # another writer won meanwhile
        if seen != stored["revision"]:
            raise ConflictError("revision moved")
        stored["revision"] += 1
        return stored["revision"]

    pauses = Pauses()
    assert await retry_on_conflict(attempt, what="the record", sleep=pauses) == 3
    assert tries == 3
    assert len(pauses.seconds) == 2
    assert all(0 <= pause <= 0.05 for pause in pauses.seconds)


async def test_endless_contention_gives_up_with_a_retryable_error() -> None:
    async def attempt() -> None:
        raise ConflictError("always")

    pauses = Pauses()
    with pytest.raises(BackendUnavailableError, match="too much contention on this key; retry"):
        await retry_on_conflict(attempt, what="this key", attempts=5, sleep=pauses)
    assert len(pauses.seconds) == 5


async def test_other_errors_are_not_retried() -> None:
    tries = 0

    async def attempt() -> None:
        nonlocal tries
        tries += 1
        raise KeyError("not a race")

    with pytest.raises(KeyError):
        await retry_on_conflict(attempt, what="x", sleep=Pauses())
    assert tries == 1
