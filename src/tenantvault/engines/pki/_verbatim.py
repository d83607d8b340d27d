"""`sign-verbatim`: a CSR signed as it is, its subject and extensions copied, no role rules.

As OpenBao 2.7 (`buildSignVerbatimRole`): the request's `key_usage` (default DigitalSignature,
KeyAgreement, KeyEncipherment), `ext_key_usage`, `ext_key_usage_oids`, `signature_bits`,
`use_pss` and `basic_constraints_valid_for_non_ca` make the certificate's usage; a named role
lends only its `ttl`, `max_ttl`, `not_before_duration`, `generate_lease`, `no_store`,
`issuer_ref` (and `basic_constraints_valid_for_non_ca` when the request leaves it out). The
CSR's extensions are copied into the certificate and replace the generated ones of the same
OID (its SANs, key usage…), except basic constraints, dropped with OpenBao's warning. The
route's capability is `update`, like `sign`: only policies make it the privileged path it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cryptography import x509

from tenantvault._exceptions import InvalidRequestError
from tenantvault._fields import get_bool, get_str
from tenantvault._request import Response
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call
from tenantvault.engines.pki._common import (
    ISSUE_FIELDS,
    PkiHandlers,
    is_self_signed,
    mount_ttls,
    unix,
)
from tenantvault.engines.pki._issuing import plan_leaf
from tenantvault.engines.pki._keys import check_csr_key
from tenantvault.engines.pki._roles import read_role_write
from tenantvault.engines.pki._store import PkiStore
from tenantvault.engines.pki._x509 import (
    Names,
    build_certificate,
    certificate_pem,
    format_serial,
    load_certificates,
    load_csr,
    public_key_of,
)

__all__ = ["VERBATIM_FIELDS", "Verbatim"]

# The request's own say over the certificate's usage (OpenBao's addSignVerbatimRoleFields).
_USAGE_FIELDS: Final = (
    "key_usage",
    "ext_key_usage",
    "ext_key_usage_oids",
    "signature_bits",
    "use_pss",
    "basic_constraints_valid_for_non_ca",
)
VERBATIM_FIELDS: Final = ISSUE_FIELDS | {"csr", *_USAGE_FIELDS}
_BASIC_CONSTRAINTS_WARNING: Final = (
    "specified CSR contained a Basic Constraints extension that was ignored during issuance"
)


def _verbatim_role(data: Mapping[str, Any], role: Mapping[str, Any] | None) -> dict[str, Any]:
    """The permissive role OpenBao signs a verbatim request under."""
    entry = read_role_write({name: data[name] for name in _USAGE_FIELDS if name in data})
    # Unlike a role write, OpenBao skips the OIDs here that do not parse.
    entry["ext_key_usage_oids"] = [oid for oid in entry["ext_key_usage_oids"] if _is_oid(oid)]
    entry.update(
        allow_any_name=True,
        allow_localhost=True,
        allow_ip_sans=True,
        allow_wildcard_certificates=True,
        enforce_hostnames=False,
        key_type="any",
        use_csr_common_name=True,
        use_csr_sans=True,
        require_cn=False,
        allowed_other_sans=["*"],
        allowed_serial_numbers=["*"],
        allowed_uri_sans=["*"],
        allowed_user_ids=["*"],
        cn_validations=["disabled"],
        server_flag=False,
        client_flag=False,
        code_signing_flag=False,
        email_protection_flag=False,
        generate_lease=False,
        ttl=0,
        max_ttl=0,
        issuer_ref="default",
    )
    if role is not None:
        entry["ttl"] = role["ttl"]
        entry["max_ttl"] = role["max_ttl"]
        entry["not_before_duration"] = role["not_before_duration"] or 30
        entry["generate_lease"] = bool(role["generate_lease"])
        entry["no_store"] = role["no_store"]
        entry["issuer_ref"] = role["issuer_ref"] or "default"
        if data.get("basic_constraints_valid_for_non_ca") is None:
            entry["basic_constraints_valid_for_non_ca"] = role["basic_constraints_valid_for_non_ca"]
    return entry


def _is_oid(text: str) -> bool:
    try:
        x509.ObjectIdentifier(text)
    except ValueError:
        return False
    return True


class Verbatim(PkiHandlers):
    """`sign-verbatim(/<role>)` and `issuer/<ref>/sign-verbatim(/<role>)`."""

    async def sign_verbatim(
        self,
        call: Call,
        store: PkiStore,
        mount: Mount,
        role_name: str | None,
        reference: str | None,
    ) -> Response:
        """Sign the request's CSR keeping its subject and extensions (OpenBao's order of
        checks: the role, the format, the issuer, then the CSR)."""
        data = call.data
        role = None
        if role_name:
            role = await store.role(role_name)
            if role is None:
                raise InvalidRequestError(f"unknown role: {role_name}")
        entry = _verbatim_role(data, role)
        form = self._format(data)
        reference = reference or entry["issuer_ref"]
        issuer = await self._leaf_issuer(store, reference)
        text = get_str(data, "csr", default="") or ""
        if not text:
            raise InvalidRequestError('"csr" is empty')
        csr = load_csr(text)
        public = public_key_of(csr)
        check_csr_key("any", 0, public)  # OpenBao signs verbatim as a role of key type `any`
        issuer_cert = load_certificates(issuer["certificate"])[0]
        default, maximum = mount_ttls(mount)
        plan = plan_leaf(
            data,
            entry,
            issuer_not_after=issuer_cert.not_valid_after_utc,
            leaf_not_after_behavior=issuer["leaf_not_after_behavior"],
            now=self._now(),
            mount_default=default,
            mount_max=maximum,
            csr=csr,
        )
        warnings = list(plan.warnings)
        copied = [ext for ext in csr.extensions if not isinstance(ext.value, x509.BasicConstraints)]
        if len(copied) < len(csr.extensions):
            warnings.append(_BASIC_CONSTRAINTS_WARNING)
        certificate = build_certificate(
            subject=plan.subject,
            subject_name=csr.subject,
            names=Names(),
            public_key=public,
            issuer=issuer_cert,
            signing_key=await self._signing_key(store, issuer),
            serial=x509.random_serial_number(),
            not_before=plan.not_before,
            not_after=plan.not_after,
            usage=plan.usage,
            urls=self._urls(await store.urls()),
            signature_bits=entry["signature_bits"],
            copied=copied,
            use_pss=entry["use_pss"],
        )
        if not entry["no_store"]:
            await self._store_issued(store, certificate, issuer["issuer_id"])
        return Response(
            data=self._answer(certificate, issuer, form, data),
            warnings=warnings or None,
            secret=self._leaf_lease(certificate, entry),
        )

    def _answer(
        self,
        certificate: x509.Certificate,
        issuer: Mapping[str, Any],
        form: str,
        data: Mapping[str, Any],
    ) -> dict[str, Any]:
        """`sign`'s answer, as OpenBao gives it for a CSR: no key, no empty `ca_chain`."""
        pem = certificate_pem(certificate)
        chain = [item.rstrip("\n") for item in issuer["ca_chain"]]
        if get_bool(data, "remove_roots_from_chain", default=False):
            chain = [item for item in chain if not is_self_signed(item)]
        answer: dict[str, Any] = {
            "certificate": "\n".join([pem, *chain]) if form == "pem_bundle" else pem,
            "expiration": unix(certificate.not_valid_after_utc),
            "issuing_ca": issuer["certificate"].rstrip("\n"),
            "not_before": unix(certificate.not_valid_before_utc),
            "serial_number": format_serial(certificate.serial_number),
        }
        if chain:
            answer["ca_chain"] = chain
        if form == "der":
            answer["certificate"] = self._encode(pem, form)
            answer["issuing_ca"] = self._encode(answer["issuing_ca"], form)
            if chain:
                answer["ca_chain"] = [self._encode(item, form) for item in chain]
        return dict(sorted(answer.items()))
