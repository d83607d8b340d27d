"""Storage backends behind one Protocol; `open_backend(url)` picks one by URL scheme."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from tenantvault._exceptions import ConfigurationError
from tenantvault.backends._memory import Faults, MemoryBackend
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend, Record

if TYPE_CHECKING:
    from tenantvault._config import UpstreamOptions

__all__ = [
    "SYSTEM_TENANT",
    "Backend",
    "Faults",
    "MemoryBackend",
    "Record",
    "background_services",
    "open_backend",
]


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
    upstream: UpstreamOptions | None = None,
    environ: Mapping[str, str] | None = None,
) -> Backend:
    """Open the backend named by `url`.

    - `memory://` — the in-memory mock (nothing persisted)
    - `sqlite:///ABSOLUTE/DATA/DIR` or `sqlite://relative/dir` — the embedded encrypted store,
      refused if group or others can use its files unless `allow_insecure_permissions`
    - `vault+https://HOST:PORT` (`vault+http://` for loopback only) — gateway mode: records
      in an upstream Vault/OpenBao, sealed with the master key (required, the same on every
      instance); `upstream` (or the URL's query) says how to reach and log in to it, see
      `tenantvault.upstream._open`. `environ` is where `TENANTVAULT_UPSTREAM_TOKEN` is read.
    """
    parts = urlsplit(url)
    if parts.scheme in ("vault+http", "vault+https"):
        # Imported here: aiohttp is only loaded when gateway mode is used.
        from tenantvault.upstream._open import open_upstream

        return await open_upstream(
            url,
            upstream,
            master_key=master_key,
            master_key_file=master_key_file,
            allow_insecure_permissions=allow_insecure_permissions,
            environ=environ,
        )
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
        "unknown backend URL scheme: use memory://, sqlite:///path/to/data-dir or "
        "vault+https://HOST:PORT"
    )


def background_services(
    backend: Backend,
) -> dict[str, tuple[Callable[[], Any], Callable[[], dict[str, Any]] | None]]:
    """The services a backend needs supervised, by name: (service, health detail or None).

    Gateway mode has one, the upstream token renewal; the other backends have none.
    """
    gateway = getattr(backend, "gateway", None)
    if gateway is None:
        return {}
    services: dict[str, tuple[Callable[[], Any], Callable[[], dict[str, Any]] | None]]
    services = gateway.services()
    return services
