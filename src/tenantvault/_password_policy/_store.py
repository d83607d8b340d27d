"""Each tenant's password policies: `password_policy/<name>` records of its own space.

As in Vault, a policy belongs to its namespace: an engine of a tenant's mount asks for a
policy by name in that tenant only, so no tenant can name (or learn of) another's.
"""

from __future__ import annotations

from typing import Final

from tenantvault._exceptions import NotFoundError
from tenantvault._password_policy._rules import PasswordPolicy, parse_policy
from tenantvault._records import decode_record, encode_record
from tenantvault.backends._protocol import Backend

__all__ = ["PasswordPolicyStore"]

MOUNT: Final = "sys"
_PREFIX: Final = "password_policy/"


class PasswordPolicyStore:
    """Stored policy documents (as written, like Vault's `HCLPolicy`) per tenant space."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def write(self, tenant: str, name: str, text: str) -> None:
        await self._backend.write(
            tenant, MOUNT, _PREFIX + name, encode_record({"policy": text}), expected_revision=None
        )

    async def read_text(self, tenant: str, name: str) -> str | None:
        """The document as written, or None."""
        try:
            record = await self._backend.read(tenant, MOUNT, _PREFIX + name)
        except NotFoundError:
            return None  # the tenant is gone
        if record is None:
            return None
        return str(decode_record(record.value)["policy"])

    async def read(self, tenant: str, name: str) -> PasswordPolicy | None:
        """The parsed policy, or None if the tenant has none of that name."""
        text = await self.read_text(tenant, name)
        return None if text is None else parse_policy(text)

    async def delete(self, tenant: str, name: str) -> None:
        try:
            await self._backend.delete(tenant, MOUNT, _PREFIX + name)
        except NotFoundError:
            pass

    async def list(self, tenant: str) -> list[str]:
        try:
            return await self._backend.list(tenant, MOUNT, _PREFIX)
        except NotFoundError:
            return []
