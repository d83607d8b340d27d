"""Deleting CA material from a pki mount: `DELETE issuer/<ref>` and `DELETE root` (all).

The certificates an issuer signed stay in the store (they can still be read, listed and
revoked), as in OpenBao; the issuer's CRL goes with it, and the other issuers' chains are
rebuilt without it. OpenBao's warnings say which roles named the deleted issuer.
"""

from __future__ import annotations

from typing import Final

from tenantvault._request import Response
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call
from tenantvault.engines.pki._authority import rebuild_chains
from tenantvault.engines.pki._common import PkiHandlers
from tenantvault.engines.pki._store import PkiStore

__all__ = ["Removals"]

_DELETE_ROOT: Final = (
    "DELETE /root deletes all keys and issuers; prefer the new DELETE /key/:key_ref and "
    "DELETE /issuer/:issuer_ref for finer granularity, unless removal of all keys and issuers "
    "is desired."
)


async def _role_references(store: PkiStore, reference: str, warnings: list[str]) -> None:
    """OpenBao's note when roles name an issuer by `reference` (their `issuer_ref`)."""
    count = 0
    for name in await store.role_names():
        role = await store.role(name)
        if role is not None and role.get("issuer_ref") == reference:
            count += 1
    if count:
        warnings.append(f"{count} roles reference {reference}")


class Removals(PkiHandlers):
    """`DELETE issuer/<ref>` and `DELETE root`."""

    async def delete_issuer(
        self, call: Call, store: PkiStore, mount: Mount, reference: str
    ) -> Response:
        """`DELETE issuer/<ref>`: forget one issuer (its key stays); 200 also when there is
        none, as OpenBao answers."""
        issuer = await store.resolve_issuer(reference)
        if issuer is None:
            return Response()
        issuer_id = issuer["issuer_id"]
        warnings: list[str] = []
        if issuer["issuer_name"]:
            await _role_references(store, issuer["issuer_name"], warnings)
        await _role_references(store, issuer_id, warnings)
        config = await store.issuers_config()
        if config["default"] == issuer_id:
            config["default"] = ""
            await store.put_issuers_config(config)
            warnings.append(
                f"Deleted issuer {issuer_id} (via issuer_ref {reference}); this was configured "
                "as the default issuer. Operations without an explicit issuer will not work "
                "until a new default is configured."
            )
            await _role_references(store, "default", warnings)
        await store.delete_issuer(issuer_id)
        await rebuild_chains(store)
        return Response(warnings=warnings or None)

    async def delete_root(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`DELETE root`: forget every issuer and every key of the mount."""
        config = await store.issuers_config()
        if config["default"]:
            config["default"] = ""
            await store.put_issuers_config(config)
        for issuer_id in await store.issuer_ids():
            await store.delete_issuer(issuer_id)
        await store.put_keys_config({"default": ""})
        for key_id in await store.key_ids():
            await store.delete_key(key_id)
        return Response(warnings=[_DELETE_ROOT])
