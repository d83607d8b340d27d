"""Certificate authorities of a pki mount: generating roots and intermediates, signing and
installing intermediates, the issuers and their settings (`config/issuers`, `config/urls`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
)
from tenantvault._fields import get_bool, get_int, get_str
from tenantvault._request import Response
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call
from tenantvault.engines.pki._common import (
    AIA_WARNING,
    INTERMEDIATE_AIA,
    LEAF_BEHAVIORS,
    NO_SUBJECT,
    NOT_BEFORE_SKEW,
    URL_FIELDS,
    USAGE,
    PkiHandlers,
    mount_ttls,
    unix,
)
from tenantvault.engines.pki._issuing import parse_ip, resolve_ttl
from tenantvault.engines.pki._keys import (
    PrivateKey,
    check_csr_key,
    generate_key,
    key_pem,
    normalize_key,
    public_half,
    signature_algorithm_name,
)
from tenantvault.engines.pki._names import is_hostname
from tenantvault.engines.pki._roles import string_list
from tenantvault.engines.pki._store import PkiStore
from tenantvault.engines.pki._x509 import (
    Names,
    Subject,
    Usage,
    build_certificate,
    build_csr,
    certificate_pem,
    format_serial,
    load_certificates,
    load_csr,
    public_key_of,
)

__all__ = ["Authorities", "rebuild_chains"]


def _ca_ttl(data: Mapping[str, Any], mount: Mount, warnings: list[str]) -> int:
    """The TTL of a CA operation (root, intermediate signing): no role, the mount's limits."""
    default, maximum = mount_ttls(mount)
    return resolve_ttl(
        data,
        role_ttl=0,
        role_max_ttl=0,
        mount_default=default,
        mount_max=maximum,
        warnings=warnings,
    )


class Authorities(PkiHandlers):
    """The CA-building and issuer endpoints."""

    @staticmethod
    def _subject(data: Mapping[str, Any]) -> Subject:
        def listed(name: str) -> tuple[str, ...]:
            return tuple(string_list(data, name) or ())

        return Subject(
            common_name=get_str(data, "common_name", default="") or "",
            country=listed("country"),
            province=listed("province"),
            locality=listed("locality"),
            street_address=listed("street_address"),
            postal_code=listed("postal_code"),
            organization=listed("organization"),
            ou=listed("ou"),
            serial_number=get_str(data, "serial_number", default="") or "",
        )

    @staticmethod
    def _ca_names(data: Mapping[str, Any], common_name: str) -> Names:

        dns = [name for name in string_list(data, "alt_names") or [] if "@" not in name]
        emails = [name for name in string_list(data, "alt_names") or [] if "@" in name]
        if common_name and not get_bool(data, "exclude_cn_from_sans", default=False):
            if "@" in common_name:
                emails.insert(0, common_name)
            elif is_hostname(common_name) and common_name not in dns:
                dns.insert(0, common_name)
        ips = [parse_ip(text) for text in string_list(data, "ip_sans") or []]
        return Names(
            dns=tuple(dns),
            emails=tuple(emails),
            ips=tuple(ips),
            uris=tuple(string_list(data, "uri_sans") or ()),
        )

    async def _new_issuer(
        self,
        store: PkiStore,
        certificate: x509.Certificate,
        *,
        key_id: str,
        issuer_name: str,
        signature_algorithm: str = "",
        usage: str = USAGE,
    ) -> dict[str, Any]:
        """Record an issuer; it becomes the default when the mount has none (Vault's rule)."""
        issuer: dict[str, Any] = {
            "issuer_id": str(uuid.uuid4()),
            "issuer_name": issuer_name,
            "key_id": key_id,
            "certificate": certificate_pem(certificate),
            "ca_chain": [],
            "leaf_not_after_behavior": "err",
            "manual_chain": None,
            "usage": usage,
            "revocation_signature_algorithm": signature_algorithm,
        }
        issuer["ca_chain"] = await self._chain(store, certificate, extra=[issuer])
        await store.put_issuer(issuer)
        config = await store.issuers_config()
        if key_id and (not config["default"] or config["default_follows_latest_issuer"]):
            config["default"] = issuer["issuer_id"]
            await store.put_issuers_config(config)
        return issuer

    @staticmethod
    async def _chain(
        store: PkiStore, certificate: x509.Certificate, *, extra: list[dict[str, Any]]
    ) -> list[str]:
        """The certificate and its issuers found in the mount, leaf first (Vault's ca_chain)."""
        known = [
            load_certificates(item["certificate"])[0]
            for item in [*await store.issuers(), *extra]
            if load_certificates(item["certificate"])
        ]
        chain = [certificate]
        current = certificate
        while current.issuer != current.subject and len(chain) < 10:
            parent = next(
                (c for c in known if c.subject == current.issuer and c not in chain), None
            )
            if parent is None:
                break
            chain.append(parent)
            current = parent
        return [certificate_pem(item) + "\n" for item in chain]

    def _kind(self, kind: str) -> bool:
        """`internal` or `exported` (whether the key is returned), or Vault's refusal."""
        if kind not in ("internal", "exported"):
            raise InvalidRequestError(
                'the "exported" path parameter must be "internal", "existing", exported" or "kms"'
            )
        return kind == "exported"

    @staticmethod
    def _new_key_of(data: Mapping[str, Any]) -> tuple[str, PrivateKey]:
        key_type, bits = normalize_key(
            get_str(data, "key_type", default="rsa") or "rsa",
            get_int(data, "key_bits", default=0) or 0,
        )
        if key_type == "any":
            raise InvalidRequestError("unknown key type any")
        return key_type, generate_key(key_type, bits)

    async def root_generate(self, call: Call, store: PkiStore, mount: Mount, kind: str) -> Response:
        """`root/generate/<internal|exported>`: a new self-signed root issuer and its key."""
        data = call.data
        exported = self._kind(kind)
        issuer_name = get_str(data, "issuer_name", default="") or ""
        await store.check_issuer_name(issuer_name)
        warnings: list[str] = []
        ttl = _ca_ttl(data, mount, warnings)
        now = self._now()
        path_length = get_int(data, "max_path_length", default=-1, minimum=-1)
        key_type, key = self._new_key_of(data)
        subject = self._subject(data)
        urls = await store.urls()
        certificate = build_certificate(
            subject=subject,
            names=self._ca_names(data, subject.common_name),
            public_key=public_half(key),
            issuer=None,
            signing_key=key,
            serial=x509.random_serial_number(),
            not_before=now - NOT_BEFORE_SKEW,
            not_after=now + timedelta(seconds=ttl),
            usage=Usage(
                is_ca=True, max_path_length=None if path_length in (None, -1) else path_length
            ),
            urls=self._urls(urls),
        )
        key_name = get_str(data, "key_name", default="") or ""
        key_id = await store.new_key(
            key_type=key_type, private_key_pem=key_pem(key, pkcs8=True), key_name=key_name
        )
        issuer = await self._new_issuer(
            store,
            certificate,
            key_id=key_id,
            issuer_name=issuer_name,
            signature_algorithm=signature_algorithm_name(key),
        )
        await self._store_issued(store, certificate, issuer["issuer_id"])
        await self._rebuild_crl(store, issuer)
        if not subject.name():
            warnings.append(NO_SUBJECT)
        if not self._has_aia(urls):
            warnings.append(AIA_WARNING)
        form = self._format(data)
        pem = certificate_pem(certificate)
        answer: dict[str, Any] = {
            "certificate": self._encode(pem, form),
            "expiration": unix(certificate.not_valid_after_utc),
            "issuer_id": issuer["issuer_id"],
            "issuer_name": issuer_name,
            "issuing_ca": self._encode(pem, form),
            "key_id": key_id,
            "key_name": key_name,
            "serial_number": format_serial(certificate.serial_number),
        }
        if exported:
            answer["private_key"] = key_pem(
                key, pkcs8=get_str(data, "private_key_format") == "pkcs8"
            )
            answer["private_key_type"] = key_type
        return Response(data=answer, warnings=warnings or None)

    async def intermediate_generate(
        self, call: Call, store: PkiStore, mount: Mount, kind: str
    ) -> Response:
        """`intermediate/generate/<type>`: a new key and the CSR for an intermediate CA."""
        data = call.data
        exported = self._kind(kind)
        key_type, key = self._new_key_of(data)
        subject = self._subject(data)
        csr = build_csr(subject=subject, names=self._ca_names(data, subject.common_name), key=key)
        key_name = get_str(data, "key_name", default="") or ""
        key_id = await store.new_key(
            key_type=key_type, private_key_pem=key_pem(key, pkcs8=True), key_name=key_name
        )

        answer: dict[str, Any] = {
            "csr": csr.public_bytes(serialization.Encoding.PEM).decode("ascii").rstrip("\n"),
            "key_id": key_id,
        }
        if exported:
            answer["private_key"] = key_pem(
                key, pkcs8=get_str(data, "private_key_format") == "pkcs8"
            )
            answer["private_key_type"] = key_type
        warnings = None if self._has_aia(await store.urls()) else [AIA_WARNING + INTERMEDIATE_AIA]
        return Response(data=answer, warnings=warnings)

    async def sign_intermediate(
        self, call: Call, store: PkiStore, mount: Mount, reference: str
    ) -> Response:
        """`root/sign-intermediate`: sign an intermediate CA's CSR with an issuer."""
        data = call.data
        text = get_str(data, "csr", default="") or ""
        if not text:
            raise InvalidRequestError('"csr" is empty')
        csr = load_csr(text)
        issuer = await self._issuer_or_fail(store, reference)
        signing_key = await self._signing_key(store, issuer)
        # OpenBao signs an intermediate's CSR as under a role of key type `any`.
        check_csr_key("any", 0, public_key_of(csr))
        issuer_cert = load_certificates(issuer["certificate"])[0]
        warnings: list[str] = []
        ttl = _ca_ttl(data, mount, warnings)
        now = self._now()
        not_after = now + timedelta(seconds=ttl)
        if not_after > issuer_cert.not_valid_after_utc:
            warnings.append(
                "The expiration time for the signed certificate is after the CA's expiration "
                "time. If the new certificate is not treated as a root, validation paths with "
                "the certificate past the issuing CA's expiration time will fail."
            )
        if get_bool(data, "use_csr_values", default=False):
            subject = Subject(common_name=_csr_cn(csr))
        else:
            subject = self._subject(data)
        path_length = get_int(data, "max_path_length", default=-1, minimum=-1)
        constraints = _path_length(issuer_cert)
        if path_length in (None, -1) and constraints is not None:
            path_length = max(constraints - 1, 0)
        certificate = build_certificate(
            subject=subject,
            names=self._ca_names(data, subject.common_name),
            public_key=public_key_of(csr),
            issuer=issuer_cert,
            signing_key=signing_key,
            serial=x509.random_serial_number(),
            not_before=now - NOT_BEFORE_SKEW,
            not_after=not_after,
            usage=Usage(
                is_ca=True, max_path_length=None if path_length in (None, -1) else path_length
            ),
            urls=self._urls(await store.urls()),
        )
        await self._store_issued(store, certificate, issuer["issuer_id"])
        if not self._has_aia(await store.urls()):
            warnings.append(AIA_WARNING)
        form = self._format(data)
        pem = certificate_pem(certificate)
        chain = [pem, *[item.rstrip("\n") for item in issuer["ca_chain"]]]
        return Response(
            data={
                "ca_chain": [self._encode(item, form) for item in chain],
                "certificate": self._encode(pem, form),
                "expiration": unix(certificate.not_valid_after_utc),
                "issuing_ca": self._encode(issuer["certificate"], form),
                "serial_number": format_serial(certificate.serial_number),
            },
            warnings=warnings or None,
        )

    async def read_issuers_config(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`GET config/issuers`: the default issuer."""
        return Response(data=await store.issuers_config())

    async def write_issuers_config(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`POST config/issuers`: set the default issuer by id or name."""
        config = await store.issuers_config()
        reference = get_str(call.data, "default")
        if reference:
            issuer = await store.resolve_issuer(reference)
            if issuer is None:
                raise InvalidRequestError(
                    "Error resolving issuer reference: unable to find PKI issuer for "
                    f"reference: {reference}"
                )
            config["default"] = issuer["issuer_id"]
        follows = get_bool(call.data, "default_follows_latest_issuer")
        if follows is not None:
            config["default_follows_latest_issuer"] = follows
        await store.put_issuers_config(config)
        return Response(data=config)

    async def read_urls(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`GET config/urls`: the AIA and CRL URLs written into new certificates."""
        return Response(data=await store.urls())

    async def write_urls(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`POST config/urls`: set those URLs."""
        urls = await store.urls()
        for name in sorted(URL_FIELDS - {"enable_templating"}):
            listed = string_list(call.data, name)
            if listed is not None:
                urls[name] = listed
        templating = get_bool(call.data, "enable_templating")
        if templating is not None:
            urls["enable_templating"] = templating
        await store.put_urls(urls)
        return Response(data=urls)

    async def list_issuers(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`LIST issuers`: every issuer's id, name, key and serial."""
        issuers = await store.issuers()
        if not issuers:
            raise NotFoundError()
        default = (await store.issuers_config())["default"]
        info = {
            issuer["issuer_id"]: {
                "is_default": issuer["issuer_id"] == default,
                "issuer_name": issuer["issuer_name"],
                "key_id": issuer["key_id"],
                "serial_number": format_serial(
                    load_certificates(issuer["certificate"])[0].serial_number
                ),
            }
            for issuer in issuers
        }
        return Response(data={"key_info": info, "keys": [i["issuer_id"] for i in issuers]})

    async def _issuer_answer(self, store: PkiStore, issuer: Mapping[str, Any]) -> dict[str, Any]:
        urls: dict[str, list[str]] = {
            "crl_distribution_points": [],
            "delta_crl_distribution_points": [],
            "issuing_certificates": [],
            "ocsp_servers": [],
        }
        return {
            "ca_chain": list(issuer["ca_chain"]),
            "certificate": issuer["certificate"] + "\n",
            **urls,
            "issuer_id": issuer["issuer_id"],
            "issuer_name": issuer["issuer_name"],
            "key_id": issuer["key_id"],
            "leaf_not_after_behavior": issuer["leaf_not_after_behavior"],
            "manual_chain": issuer["manual_chain"],
            "revocation_signature_algorithm": issuer.get("revocation_signature_algorithm", ""),
            "revoked": False,
            "usage": issuer["usage"],
        }

    async def read_issuer(
        self, call: Call, store: PkiStore, mount: Mount, reference: str
    ) -> Response:
        """`GET issuer/<ref>`: one issuer (never its key)."""
        issuer = await self._issuer_or_fail(store, reference)
        return Response(data=await self._issuer_answer(store, issuer))

    async def write_issuer(
        self, call: Call, store: PkiStore, mount: Mount, reference: str
    ) -> Response:
        """`POST issuer/<ref>`: rename an issuer or set its `leaf_not_after_behavior`."""
        issuer = await self._issuer_or_fail(store, reference)
        behavior = get_str(call.data, "leaf_not_after_behavior")
        if behavior is not None:
            if behavior not in LEAF_BEHAVIORS:
                raise InvalidRequestError(
                    "Unknown value for field `leaf_not_after_behavior`. Possible values are "
                    "`err`, `truncate`, and `permit`."
                )
            issuer["leaf_not_after_behavior"] = behavior
        name = get_str(call.data, "issuer_name")
        if name is not None and name != issuer["issuer_name"]:
            await store.check_issuer_name(name)
            issuer["issuer_name"] = name
        # OpenBao's update rewrites the field from the request: absent, it becomes "".
        algorithm = get_str(call.data, "revocation_signature_algorithm", default="") or ""
        issuer["revocation_signature_algorithm"] = algorithm
        await store.put_issuer(issuer)
        return Response(data=await self._issuer_answer(store, issuer))


async def rebuild_chains(store: PkiStore) -> None:
    """Recompute every issuer's `ca_chain` from the issuers the mount has now (after an
    import completes a chain or a deletion breaks one, as OpenBao's rebuildIssuersChains)."""
    for issuer in await store.issuers():
        certificate = load_certificates(issuer["certificate"])[0]
        chain = await Authorities._chain(store, certificate, extra=[])
        if chain != issuer["ca_chain"]:
            issuer["ca_chain"] = chain
            await store.put_issuer(issuer)


def _csr_cn(csr: x509.CertificateSigningRequest) -> str:
    values = csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _path_length(certificate: x509.Certificate) -> int | None:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None
    return constraints.path_length
