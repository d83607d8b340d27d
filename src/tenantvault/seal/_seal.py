"""What every seal tells the server: its status, and Vault's sealed error.

A seal guards the master key of the embedded store (the key that wraps every tenant's data
key). `FileSeal` is the original behaviour: the key sits in a file (or the environment) and
the store is never sealed — the weakest seal, since whoever copies the key file with the data
directory holds everything. `ShamirSeal` (`_shamir_seal`) keeps the key only in memory, after
a quorum of unseal key shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

from tenantvault._exceptions import BackendUnavailableError, InvalidRequestError

__all__ = ["SEALED_MESSAGE", "FileSeal", "InitResult", "Seal", "SealStatus", "SealedError"]

SEALED_MESSAGE: Final = "Vault is sealed"


class SealedError(BackendUnavailableError):
    """503 `Vault is sealed`: the master key is not in memory, so nothing can be served."""

    def __init__(self) -> None:
        super().__init__(SEALED_MESSAGE)


@dataclass(frozen=True, slots=True)
class SealStatus:
    """The fields of Vault's `sys/seal-status` that vary with the seal's state."""

    type: str
    initialized: bool
    sealed: bool
    threshold: int
    shares: int
    progress: int
    nonce: str
    # Auto-unseal (pkcs11): `threshold`/`shares` are the recovery keys'.
    recovery_seal: bool = False


@dataclass(frozen=True, slots=True)
class InitResult:
    """What `sys/init` hands out once: the unseal key shares and the initial root token."""

    shares: list[bytes] = field(repr=False)
    root_token: str = field(repr=False)
    # Auto-unseal: Vault's recovery key shares (for operations that need a quorum).
    recovery_shares: list[bytes] = field(default_factory=list, repr=False)


class Seal(Protocol):
    """The seal the Core asks whether it may serve; the `sys/` seal endpoints drive it."""

    @property
    def is_sealed(self) -> bool: ...

    def status(self) -> SealStatus: ...

    async def initialize(
        self, shares: int, threshold: int, *, recovery_shares: int = 0, recovery_threshold: int = 0
    ) -> InitResult: ...

    async def unseal(self, key: bytes) -> None: ...

    def reset(self) -> None: ...

    async def seal(self) -> None: ...

    @property
    def quorum(self) -> int:
        """Key shares needed for generate-root (0: this seal has none)."""
        ...

    def check_shares(self, parts: list[bytes]) -> None:
        """`InvalidRequestError` unless `parts` rebuild the seal's key."""
        ...


class FileSeal:
    """The master key comes from a key file or the environment: always unsealed. In gateway
    mode (`gateway=True`) the upstream Vault's own seal guards the data instead."""

    def __init__(self, *, gateway: bool = False) -> None:
        self._gateway = gateway

    @property
    def is_sealed(self) -> bool:
        return False

    def status(self) -> SealStatus:
        """Vault's shape for a server that unsealed itself (one share, no progress)."""
        return SealStatus("shamir", True, False, 1, 1, 0, "")

    async def initialize(
        self, shares: int, threshold: int, *, recovery_shares: int = 0, recovery_threshold: int = 0
    ) -> InitResult:
        # The store initializes itself on first start (`Core.initialize_root_token`).
        raise InvalidRequestError("Vault is already initialized")

    async def unseal(self, key: bytes) -> None:
        return None  # already unsealed: Vault answers with the status

    def reset(self) -> None:
        raise InvalidRequestError("vault is unsealed")

    @property
    def quorum(self) -> int:
        return 0  # no key shares: the key file is the whole key

    def check_shares(self, parts: list[bytes]) -> None:
        raise InvalidRequestError("the file seal has no key shares")

    async def seal(self) -> None:
        if self._gateway:
            raise InvalidRequestError(
                "the upstream Vault's own seal applies in gateway mode: seal it there "
                "(bao operator seal)"
            )
        raise InvalidRequestError(
            "the file seal cannot seal: its key file unseals the store at every start "
            "(serve with --seal shamir to hold the master key in memory only)"
        )
