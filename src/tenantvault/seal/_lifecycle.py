"""The served Core of a sealed server (Shamir or PKCS#11), swapped as the seal opens and closes.

Sealed, the server serves a Core over `SealedBackend` whose seal gate answers only the seal
endpoints. At the unseal quorum a fresh Core is opened over the store with the master key,
its background services start, and it is served; at `sys/seal` a sealed Core is served again,
the services stop, and the unsealed Core is closed as soon as its last request is done —
which closes the store and drops the master key and every tenant key cached from it. A fresh
Core per unseal means no cache of the previous one survives a seal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tenantvault._core import Core
from tenantvault._exceptions import ConfigurationError
from tenantvault.backends._sqlite import DB_FILENAME
from tenantvault.seal._backend import SealedBackend
from tenantvault.seal._seal import Seal
from tenantvault.seal._stored import SEAL_FILENAME, InitHook, SealHook, UnsealHook

if TYPE_CHECKING:
    from tenantvault.services import Supervisor

__all__ = ["SealLifecycle"]

OpenStore = Callable[[bytes], Awaitable[Core]]
CloseStore = Callable[[Core], Awaitable[None]]


class ManagedSeal(Seal, Protocol):
    """A seal that keeps its own file in the data directory and opens the store through the
    lifecycle's hooks (`ShamirSeal`, `Pkcs11Seal`)."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def is_initialized(self) -> bool: ...

    async def load(self) -> None: ...

    def bind(self, *, on_init: InitHook, on_unseal: UnsealHook, on_seal: SealHook) -> None: ...


@runtime_checkable
class AutoUnseal(Protocol):
    """A seal that unseals itself at start (the HSM unwraps the master key)."""

    async def auto_unseal(self) -> None: ...


class SealLifecycle:
    """Owns the Cores a sealed server serves in turn, and the services of the unsealed one.

    `serve(core)` tells the server which Core takes new requests; the server reports each
    request's start and end on a Core (`enter`, `leave`) so that a retired Core is closed only
    once nothing runs on it any more.
    """

    def __init__(
        self,
        seal: ManagedSeal,
        *,
        open_store: OpenStore,
        close_store: CloseStore,
        supervise: Callable[[Core], Supervisor],
        serve: Callable[[Core], None],
    ) -> None:
        self.seal = seal
        self._open_store = open_store
        self._close_store = close_store
        self._supervise = supervise
        self._serve = serve
        self._current: Core | None = None
        self._users: dict[Core, int] = {}
        self._retired: set[Core] = set()
        self._services: tuple[asyncio.Task[None], asyncio.Event] | None = None

    async def start(self) -> Core:
        """Read the seal file and return the sealed Core to serve first.

        `ConfigurationError` for a store without a seal file: it was made under the file
        seal (or its initialization died midway), and seal migration is not supported.
        """
        await self.seal.load()
        if not self.seal.is_initialized and (self.seal.data_dir / DB_FILENAME).exists():
            raise ConfigurationError(
                f"the data directory {self.seal.data_dir} holds a store but no "
                f"{SEAL_FILENAME}: it was not initialized with the shamir seal "
                "(serve it with --seal file)"
            )
        self.seal.bind(on_init=self._initialize, on_unseal=self._unsealed, on_seal=self._sealed)
        self._current = self._sealed_core()
        if self.seal.is_initialized and isinstance(self.seal, AutoUnseal):
            # Auto-unseal: a missing HSM or a wrong PIN stops the start here, with its reason.
            await self.seal.auto_unseal()
        return self._current

    def _sealed_core(self) -> Core:
        return Core(SealedBackend(), seal=self.seal)

    # -- the seal's hooks ------------------------------------------------------------------

    async def _initialize(self, master_key: bytes) -> str:
        """Create the store under `master_key` with its root token; close it again."""
        core = await self._open_store(master_key)
        try:
            token = await core.initialize_root_token()
        finally:
            await self._close_store(core)
        if token is None:
            raise ConfigurationError("the store in the data directory is already initialized")
        return token

    async def _unsealed(self, master_key: bytes) -> None:
        core = await self._open_store(master_key)
        try:
            await self._start_services(core)
        except BaseException:
            await self._close_store(core)
            raise
        self._switch(core)

    async def _sealed(self) -> None:
        self._switch(self._sealed_core())
        await self._stop_services()

    def _switch(self, core: Core) -> None:
        old, self._current = self._current, core
        self._serve(core)
        if old is not None:
            # A hook runs inside a request on `old`: that request's `leave` closes it.
            self._retired.add(old)

    # -- request tracking ------------------------------------------------------------------

    def enter(self, core: Core) -> None:
        """A request starts on `core`."""
        self._users[core] = self._users.get(core, 0) + 1

    async def leave(self, core: Core) -> None:
        """A request on `core` ended; close every retired Core nothing runs on any more."""
        self._users[core] -= 1
        await self._close_idle()

    async def _close_idle(self) -> None:
        for core in [core for core in self._retired if not self._users.get(core)]:
            self._retired.discard(core)
            self._users.pop(core, None)
            await self._close_store(core)

    # -- services --------------------------------------------------------------------------

    async def _start_services(self, core: Core) -> None:
        started, stop = asyncio.Event(), asyncio.Event()
        services = self._supervise(core)

        async def run() -> None:
            async with services:
                core.services_health = services.report
                started.set()
                await stop.wait()

        # One task owns the supervisor's `async with` from unseal to seal (a task group must
        # be left by the task that entered it); `_stop_services` and `aclose` await it.
        task = asyncio.create_task(run(), name="tenantvault-unsealed-services")
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():
            waiter.cancel()
            await task  # raises what the supervisor's start raised
        self._services = (task, stop)

    async def _stop_services(self) -> None:
        services, self._services = self._services, None
        if services is not None:
            task, stop = services
            stop.set()
            await task

    async def aclose(self) -> None:
        """Stop the services and close every Core (server shutdown)."""
        await self._stop_services()
        current, self._current = self._current, None
        if current is not None:
            self._retired.add(current)
        self._users.clear()
        await self._close_idle()

    def __repr__(self) -> str:
        return f"<SealLifecycle {self.seal!r}>"
