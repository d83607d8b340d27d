"""Importing CA material into a pki mount: `issuers/import/bundle|cert`, `config/ca`,
`intermediate/set-signed` (one importer, as in OpenBao) and `keys/import`.

A bundle is read block by block as OpenBao reads it: certificates become issuers (CA
certificates only; one already present is reported as existing), CRL and EC parameter blocks
are skipped, every other block is a private key (refused where the path takes certificates
only). An imported key is stored sealed like a generated one, and links to every keyless
issuer with its public key; a new issuer links to the stored key with its public key. After
an import the issuers' chains are rebuilt, since a new root completes older intermediates'.
"""

from __future__ import annotations

import re
from typing import Any, Final

from cryptography import x509

from tenantvault._exceptions import InvalidRequestError
from tenantvault._fields import get_str
from tenantvault._request import Response
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call
from tenantvault.engines.pki._authority import Authorities, rebuild_chains
from tenantvault.engines.pki._common import AIA_WARNING, USAGE
from tenantvault.engines.pki._keys import key_pem, key_type_of, load_key, public_half
from tenantvault.engines.pki._store import PkiStore
from tenantvault.engines.pki._x509 import certificate_pem, public_key_of, same_public_key

__all__ = ["KEY_NAME", "Imports", "check_key_name"]

_BLOCK: Final = re.compile(r"-----BEGIN ([^\r\n]*?)-----\r?\n(.*?)-----END \1-----", re.S)
_CERTIFICATE_BLOCKS: Final = frozenset({"CERTIFICATE", "X509 CERTIFICATE"})
_SKIPPED_BLOCKS: Final = frozenset({"CRL", "X509 CRL", "EC PARAMS", "EC PARAMETERS"})
# OpenBao's `framework.GenericNameRegex` for issuer and key names (Go's ASCII \w).
KEY_NAME: Final = re.compile(r"\w(?:[\w.-]*\w)?", re.ASCII)
_TOO_SHORT: Final = (
    "provided data for import was too short; perhaps a path was passed to the API rather "
    "than the contents of a PEM file"
)
_NO_DEFAULT_KEY: Final = (
    "The default issuer has no key associated with it. Some operations like issuing "
    "certificates and signing CRLs will be unavailable with the requested default issuer "
    "until a key is imported or the default issuer is changed."
)
_MANY_WITH_KEYS: Final = (
    "The imported bundle contained multiple certs matching keys, the default issuer that was "
    "selected should be verified and manually changed if incorrect."
)


def _blocks(text: str) -> list[tuple[str, str]]:
    """(label, block text) of each PEM block; OpenBao's refusal for anything else."""
    found: list[tuple[str, str]] = []
    rest = text
    while rest.strip():
        match = _BLOCK.search(rest)
        if match is None:
            raise InvalidRequestError(
                f"error when parsing block {len(found) + 1}: invalid PEM data"
            )
        found.append((match.group(1), match.group(0)))
        rest = rest[match.end() :]
    return found


async def check_key_name(store: PkiStore, name: str) -> None:
    """OpenBao's checks of a new key's `key_name` (reserved word, characters, uniqueness)."""
    if not name:
        return
    if name.lower() == "default":
        raise InvalidRequestError("reserved keyword 'default' can not be used as key name")
    if not KEY_NAME.fullmatch(name):
        raise InvalidRequestError("key name contained invalid characters")
    if await store.resolve_key(name) is not None:
        raise InvalidRequestError("key name already in use")


class Imports(Authorities):
    """The import endpoints (issuers with or without keys, and single keys)."""

    async def import_issuers(
        self, call: Call, store: PkiStore, mount: Mount, path: str
    ) -> Response:
        """`issuers/import/<bundle|cert>`, `config/ca`, `intermediate/set-signed`: import
        the certificates (and, for `bundle` and `config/ca`, keys) of a PEM bundle."""
        # Each path has OpenBao's fields: set-signed only `certificate`, config/ca only
        # `pem_bundle`, the issuers/import paths both.
        bundle = certificate = ""
        if path != "set-signed":
            bundle = get_str(call.data, "pem_bundle", default="") or ""
        if path != "config/ca":
            certificate = get_str(call.data, "certificate", default="") or ""
        keys_allowed = path in ("bundle", "config/ca")
        if not bundle and not certificate:
            raise InvalidRequestError("'pem_bundle' and 'certificate' parameters were empty")
        if bundle and certificate:
            raise InvalidRequestError(
                "'pem_bundle' and 'certificate' parameters were both provided"
            )
        if certificate:
            keys_allowed, bundle = False, certificate
        if len(bundle) < 75:
            raise InvalidRequestError(_TOO_SHORT)
        blocks = _blocks(bundle)
        certificates = [text for label, text in blocks if label in _CERTIFICATE_BLOCKS]
        keys = [
            text
            for label, text in blocks
            if label not in _CERTIFICATE_BLOCKS and label not in _SKIPPED_BLOCKS
        ]
        if keys and not keys_allowed:
            raise InvalidRequestError(
                "private keys found in the PEM bundle but not allowed by the path; use "
                "/issuers/import/bundle"
            )
        created_keys: list[str] = []
        existing_keys: list[str] = []
        for index, text in enumerate(keys):
            try:
                record, existed = await self._import_key(store, text, name="")
            except InvalidRequestError as error:
                raise InvalidRequestError(f"Error parsing key {index}: {error}") from None
            (existing_keys if existed else created_keys).append(record["key_id"])
        created: list[str] = []
        existing: list[str] = []
        mapping: dict[str, str] = {}
        for index, text in enumerate(certificates):
            issuer, existed = await self._import_issuer(store, index, text)
            mapping[issuer["issuer_id"]] = issuer["key_id"]
            (existing if existed else created).append(issuer["issuer_id"])
        warnings = await self._import_warnings(store, created, mapping)
        if created or created_keys:
            await rebuild_chains(store)
        for issuer in await store.issuers():
            if issuer["key_id"] and (
                issuer["issuer_id"] in created or issuer["key_id"] in created_keys
            ):
                await self._rebuild_crl(store, issuer)
        return Response(
            data={
                "existing_issuers": existing or None,
                "existing_keys": existing_keys or None,
                "imported_issuers": created or None,
                "imported_keys": created_keys or None,
                "mapping": dict(sorted(mapping.items())),
            },
            warnings=warnings or None,
        )

    async def _import_warnings(
        self, store: PkiStore, created: list[str], mapping: dict[str, str]
    ) -> list[str]:
        """OpenBao's notes after an import: the default issuer's state, then the AIA hint."""
        warnings: list[str] = []
        config = await store.issuers_config()
        with_keys = [issuer_id for issuer_id in created if mapping[issuer_id]]
        if created and config["default_follows_latest_issuer"]:
            if len(with_keys) == 1:
                config["default"] = with_keys[0]
                await store.put_issuers_config(config)
            elif len(with_keys) > 1:
                warnings.append(
                    "Default issuer left unchanged: could not select new issuer automatically "
                    "as multiple imported issuers had key material in Vault."
                )
        default = config["default"]
        if default and default in mapping and not mapping[default]:
            warnings.append(_NO_DEFAULT_KEY)
        if default and len(created) > 1 and len(with_keys) > 1 and default in created:
            warnings.append(_MANY_WITH_KEYS)
        if not self._has_aia(await store.urls()):
            warnings.append(AIA_WARNING)
        return warnings

    async def _import_issuer(
        self, store: PkiStore, index: int, text: str
    ) -> tuple[dict[str, Any], bool]:
        """One certificate as an issuer: (issuer record, whether it was already there)."""
        try:
            certificate = x509.load_pem_x509_certificate(text.encode("utf-8"))
        except ValueError as error:
            raise InvalidRequestError(f"Error parsing issuer {index}: {error}\n{text}\n") from None
        try:
            constraints = certificate.extensions.get_extension_for_class(
                x509.BasicConstraints
            ).value
            is_ca = constraints.ca
        except x509.ExtensionNotFound:
            is_ca = False
        pem = certificate_pem(certificate)
        if not is_ca:
            # OpenBao quotes the block as re-encoded, with its final newline.
            raise InvalidRequestError(
                f"Error parsing issuer {index}: Refusing to import non-CA certificate\n{pem}\n"
            )
        for issuer in await store.issuers():
            if issuer["certificate"].rstrip("\n") == pem.rstrip("\n"):
                return issuer, True
        public = public_key_of(certificate)
        key_id = ""
        for candidate in await store.key_ids():
            record = await store.key(candidate)
            if record is not None and same_public_key(
                public_half(load_key(record["private_key"])), public
            ):
                key_id = candidate
                break
        issuer = await self._new_issuer(
            store, certificate, key_id=key_id, issuer_name="", usage=_usage_of(certificate)
        )
        return issuer, False

    async def _import_key(
        self, store: PkiStore, text: str, *, name: str
    ) -> tuple[dict[str, Any], bool]:
        """Store a PEM private key (sealed, PKCS#8) unless the mount has it: (id, existed).
        A new key becomes the key of every keyless issuer with its public key."""
        try:
            key = load_key(text.strip() + "\n")
        except (ValueError, TypeError, InvalidRequestError):
            raise InvalidRequestError(
                "unsupported private key type within pem bundle"
                if "PRIVATE KEY" in text
                else "failed to parse PEM block"
            ) from None
        public = public_half(key)
        for key_id in await store.key_ids():
            record = await store.key(key_id)
            if record is not None and same_public_key(
                public_half(load_key(record["private_key"])), public
            ):
                return record, True
        await check_key_name(store, name)
        key_id = await store.new_key(
            key_type=key_type_of(key), private_key_pem=key_pem(key, pkcs8=True), key_name=name
        )
        config = await store.issuers_config()
        for issuer in await store.issuers():
            if issuer["key_id"]:
                continue
            certificate = x509.load_pem_x509_certificate(issuer["certificate"].encode())
            if same_public_key(public_key_of(certificate), public):
                issuer["key_id"] = key_id
                await store.put_issuer(issuer)
                if not config["default"]:
                    config["default"] = issuer["issuer_id"]
                    await store.put_issuers_config(config)
        return {"key_id": key_id, "key_name": name, "key_type": key_type_of(key)}, False

    async def import_key(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`keys/import`: one PEM private key, optionally named."""
        bundle = get_str(call.data, "pem_bundle", default="") or ""
        name = (get_str(call.data, "key_name", default="") or "").strip()
        await check_key_name(store, name)
        if len(bundle) < 64:
            raise InvalidRequestError(_TOO_SHORT)
        blocks = _blocks(bundle)
        if len(blocks) != 1:
            raise InvalidRequestError(
                "only a single key can be present within the pem_bundle for importing"
            )
        record, existed = await self._import_key(store, blocks[0][1], name=name)
        if not existed:
            for issuer in await store.issuers():
                if issuer["key_id"] == record["key_id"]:
                    await self._rebuild_crl(store, issuer)
        return Response(
            data={
                "key_id": record["key_id"],
                "key_name": record["key_name"],
                "key_type": record["key_type"],
            },
            warnings=["Key already imported, use key/ endpoint to update name."]
            if existed
            else None,
        )


def _usage_of(certificate: x509.Certificate) -> str:
    """An imported issuer's usages: all, less CRL signing if its key usage lacks cRLSign."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return USAGE.replace("crl-signing,", "")
    return USAGE if usage.crl_sign else USAGE.replace("crl-signing,", "")
