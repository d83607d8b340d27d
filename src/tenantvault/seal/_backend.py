"""The backend of a sealed server: every verb answers 503 `Vault is sealed`.

The sealed Core is built over it so that, should any code path get past the Core's seal gate,
it still reaches no store (there is none open: the master key is not in memory).
"""

from __future__ import annotations

from tenantvault.backends._protocol import Record
from tenantvault.seal._seal import SealedError

__all__ = ["SealedBackend"]


class SealedBackend:
    """A `Backend` that holds nothing and refuses everything."""

    @property
    def name(self) -> str:
        return "sealed"

    def __repr__(self) -> str:
        return "SealedBackend()"

    async def create_tenant(self, tenant: str) -> None:
        raise SealedError()

    async def delete_tenant(self, tenant: str) -> None:
        raise SealedError()

    async def list_tenants(self) -> list[str]:
        raise SealedError()

    async def has_tenant(self, tenant: str) -> bool:
        raise SealedError()

    async def read(self, tenant: str, mount: str, key: str) -> Record | None:
        raise SealedError()

    async def write(
        self, tenant: str, mount: str, key: str, value: bytes, *, expected_revision: int | None
    ) -> int:
        raise SealedError()

    async def delete(
        self, tenant: str, mount: str, key: str, *, expected_revision: int | None = None
    ) -> bool:
        raise SealedError()

    async def list(self, tenant: str, mount: str, prefix: str) -> list[str]:
        raise SealedError()

    async def aclose(self) -> None:
        return None
