"""What a KV v2 write's existence check read of the key's metadata, kept for that write.

The Core asks a write's route whether its key exists (create or update?) before it authorizes
and audits the request, and the handler would read the same metadata record again a moment
later: one backend round trip more for every write. Instead the handler's first attempt
starts from what the check read (`MetaHints.take`).

That is safe however old a hint is, so no request identity is needed to pair a check with its
handler (routes may be reused across requests): a version becomes visible only through the
metadata record's check-and-set on the revision the hint was read at, and a revision is never
reused for a key (the Backend contract), so a stale hint loses that race and the retry reads
afresh; a refusal (check-and-set) is decided again on a fresh read. A hint is taken once; the
hints are bounded by count and size and never shown in a repr (custom metadata is the
tenant's).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

from tenantvault._paths import SecretPath
from tenantvault.engines._protocol import MountStorage

__all__ = ["MetaHints"]

# How many hints are kept (checks whose write never ran, e.g. refused, linger until pushed
# out), and the largest metadata record kept as one.
_HINTS: Final = 256
_HINT_MAX_BYTES: Final = 8192

Meta = dict[str, Any]


class MetaHints:
    """Per engine: the metadata (or its absence) last read by a write's existence check."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[tuple[str, str], str], Meta | None] = OrderedDict()

    def __repr__(self) -> str:
        return f"MetaHints(entries={len(self._entries)})"

    def put(self, store: MountStorage, path: SecretPath, meta: Meta | None, size: int) -> None:
        """Keep `meta` (None: the key is absent), read as `size` bytes, for the next write."""
        key = (store.identity, path.key)
        if size > _HINT_MAX_BYTES:
            self._entries.pop(key, None)
            return
        self._entries[key] = meta
        self._entries.move_to_end(key)
        if len(self._entries) > _HINTS:
            self._entries.popitem(last=False)

    def take(self, store: MountStorage, path: SecretPath) -> tuple[bool, Meta | None]:
        """(whether there was a hint, the metadata it holds), forgetting it."""
        key = (store.identity, path.key)
        if key not in self._entries:
            return False, None
        return True, self._entries.pop(key)
