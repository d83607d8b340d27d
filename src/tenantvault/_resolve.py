"""`tenantvault.resolve("tv://…")`: one reference's value, for scripts and MCP servers written
in Python, read through the same client as everything else (`open(address, token=…)`)."""

from __future__ import annotations

import asyncio
import json
import os

from tenantvault._client import open as open_tenantvault
from tenantvault._exceptions import ConfigurationError, NotFoundError
from tenantvault._refs import parse_reference

__all__ = ["aresolve", "resolve"]


async def aresolve(
    reference: str,
    *,
    address: str | None = None,
    token: str | None = None,
    namespace: str | None = None,
) -> str:
    """The value a `tv://` reference names (JSON text when the field is not a string).

    `address`, `token` and `namespace` default to VAULT_ADDR, VAULT_TOKEN and VAULT_NAMESPACE,
    read now (never at import); a reference's own `?namespace=` wins over `namespace`.
    """
    ref = parse_reference(reference)
    address = address or os.environ.get("VAULT_ADDR")
    token = token or os.environ.get("VAULT_TOKEN")
    if not address or not token:
        raise ConfigurationError("resolve needs address= and token= (or VAULT_ADDR, VAULT_TOKEN)")
    tenant = ref.namespace or namespace or os.environ.get("VAULT_NAMESPACE") or None
    async with open_tenantvault(address, token=token) as tv:
        space = tv.tenant(tenant) if tenant else tv.root
        secret = await space.kv_at(ref.mount).get(ref.path, version=ref.version or 0)
    if ref.field not in secret.data:
        raise NotFoundError(f"{ref}: the secret has no field {ref.field!r}")
    value = secret.data[ref.field]
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def resolve(
    reference: str,
    *,
    address: str | None = None,
    token: str | None = None,
    namespace: str | None = None,
) -> str:
    """`aresolve` for code without an event loop (it runs one); inside one, await `aresolve`."""
    return asyncio.run(aresolve(reference, address=address, token=token, namespace=namespace))
