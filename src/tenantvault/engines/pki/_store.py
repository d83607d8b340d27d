"""The records of one PKI mount: issuers, keys, certificates, CRLs, roles and settings.

Everything goes through the mount's `MountStorage`, which seals every value with the mount
key: a CA's private key is stored like any other record and never leaves this module except
to sign (or once, in the answer to an `exported` generation). Serials are stored in Vault's
hyphen form (`certs/17-67-…`), the form its own storage uses.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from tenantvault._exceptions import InvalidRequestError
from tenantvault._records import decode_record, encode_record
from tenantvault.engines._protocol import MountStorage

__all__ = ["PkiStore", "serial_key"]

_ISSUERS: Final = "issuers/"
_KEYS: Final = "keys/"
_CERTS: Final = "certs/"
_REVOKED: Final = "revoked/"
_CRLS: Final = "crls/"
_ROLES: Final = "roles/"
_CONFIG_ISSUERS: Final = "config/issuers"
_CONFIG_KEYS: Final = "config/keys"
_CONFIG_URLS: Final = "config/urls"
_CONFIG_CRL: Final = "config/crl"
_TIDY_STATUS: Final = "tidy-status"
_AUTO_TIDY: Final = "config/auto-tidy"
_HEX: Final = frozenset("0123456789abcdef")


def serial_key(serial: str) -> str:
    """A serial as a caller sends it (colons or hyphens, any case) in its stored form."""
    return serial.strip().lower().replace(":", "-")


def is_serial(text: str) -> bool:
    """Vault's serial path pattern: hex digits with ':' or '-' separators."""
    return bool(text) and all(char in _HEX or char in ":-" for char in text.lower())


class PkiStore:
    """Typed access to one mount's PKI records."""

    __slots__ = ("_storage",)

    def __init__(self, storage: MountStorage) -> None:
        self._storage = storage

    async def _get(self, key: str) -> Any:
        record = await self._storage.read(key)
        return None if record is None else decode_record(record.value)

    async def _put(self, key: str, value: Any, *, expected_revision: int | None = None) -> None:
        await self._storage.write(key, encode_record(value), expected_revision=expected_revision)

    async def _get_versioned(self, key: str) -> tuple[dict[str, Any] | None, int]:
        """A record and the revision to quote when changing it (0: absent)."""
        record = await self._storage.read(key)
        if record is None:
            return None, 0
        return dict(decode_record(record.value)), record.revision

    # -- issuers and keys ------------------------------------------------------------------

    async def issuer_ids(self) -> list[str]:
        """The ids of the mount's issuers, sorted."""
        return sorted(await self._storage.list(_ISSUERS))

    async def issuer(self, issuer_id: str) -> dict[str, Any] | None:
        """One issuer record by id; None if there is none."""
        value = await self._get(_ISSUERS + issuer_id)
        return dict(value) if value is not None else None

    async def issuers(self) -> list[dict[str, Any]]:
        """Every issuer record, by id order."""
        found = []
        for issuer_id in await self.issuer_ids():
            issuer = await self.issuer(issuer_id)
            if issuer is not None:
                found.append(issuer)
        return found

    async def put_issuer(self, issuer: dict[str, Any]) -> None:
        """Store an issuer record (new or changed)."""
        await self._put(_ISSUERS + issuer["issuer_id"], issuer)

    async def resolve_issuer(self, reference: str) -> dict[str, Any] | None:
        """An issuer by id, by name, or `default`; None if there is none by that reference."""
        if reference == "default":
            config = await self.issuers_config()
            if not config["default"]:
                return None
            return await self.issuer(config["default"])
        for issuer in await self.issuers():
            if reference in (issuer["issuer_id"], issuer["issuer_name"]) and reference:
                return issuer
        return None

    async def key_ids(self) -> list[str]:
        """The ids of the mount's keys (issuers' and pending intermediates')."""
        return sorted(await self._storage.list(_KEYS))

    async def key(self, key_id: str) -> dict[str, Any] | None:
        """One key record (with its private key PEM); None if there is none."""
        value = await self._get(_KEYS + key_id)
        return dict(value) if value is not None else None

    async def new_key(self, *, key_type: str, private_key_pem: str, key_name: str) -> str:
        """Store a new private key; returns its id."""
        key_id = str(uuid.uuid4())
        await self.put_key(
            {
                "key_id": key_id,
                "key_name": key_name,
                "key_type": key_type,
                "private_key": private_key_pem,
            }
        )
        # OpenBao's rule: the first key (or any, while none is the default) becomes the default.
        config = await self.keys_config()
        if not config["default"]:
            await self.put_keys_config({"default": key_id})
        return key_id

    async def put_key(self, key: dict[str, Any]) -> None:
        """Store a key record (new or renamed)."""
        await self._put(_KEYS + key["key_id"], key)

    async def delete_key(self, key_id: str) -> None:
        """Forget a key (no error if absent)."""
        await self._storage.delete(_KEYS + key_id)

    async def resolve_key(self, reference: str) -> dict[str, Any] | None:
        """A key by id, by name, or `default`; None if there is none by that reference."""
        if reference == "default":
            default = (await self.keys_config())["default"]
            return await self.key(default) if default else None
        for key_id in await self.key_ids():
            key = await self.key(key_id)
            if key is not None and reference and reference in (key_id, key["key_name"]):
                return key
        return None

    async def delete_issuer(self, issuer_id: str) -> None:
        """Forget an issuer and its CRL (no error if absent)."""
        await self._storage.delete(_ISSUERS + issuer_id)
        await self._storage.delete(_CRLS + issuer_id)

    async def check_issuer_name(self, name: str) -> None:
        """Vault's refusal of a second issuer with the same name."""
        if name and any(issuer["issuer_name"] == name for issuer in await self.issuers()):
            raise InvalidRequestError("issuer name already in use")

    # -- settings --------------------------------------------------------------------------

    async def issuers_config(self) -> dict[str, Any]:
        """`config/issuers`, with Vault's defaults when never written."""
        value = await self._get(_CONFIG_ISSUERS)
        return dict(value) if value else {"default": "", "default_follows_latest_issuer": False}

    async def put_issuers_config(self, config: dict[str, Any]) -> None:
        """Store `config/issuers`."""
        await self._put(_CONFIG_ISSUERS, config)

    async def keys_config(self) -> dict[str, Any]:
        """`config/keys`: the default key's id ("" when there is none)."""
        value = await self._get(_CONFIG_KEYS)
        return dict(value) if value else {"default": ""}

    async def put_keys_config(self, config: dict[str, Any]) -> None:
        """Store `config/keys`."""
        await self._put(_CONFIG_KEYS, config)

    async def urls(self) -> dict[str, Any]:
        """`config/urls`, with Vault's defaults when never written."""
        value = await self._get(_CONFIG_URLS)
        defaults: dict[str, Any] = {
            "crl_distribution_points": [],
            "delta_crl_distribution_points": [],
            "enable_templating": False,
            "issuing_certificates": [],
            "ocsp_servers": [],
        }
        return {**defaults, **(value or {})}

    async def put_urls(self, urls: dict[str, Any]) -> None:
        """Store `config/urls`."""
        await self._put(_CONFIG_URLS, urls)

    async def crl_config(self) -> dict[str, Any] | None:
        """`config/crl` as written (`_crl_config` fills OpenBao's defaults); None if never."""
        value = await self._get(_CONFIG_CRL)
        return dict(value) if value else None

    async def put_crl_config(self, config: dict[str, Any]) -> None:
        """Store `config/crl`."""
        await self._put(_CONFIG_CRL, config)

    # -- certificates and revocation -------------------------------------------------------

    async def cert(self, serial: str) -> dict[str, Any] | None:
        """A stored certificate record by serial (either form); None if there is none."""
        value = await self._get(_CERTS + serial_key(serial))
        return dict(value) if value is not None else None

    async def cert_versioned(self, serial: str) -> tuple[dict[str, Any] | None, int]:
        """A stored certificate record and its revision (for check-and-set); (None, 0)."""
        return await self._get_versioned(_CERTS + serial_key(serial))

    async def put_cert(
        self, serial: str, record: dict[str, Any], *, expected_revision: int | None = None
    ) -> None:
        """Store a certificate record under its serial (`ConflictError` if `expected_revision`
        is given and the record moved on)."""
        await self._put(_CERTS + serial_key(serial), record, expected_revision=expected_revision)

    async def delete_cert(self, serial: str) -> None:
        """Forget a stored certificate (tidy)."""
        await self._storage.delete(_CERTS + serial_key(serial))

    async def cert_serials(self) -> list[str]:
        """Every stored certificate's serial, in hyphen form."""
        return sorted(await self._storage.list(_CERTS))

    async def revoked_serials(self) -> list[str]:
        """The serials marked revoked, hyphen form."""
        return sorted(await self._storage.list(_REVOKED))

    async def mark_revoked(self, serial: str, issuer_id: str) -> None:
        """Mark a serial revoked (the CRL lists the marked serials)."""
        await self._put(_REVOKED + serial_key(serial), {"issuer_id": issuer_id})

    async def unmark_revoked(self, serial: str) -> None:
        """Drop a revocation mark (tidy of an expired certificate)."""
        await self._storage.delete(_REVOKED + serial_key(serial))

    async def crl(self, issuer_id: str) -> dict[str, Any] | None:
        """The issuer's current CRL record (number and PEM); None before the first."""
        value = await self._get(_CRLS + issuer_id)
        return dict(value) if value is not None else None

    async def crl_versioned(self, issuer_id: str) -> tuple[dict[str, Any] | None, int]:
        """The issuer's CRL record and its revision (for check-and-set); (None, 0)."""
        return await self._get_versioned(_CRLS + issuer_id)

    async def put_crl(
        self, issuer_id: str, record: dict[str, Any], *, expected_revision: int
    ) -> None:
        """Store the issuer's CRL record if it is still at `expected_revision` (0: absent);
        `ConflictError` otherwise, so two writers never publish the same CRL number."""
        await self._put(_CRLS + issuer_id, record, expected_revision=expected_revision)

    async def is_marked_revoked(self, serial: str) -> bool:
        """Whether a serial carries its revocation mark (the CRL lists marked serials)."""
        return await self._storage.read(_REVOKED + serial_key(serial)) is not None

    # -- roles and tidy --------------------------------------------------------------------

    async def role(self, name: str) -> dict[str, Any] | None:
        """A role by name; None if there is none."""
        value = await self._get(_ROLES + name)
        return dict(value) if value is not None else None

    async def put_role(self, name: str, role: dict[str, Any]) -> None:
        """Store a role."""
        await self._put(_ROLES + name, role)

    async def delete_role(self, name: str) -> None:
        """Delete a role (no error if absent)."""
        await self._storage.delete(_ROLES + name)

    async def role_names(self) -> list[str]:
        """The role names, sorted."""
        return sorted(await self._storage.list(_ROLES))

    async def tidy_status(self) -> dict[str, Any] | None:
        """What the last tidy did; None before the first."""
        value = await self._get(_TIDY_STATUS)
        return dict(value) if value is not None else None

    async def put_tidy_status(self, status: dict[str, Any]) -> None:
        """Store the last tidy's report."""
        await self._put(_TIDY_STATUS, status)

    async def auto_tidy(self) -> tuple[dict[str, Any] | None, int]:
        """The auto-tidy config (with its last run) and its revision; (None, 0) if unset."""
        return await self._get_versioned(_AUTO_TIDY)

    async def put_auto_tidy(self, config: dict[str, Any], *, expected_revision: int) -> None:
        """Store the auto-tidy config if it is still at `expected_revision` (0: absent)."""
        await self._put(_AUTO_TIDY, config, expected_revision=expected_revision)
