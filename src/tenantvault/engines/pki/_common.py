"""What every pki handler shares: the clock, issuer and key lookup, formats, the CRL."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tenantvault import _b64
from tenantvault._clock import Clock, system_clock
from tenantvault._exceptions import (
    InvalidRequestError,
    TenantVaultError,
)
from tenantvault._fields import get_str
from tenantvault._go_text import multierror
from tenantvault._request import LeasedSecret
from tenantvault.engines._protocol import Mount
from tenantvault.engines.pki._crls import current_complete, rebuild_complete
from tenantvault.engines.pki._keys import (
    PrivateKey,
    load_key,
)
from tenantvault.engines.pki._store import PkiStore
from tenantvault.engines.pki._x509 import (
    Urls,
    certificate_pem,
    format_serial,
    load_certificates,
)

__all__ = ["PkiHandlers", "PkiServerError", "is_self_signed", "mount_ttls", "unix", "utc"]

SYSTEM_TTL_SECONDS: Final = 768 * 3600
NS: Final = 1_000_000_000
NOT_BEFORE_SKEW: Final = timedelta(seconds=30)
LEAF_BEHAVIORS: Final = ("err", "truncate", "permit")
AIA_WARNING: Final = (
    "This mount hasn't configured any authority information access (AIA) fields; this may "
    "make it harder for systems to find missing certificates in the chain or to validate "
    "revocation status of certificates. Consider updating /config/urls or the newly generated "
    "issuer with this information."
)
INTERMEDIATE_AIA: Final = (
    " Since this certificate is an intermediate, it might be useful to regenerate this "
    "certificate after fixing this problem for the root mount."
)
NO_SUBJECT: Final = (
    "This issuer certificate was generated without a Subject; this makes it likely that "
    "issuing leaf certs with this certificate will cause TLS validation libraries to reject "
    "this certificate."
)
USAGE: Final = "crl-signing,issuing-certificates,ocsp-signing,read-only"
# The request parameters the routes declare (OpenBao's fields of each endpoint).
SUBJECT_FIELDS: Final = frozenset(
    {
        "common_name",
        "alt_names",
        "ip_sans",
        "uri_sans",
        "other_sans",
        "ou",
        "organization",
        "country",
        "locality",
        "province",
        "street_address",
        "postal_code",
        "serial_number",
        "exclude_cn_from_sans",
        "ttl",
        "not_after",
        "format",
        "private_key_format",
        "key_type",
        "key_bits",
        "max_path_length",
        "permitted_dns_domains",
        "signature_bits",
        "not_before_duration",
        "use_pss",
    }
)
ROOT_FIELDS: Final = SUBJECT_FIELDS | {
    "issuer_name",
    "key_name",
    "key_ref",
    "managed_key_name",
    "managed_key_id",
    "exported",
}
ISSUE_FIELDS: Final = frozenset(
    {
        "common_name",
        "alt_names",
        "ip_sans",
        "uri_sans",
        "other_sans",
        "ttl",
        "not_after",
        "format",
        "private_key_format",
        "exclude_cn_from_sans",
        "remove_roots_from_chain",
        "serial_number",
    }
)
TIDY_FIELDS: Final = frozenset(
    {
        "tidy_cert_store",
        "tidy_revoked_certs",
        "tidy_revoked_cert_issuer_associations",
        "tidy_expired_issuers",
        "tidy_move_legacy_ca_bundle",
        "tidy_invalid_certs",
        "tidy_acme",
        "safety_buffer",
        "issuer_safety_buffer",
        "pause_duration",
        "acme_account_safety_buffer",
        "revoked_safety_buffer",
        "page_size",
    }
)
URL_FIELDS: Final = frozenset(
    {
        "issuing_certificates",
        "crl_distribution_points",
        "ocsp_servers",
        "delta_crl_distribution_points",
        "enable_templating",
    }
)


class PkiServerError(TenantVaultError):
    """OpenBao answers these with 500 and go-multierror's text (a missing issuer)."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(multierror([message]))


def utc(ns: int) -> datetime:
    """A clock reading (ns since the epoch) as an aware UTC datetime."""
    return datetime.fromtimestamp(ns / 1_000_000_000, UTC)


def is_self_signed(pem: str) -> bool:
    """Whether the first certificate of `pem` is self-signed (a root, for
    `remove_roots_from_chain`)."""
    certificates = load_certificates(pem)
    return bool(certificates) and certificates[0].issuer == certificates[0].subject


def unix(moment: datetime) -> int:
    """A datetime as whole unix seconds (Vault's `expiration`)."""
    return int(moment.timestamp())


def mount_ttls(mount: Mount) -> tuple[int, int]:
    """The mount's (default, max) lease TTLs in seconds, the system's 768h where unset."""
    default = int(mount.config.get("default_lease_ttl") or 0) or SYSTEM_TTL_SECONDS
    maximum = int(mount.config.get("max_lease_ttl") or 0) or SYSTEM_TTL_SECONDS
    return min(default, maximum), maximum


class PkiHandlers:
    """The base of the handler groups: the clock and the helpers every group uses."""

    def __init__(self, *, clock: Clock = system_clock) -> None:
        self._clock = clock

    def _now(self) -> datetime:
        return utc(self._clock())

    async def _issuer_or_fail(self, store: PkiStore, reference: str) -> dict[str, Any]:
        issuer = await store.resolve_issuer(reference)
        if issuer is None:
            if reference == "default":
                raise PkiServerError("no default issuer currently configured")
            raise PkiServerError(f"unable to find PKI issuer for reference: {reference}")
        return issuer

    async def _leaf_issuer(self, store: PkiStore, reference: str) -> dict[str, Any]:
        """The issuer a leaf is signed by (issue, sign, sign-verbatim), or OpenBao's 500 for
        a reference that names none."""
        issuer = await store.resolve_issuer(reference)
        if issuer is None:
            detail = (
                "no default issuer currently configured"
                if reference == "default"
                else f"unable to find PKI issuer for reference: {reference}"
            )
            raise PkiServerError(f"could not fetch the CA certificate (was one set?): {detail}")
        return issuer

    def _leaf_lease(
        self, certificate: x509.Certificate, role: Mapping[str, Any]
    ) -> LeasedSecret | None:
        """A role's `generate_lease`: a lease until NotAfter whose end (or
        `sys/leases/revoke`) revokes the certificate; None without it or with `no_store`."""
        if not role["generate_lease"] or role["no_store"]:
            return None
        remaining = max(0, unix(certificate.not_valid_after_utc) - self._clock() // NS)
        return LeasedSecret(
            internal={"serial_number": format_serial(certificate.serial_number)},
            ttl_seconds=remaining,
            max_ttl_seconds=remaining,
            renewable=False,
        )

    async def _signing_key(self, store: PkiStore, issuer: Mapping[str, Any]) -> PrivateKey:
        record = await store.key(issuer["key_id"]) if issuer.get("key_id") else None
        if record is None:
            raise InvalidRequestError("issuer has no key to sign with")
        return load_key(record["private_key"])

    @staticmethod
    def _urls(urls: Mapping[str, Any]) -> Urls:
        return Urls(
            issuing_certificates=tuple(urls["issuing_certificates"]),
            crl_distribution_points=tuple(urls["crl_distribution_points"]),
            ocsp_servers=tuple(urls["ocsp_servers"]),
        )

    @staticmethod
    def _has_aia(urls: Mapping[str, Any]) -> bool:
        return bool(
            urls["issuing_certificates"] or urls["crl_distribution_points"] or urls["ocsp_servers"]
        )

    @staticmethod
    def _encode(pem: str, form: str) -> str:
        """A PEM value in the requested `format` (`der`: base64 of the DER bytes)."""
        if form != "der":
            return pem
        blocks = load_certificates(pem)
        return _b64.encode(blocks[0].public_bytes(serialization.Encoding.DER)) if blocks else pem

    @staticmethod
    def _format(data: Mapping[str, Any]) -> str:
        form = get_str(data, "format", default="pem") or "pem"
        if form not in ("pem", "der", "pem_bundle"):
            raise InvalidRequestError(
                'the "format" path parameter must be "pem", "der", or "pem_bundle"'
            )
        return form

    async def _store_issued(
        self, store: PkiStore, certificate: x509.Certificate, issuer_id: str
    ) -> None:
        await store.put_cert(
            format_serial(certificate.serial_number),
            {
                "certificate": certificate_pem(certificate),
                "issuer_id": issuer_id,
                "not_after": unix(certificate.not_valid_after_utc),
                "revocation_time_ns": 0,
            },
        )

    async def _rebuild_crl(
        self, store: PkiStore, issuer: Mapping[str, Any], *, force: bool = True
    ) -> dict[str, Any]:
        """Sign the issuer's complete CRL afresh under `config/crl` (`_crls`): CRL numbers
        strictly increase and the last CRL written lists every revocation marked before it.
        Without `force`, a disabled CRL stays the empty one it is (OpenBao's rebuild)."""
        return await rebuild_complete(
            store, dict(issuer), lambda: self._signing_key(store, issuer), self._clock, force=force
        )

    async def _current_crl(self, store: PkiStore, issuer: Mapping[str, Any]) -> dict[str, Any]:
        """The issuer's complete CRL record as a fetch sees it: signed if there is none yet,
        re-signed when `auto_rebuild` finds it within its grace period."""
        return await current_complete(
            store, dict(issuer), lambda: self._signing_key(store, issuer), self._clock
        )
