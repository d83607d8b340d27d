"""Roles and the leaf certificates issued under them (`roles/`, `issue/`, `sign/`)."""

from __future__ import annotations

from typing import Any

from cryptography import x509

from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
)
from tenantvault._fields import get_bool, get_str
from tenantvault._request import Response
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call
from tenantvault.engines.pki._common import (
    PkiHandlers,
    is_self_signed,
    mount_ttls,
    unix,
)
from tenantvault.engines.pki._issuing import plan_leaf
from tenantvault.engines.pki._keys import (
    PrivateKey,
    check_csr_key,
    generate_key,
    key_pem,
    public_half,
)
from tenantvault.engines.pki._roles import read_role_write
from tenantvault.engines.pki._store import PkiStore
from tenantvault.engines.pki._x509 import (
    build_certificate,
    certificate_pem,
    format_serial,
    load_certificates,
    load_csr,
    public_key_of,
)

__all__ = ["Leaves"]


class Leaves(PkiHandlers):
    """Role CRUD and the issue and sign endpoints."""

    async def list_roles(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`LIST roles`."""
        names = await store.role_names()
        if not names:
            raise NotFoundError()
        return Response(data={"keys": names})

    async def read_role(self, call: Call, store: PkiStore, mount: Mount, name: str) -> Response:
        """`GET roles/<name>`."""
        role = await store.role(name)
        if role is None:
            raise NotFoundError()
        return Response(data=role)

    async def write_role(self, call: Call, store: PkiStore, mount: Mount, name: str) -> Response:
        """`POST roles/<name>`: create or replace a role."""
        role = read_role_write(call.data)
        await store.put_role(name, role)
        warnings = None
        if role["issuer_ref"] == "default" and not (await store.issuers_config())["default"]:
            warnings = [
                "Issuing Certificate was set to default, but no default issuing certificate "
                "(configurable at /config/issuers) is currently set"
            ]
        return Response(data=role, warnings=warnings)

    async def patch_role(self, call: Call, store: PkiStore, mount: Mount, name: str) -> Response:
        """`PATCH roles/<name>`: change some fields of a role."""
        existing = await store.role(name)
        if existing is None:
            raise InvalidRequestError("Unable to fetch role entry to patch")
        role = read_role_write({**existing, **call.data})
        await store.put_role(name, role)
        return Response(data=role)

    async def delete_role(self, call: Call, store: PkiStore, mount: Mount, name: str) -> Response:
        """`DELETE roles/<name>`."""
        await store.delete_role(name)
        return Response.no_content()

    async def _leaf(
        self,
        call: Call,
        store: PkiStore,
        mount: Mount,
        role_name: str,
        reference: str | None,
        csr: x509.CertificateSigningRequest | None,
    ) -> Response:
        role = await store.role(role_name)
        if role is None:
            raise InvalidRequestError(f"unknown role: {role_name}")
        data = call.data
        if csr is None and role["key_type"] == "any":
            raise InvalidRequestError(
                'role key type "any" not allowed for issuing certificates without providing '
                "key_type and/or key_bits request parameters"
            )
        reference = reference or role["issuer_ref"] or "default"
        issuer = await self._leaf_issuer(store, reference)
        issuer_cert = load_certificates(issuer["certificate"])[0]
        signing_key = await self._signing_key(store, issuer)
        if csr is not None:
            # Before names and TTLs, as OpenBao checks a CSR's key first.
            check_csr_key(role["key_type"], role["key_bits"], public_key_of(csr))
        default, maximum = mount_ttls(mount)
        plan = plan_leaf(
            data,
            role,
            issuer_not_after=issuer_cert.not_valid_after_utc,
            leaf_not_after_behavior=issuer["leaf_not_after_behavior"],
            now=self._now(),
            mount_default=default,
            mount_max=maximum,
            csr=csr,
        )
        form = self._format(data)
        key: PrivateKey | None = None
        if csr is None:
            key = generate_key(role["key_type"], role["key_bits"])
            public = public_half(key)
        else:
            public = public_key_of(csr)
        certificate = build_certificate(
            subject=plan.subject,
            names=plan.names,
            public_key=public,
            issuer=issuer_cert,
            signing_key=signing_key,
            serial=x509.random_serial_number(),
            not_before=plan.not_before,
            not_after=plan.not_after,
            usage=plan.usage,
            urls=self._urls(await store.urls()),
            signature_bits=role["signature_bits"],
        )
        if not role["no_store"]:
            await self._store_issued(store, certificate, issuer["issuer_id"])
        pem = certificate_pem(certificate)
        chain = [item.rstrip("\n") for item in issuer["ca_chain"]]
        if get_bool(data, "remove_roots_from_chain", default=False):
            chain = [item for item in chain if not is_self_signed(item)]
        answer: dict[str, Any] = {
            "ca_chain": [self._encode(item, form) for item in chain],
            "certificate": self._encode(pem, form),
            "expiration": unix(certificate.not_valid_after_utc),
            "issuing_ca": self._encode(issuer["certificate"], form),
            "not_before": unix(certificate.not_valid_before_utc),
            "serial_number": format_serial(certificate.serial_number),
        }
        if key is not None:
            pkcs8 = get_str(data, "private_key_format") == "pkcs8"
            answer["private_key"] = key_pem(key, pkcs8=pkcs8)
            answer["private_key_type"] = role["key_type"]
            if form == "pem_bundle":
                answer["certificate"] = "\n".join([answer["private_key"], pem, *chain])
        secret = self._leaf_lease(certificate, role)
        return Response(data=answer, warnings=plan.warnings or None, secret=secret)

    async def issue(
        self, call: Call, store: PkiStore, mount: Mount, role: str, reference: str | None
    ) -> Response:
        """`issue/<role>`: a new key and a certificate for it, under the role."""
        return await self._leaf(call, store, mount, role, reference, None)

    async def sign(
        self, call: Call, store: PkiStore, mount: Mount, role: str, reference: str | None
    ) -> Response:
        """`sign/<role>`: a certificate for the caller's CSR, under the role."""
        text = get_str(call.data, "csr", default="") or ""
        if not text:
            raise InvalidRequestError('"csr" is empty')
        if await store.role(role) is None:
            raise InvalidRequestError(f"unknown role: {role}")
        return await self._leaf(call, store, mount, role, reference, load_csr(text))
