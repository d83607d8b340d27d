"""Storage backends behind one Protocol; `open_backend(url)` picks one by URL scheme."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tenantvault._exceptions import ConfigurationError
from tenantvault.backends._memory import Faults, MemoryBackend
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend, Record

__all__ = ["SYSTEM_TENANT", "Backend", "Faults", "MemoryBackend", "Record", "open_backend"]


def _sqlite_dir(raw: str) -> Path:
    path = unquote(raw)
    if not path:
        raise ConfigurationError("sqlite URL needs a data directory: sqlite:///path/to/dir")
    return Path(os.path.expanduser(path))


async def open_backend(
    url: str,
    *,
    master_key: bytes | None = None,
    master_key_file: Path | None = None,
    allow_insecure_permissions: bool = False,
) -> Backend:
    """Open the backend named by `url`.

    - `memory://` — the in-memory mock (nothing persisted)
    - `sqlite:///ABSOLUTE/DATA/DIR` or `sqlite://relative/dir` — the embedded encrypted store,
      refused if group or others can use its files unless `allow_insecure_permissions`
    """
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return MemoryBackend()
    if parts.scheme == "sqlite":
        from tenantvault.backends._sqlite import SqliteBackend

        return await SqliteBackend.open(
            _sqlite_dir(parts.netloc + parts.path),
            master_key=master_key,
            master_key_file=master_key_file,
            allow_insecure_permissions=allow_insecure_permissions,
        )
    raise ConfigurationError(
        "unknown backend URL scheme: use memory:// or sqlite:///path/to/data-dir"
    )
