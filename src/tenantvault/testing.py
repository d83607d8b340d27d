"""Testing support: operator-only access to the Core behind an open tenantvault.

Tests that inspect or drive a store's internals (its backend, audit broker, token store,
transit scheduler) get them here, deliberately and visibly, never through a public attribute
of a handle: only the handle that `open()` returned holds its Core, a `with_token` handle
holds none.
"""

from __future__ import annotations

from tenantvault._client import TenantVault
from tenantvault._core import Core

__all__ = ["core_of"]


def core_of(tv: TenantVault) -> Core:
    """The Core of the operator's handle (the one `open()` returned); `TypeError` otherwise."""
    core = tv._core
    if core is None:
        raise TypeError("a with_token handle holds no Core: use the handle open() returned")
    return core
