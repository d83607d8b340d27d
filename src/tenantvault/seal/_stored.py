"""What the Shamir and PKCS#11 seals share: a `seal.json` in the data directory, the sealed
flag, the server's store hooks and the one lock every transition runs under."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final, Generic, TypeVar

from tenantvault._exceptions import InvalidRequestError

__all__ = ["SEAL_FILENAME", "InitHook", "SealHook", "StoredSeal", "UnsealHook"]

SEAL_FILENAME: Final = "seal.json"

UnsealHook = Callable[[bytes], Awaitable[None]]
"""Receives the master key once the seal opened it; the server opens the store with it."""
InitHook = Callable[[bytes], Awaitable[str]]
"""Creates the store under a new master key; returns its initial root token."""
SealHook = Callable[[], Awaitable[None]]
"""Closes the store: the master key and every key derived from it leave memory."""

ConfigT = TypeVar("ConfigT")


class StoredSeal(Generic[ConfigT]):
    """A seal whose configuration (`ConfigT`, read by `_read`) lives in `DATA_DIR/seal.json`.

    `bind()` connects it to the server (who opens and closes the store); every transition
    runs under `_lock`, so two unseal requests never combine the same attempt twice.
    """

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / SEAL_FILENAME
        self._config: ConfigT | None = None
        self._sealed = True
        self._lock = asyncio.Lock()
        self._on_init: InitHook | None = None
        self._on_unseal: UnsealHook | None = None
        self._on_seal: SealHook | None = None

    def _read(self, path: Path) -> ConfigT | None:
        """The configuration in `path`, or None if the store was never initialized."""
        raise NotImplementedError

    def bind(self, *, on_init: InitHook, on_unseal: UnsealHook, on_seal: SealHook) -> None:
        """Connect the server's store operations (before the first request)."""
        self._on_init, self._on_unseal, self._on_seal = on_init, on_unseal, on_seal

    async def load(self) -> None:
        """Read `seal.json` if the store was initialized (on start)."""
        self._config = await asyncio.to_thread(self._read, self._path)

    @property
    def data_dir(self) -> Path:
        return self._path.parent

    @property
    def is_sealed(self) -> bool:
        """Whether the master key is out of memory (always, before init)."""
        return self._sealed

    @property
    def is_initialized(self) -> bool:
        return self._config is not None

    async def seal(self) -> None:
        """Drop the master key: the server closes the store."""
        async with self._lock:
            if self._sealed:
                return
            self._sealed = True
            if self._on_seal is not None:
                await self._on_seal()

    def _require_initialized(self) -> ConfigT:
        if self._config is None:
            raise InvalidRequestError("Vault is not initialized")
        return self._config
