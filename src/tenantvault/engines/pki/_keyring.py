"""The keys of a pki mount as OpenBao's key endpoints show them: `LIST keys`, `key/<ref>`
(read, rename, delete) and `config/keys` (the default key). No answer carries a private key."""

from __future__ import annotations

from typing import Any

from cryptography import x509

from tenantvault._exceptions import InvalidRequestError, NotFoundError
from tenantvault._fields import get_str
from tenantvault._request import Response
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call
from tenantvault.engines.pki._common import PkiHandlers, PkiServerError
from tenantvault.engines.pki._import import KEY_NAME
from tenantvault.engines.pki._keys import load_key, public_half
from tenantvault.engines.pki._store import PkiStore

__all__ = ["Keyring"]


async def _key_or_fail(store: PkiStore, reference: str) -> dict[str, Any]:
    key = await store.resolve_key(reference)
    if key is None:
        if reference == "default":
            raise PkiServerError("no default key currently configured")
        raise PkiServerError(f"unable to find PKI key for reference: {reference}")
    return key


def _subject_key_id(key: dict[str, Any]) -> str:
    """The key's subject key identifier (SHA-1 of its public key bits), colon hex."""
    digest = x509.SubjectKeyIdentifier.from_public_key(
        public_half(load_key(key["private_key"]))
    ).digest
    return ":".join(f"{byte:02x}" for byte in digest)


class Keyring(PkiHandlers):
    """`keys`, `key/<ref>` and `config/keys`."""

    async def list_keys(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`LIST keys`: every key's id, name and whether it is the default."""
        default = (await store.keys_config())["default"]
        info: dict[str, Any] = {}
        for key_id in await store.key_ids():
            key = await store.key(key_id)
            if key is not None:
                info[key_id] = {"is_default": key_id == default, "key_name": key["key_name"]}
        if not info:
            raise NotFoundError()
        return Response(data={"key_info": info, "keys": list(info)})

    async def read_key(self, call: Call, store: PkiStore, mount: Mount, reference: str) -> Response:
        """`GET key/<ref>`: a key's id, name, type and subject key id."""
        key = await _key_or_fail(store, reference)
        return Response(
            data={
                "key_id": key["key_id"],
                "key_name": key["key_name"],
                "key_type": key["key_type"],
                "subject_key_id": _subject_key_id(key),
            }
        )

    async def write_key(
        self, call: Call, store: PkiStore, mount: Mount, reference: str
    ) -> Response:
        """`POST key/<ref>`: rename a key (an empty name removes it, with OpenBao's note)."""
        key = await _key_or_fail(store, reference)
        name = get_str(call.data, "key_name", default="") or ""
        if name and not KEY_NAME.fullmatch(name):
            raise InvalidRequestError("new key name outside of valid character limits")
        if name != key["key_name"]:
            key["key_name"] = name
            await store.put_key(key)
        warnings = None
        if not name:
            warnings = [
                "Name successfully deleted, you will now need to reference this key by it's "
                f"Id: {key['key_id']}"
            ]
        return Response(
            data={"key_id": key["key_id"], "key_name": name, "key_type": key["key_type"]},
            warnings=warnings,
        )

    async def delete_key(
        self, call: Call, store: PkiStore, mount: Mount, reference: str
    ) -> Response:
        """`DELETE key/<ref>`: forget a key no issuer uses (204 also when there is none)."""
        key = await store.resolve_key(reference)
        if key is None:
            return Response.no_content()
        key_id = key["key_id"]
        for issuer in await store.issuers():
            if issuer["key_id"] == key_id:
                raise InvalidRequestError(
                    f"Failed to Delete Key.  Key in Use by Issuer: {issuer['issuer_id']}"
                )
        config = await store.keys_config()
        was_default = config["default"] == key_id
        if was_default:
            await store.put_keys_config({"default": ""})
        await store.delete_key(key_id)
        if not was_default:
            return Response.no_content()
        return Response(
            warnings=[
                f"Deleted key {key_id} (via key_ref {reference}); this was configured as the "
                "default key. Operations without an explicit key will not work until a new "
                "default is configured."
            ]
        )

    async def read_keys_config(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`GET config/keys`: the default key's id."""
        return Response(data=await store.keys_config())

    async def write_keys_config(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`POST config/keys`: set the default key by id or name."""
        reference = (get_str(call.data, "default", default="") or "").strip()
        if not reference or reference == "default":
            raise InvalidRequestError(
                "Invalid key specification; must be non-empty and can't be 'default'."
            )
        key = await store.resolve_key(reference)
        if key is None:
            # OpenBao's text says "issuer" here (sic).
            raise InvalidRequestError(
                "Error resolving issuer reference: unable to find PKI key for reference: "
                f"{reference}"
            )
        config = {"default": key["key_id"]}
        await store.put_keys_config(config)
        return Response(data=config)
