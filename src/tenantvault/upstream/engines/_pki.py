"""The `pki` engine type in gateway mode: a tenant's pki mounts are the upstream's own PKI
engine, in the tenant's upstream namespace (namespace strategy).

- Enabling a pki mount in a tenant enables OpenBao's pki at the same path of the tenant's
  namespace (tenantvault's own upstream token does it, as for `_passthrough` mounts); tuning
  and disabling follow it there. Its CA keys, certificates and CRLs are OpenBao's: an
  operator reads them there with OpenBao's own tools.
- Every request goes upstream with the tenant's scoped token, as sent, and the answer comes
  back as OpenBao gives it (statuses, texts, warnings; an upstream 500 stays a 500).
- Authorization and audit stay tenantvault's: the embedded engine's route gives the ACL path,
  capability and existence check (asked upstream) of the paths it knows; any other pki path
  is authorized as a passthrough mount (by operation, a write needs create and update).
  The fetch paths OpenBao serves without a token are declared unauthenticated here as well.
- The file fetches (`ca`, `crl`, `issuer/<ref>/der`, `cert/<serial>/raw`, …) are read
  upstream through their JSON twins (`cert/ca`, `cert/crl`, `issuer/<ref>/json`, …) and
  answered as the same files with OpenBao's content types: the upstream client speaks JSON.
- OCSP (`GET ocsp/<base64 DER>`, `POST ocsp` with its DER body) goes to OpenBao's responder
  as bytes (`send_raw`; a GET whose base64 came URL-escaped as the POST it equals), and its
  answer comes back as is: the status (200, or 400/401/500
  with an OCSP error response) and the DER response.
- The root namespace and the prefix strategy have no per-tenant upstream place: their pki
  mounts stay the embedded engine (records sealed in the upstream KV).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from tenantvault import _b64
from tenantvault._exceptions import (
    NotFoundError,
    TenantVaultError,
    UnsupportedOperationError,
)
from tenantvault._request import OCSP_GET_FIELD, OCSP_REQUEST_FIELD, Operation, Response
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.crypto import GoBase64Error, go_b64decode
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call, Route
from tenantvault.engines._special import PathPatterns
from tenantvault.engines.pki import PKIEngine
from tenantvault.engines.pki._x509 import certificate_der, crl_der
from tenantvault.leases._ttl import LeaseTTL
from tenantvault.upstream._client import UpstreamResponse
from tenantvault.upstream._tenancy import NamespaceTenancy, Placement
from tenantvault.upstream.engines._forward import (
    METHODS,
    answer,
    raise_for,
    send_as_is,
)
from tenantvault.upstream.engines._gateway import Gateway
from tenantvault.upstream.engines._passthrough import PassthroughEngine, leased_secret

__all__ = ["UpstreamPKI"]

_CERT_DER: Final = "application/pkix-cert"
_CERT_PEM: Final = "application/pem-certificate-chain"
_CRL_DER: Final = "application/pkix-crl"
_CRL_PEM: Final = "application/x-pem-file"
_OCSP_REQUEST: Final = "application/ocsp-request"
_OCSP_RESPONSE: Final = "application/ocsp-response"
# The internal lease data of an upstream lease (`_passthrough`'s `generate_lease` leases).
_UPSTREAM_LEASE: Final = "upstream_lease_id"

# A file fetch: the JSON twin read upstream, the field holding the PEM, how to send it.
_Encode = Callable[[str], bytes]


def _pem(text: str) -> bytes:
    return text.encode()


def _bare_pem(text: str) -> bytes:
    return text.rstrip("\n").encode()


def _files(path: str) -> tuple[str, str, _Encode, str] | None:
    """(upstream JSON path, PEM field, encoder, content type) of a file fetch; else None."""
    parts = path.split("/")
    if path in ("ca", "ca/pem", "cert/ca/raw", "cert/ca/raw/pem"):
        pem = path.endswith("pem")
        return ("cert/ca", "certificate", _pem if pem else certificate_der, _pem_or(pem, True))
    if path == "ca_chain":
        # OpenBao labels the PEM chain application/pkix-cert (sic).
        return ("cert/ca_chain", "ca_chain", _pem, _CERT_DER)
    if path in ("crl", "crl/pem"):
        pem = path == "crl/pem"
        return ("cert/crl", "certificate", _pem if pem else crl_der, _pem_or(pem, False))
    if path in ("crl/delta", "crl/delta/pem"):
        pem = path.endswith("/pem")
        # Its twin is the per-issuer JSON, whose PEM ends with a newline the legacy file has not.
        encode = _bare_pem if pem else crl_der
        return ("issuer/default/crl/delta", "crl", encode, _pem_or(pem, False))
    if len(parts) == 5 and parts[0] == "issuer" and parts[1] and parts[2:4] == ["crl", "delta"]:
        if parts[4] in ("pem", "der"):
            pem = parts[4] == "pem"
            encode = _pem if pem else crl_der
            return (f"issuer/{parts[1]}/crl/delta", "crl", encode, _pem_or(pem, False))
    if len(parts) == 3 and parts[0] == "issuer" and parts[1] and parts[2] in ("pem", "der"):
        pem = parts[2] == "pem"
        encode = _pem if pem else certificate_der
        return (f"issuer/{parts[1]}/json", "certificate", encode, _pem_or(pem, True))
    if len(parts) == 4 and parts[:1] == ["issuer"] and parts[2] == "crl" and parts[1]:
        if parts[3] in ("pem", "der"):
            pem = parts[3] == "pem"
            encode = _pem if pem else crl_der
            return (f"issuer/{parts[1]}/crl", "crl", encode, _pem_or(pem, False))
    if len(parts) in (3, 4) and parts[0] == "cert" and parts[1] and parts[2] == "raw":
        if parts[3:] in ([], ["pem"]):
            pem = len(parts) == 4
            return (f"cert/{parts[1]}", "certificate", _pem if pem else certificate_der, "")
    return None


def _pem_or(pem: bool, certificate: bool) -> str:
    if certificate:
        return _CERT_PEM if pem else _CERT_DER
    return _CRL_PEM if pem else _CRL_DER


def _is_ocsp(operation: Operation, path: str) -> bool:
    """Whether this is an OCSP query: `POST ocsp`, `GET ocsp/<base64 DER>`, or `GET ocsp`
    with the URL-escaped base64 the HTTP layer handed on as data."""
    if operation in (Operation.CREATE, Operation.UPDATE):
        return path == "ocsp"
    return operation is Operation.READ and (path == "ocsp" or path.startswith("ocsp/"))


def _is_escaped_ocsp(operation: Operation, path: str) -> bool:
    """Whether this is the OCSP GET whose URL-escaped base64 came as data (`GET ocsp`)."""
    return operation is Operation.READ and path == "ocsp"


def _escaped_ocsp_der(encoded: object) -> bytes:
    """The DER of a GET whose base64 came URL-escaped (b"" if it is not Go's padded base64,
    which OpenBao's responder answers malformedRequest, as for a POST without a body)."""
    if not isinstance(encoded, str):
        raise UnsupportedOperationError()  # a bare `GET ocsp`, as OpenBao answers it
    try:
        return go_b64decode(encoded)
    except GoBase64Error:
        return b""


def _ocsp_der(encoded: object) -> bytes:
    """The DER of a POSTed OCSP request (b"" if there is none to send)."""
    if not isinstance(encoded, str):
        return b""
    try:
        return _b64.decode(encoded)
    except ValueError:
        return b""


def _raise(response: UpstreamResponse) -> None:
    """The upstream's refusal as it gave it: a 500 with OpenBao's text stays a 500 (the
    embedded pki answers those 500 too), every other status as `raise_for` maps it."""
    if response.status == 500 and response.errors:
        raise TenantVaultError(response.errors[0], errors=response.errors)
    raise_for(response)


class UpstreamPKI:
    """The `pki` type: tenants' pki mounts upstream (namespace strategy), else embedded."""

    type: Final = "pki"

    def __init__(self, embedded: PKIEngine, gateway: Gateway) -> None:
        self._embedded = embedded
        self._gateway = gateway
        # Mount provisioning, tuning, leases and the forwarding of paths the embedded
        # engine does not know: the passthrough engine's, one implementation of each.
        self._passthrough = PassthroughEngine(gateway)

    @property
    def unauthenticated_paths(self) -> PathPatterns:
        """OpenBao's (the embedded engine declares the same list)."""
        return self._embedded.unauthenticated_paths

    def check_options(self, options: Mapping[str, str]) -> dict[str, str]:
        return self._embedded.check_options(options)

    def _serves(self, storage_tenant: str) -> bool:
        """Whether the upstream serves this namespace's pki mounts."""
        tenancy = self._gateway.tenancy
        return storage_tenant != SYSTEM_TENANT and isinstance(tenancy, NamespaceTenancy)

    # -- the mount upstream (`ProvisionedMounts`, `PinnedMounts`) -----------------------------

    async def provision(self, storage_tenant: str, path: str, body: Mapping[str, Any]) -> None:
        """Enable OpenBao's pki at `path` of the tenant's namespace (nothing when embedded)."""
        if self._serves(storage_tenant):
            await self._passthrough.provision(storage_tenant, path, body)

    async def unprovision(self, storage_tenant: str, path: str) -> None:
        if self._serves(storage_tenant):
            await self._passthrough.unprovision(storage_tenant, path)

    async def tune(self, mount: Mount, data: Mapping[str, Any]) -> None:
        if self._serves(mount.storage.tenant):
            await self._passthrough.tune(mount, data)

    def refuse_remount(self, mount: Mount, target: str) -> str | None:
        if self._serves(mount.storage.tenant):
            return self._passthrough.refuse_remount(mount, target)
        return None

    async def destroy(self, mount: Mount) -> None:
        """Disabled: the upstream mount goes (its CAs and certificates with it)."""
        if self._serves(mount.storage.tenant):
            await self._passthrough.destroy(mount)
        await self._embedded.destroy(mount)

    # -- leases (`LeasingEngine`): an upstream `generate_lease` lease, or an embedded one ---

    async def revoke_secret(self, mount: Mount, internal: Mapping[str, Any]) -> None:
        if _UPSTREAM_LEASE in internal:
            await self._passthrough.revoke_secret(mount, internal)
        else:
            await self._embedded.revoke_secret(mount, internal)

    async def renew_secret(
        self,
        mount: Mount,
        internal: Mapping[str, Any],
        *,
        increment_seconds: int,
        issued_ns: int,
        now_ns: int,
    ) -> LeaseTTL:
        """Certificate leases are not renewable (OpenBao says so for its own)."""
        if _UPSTREAM_LEASE in internal:
            return await self._passthrough.renew_secret(
                mount,
                internal,
                increment_seconds=increment_seconds,
                issued_ns=issued_ns,
                now_ns=now_ns,
            )
        result: LeaseTTL = await self._embedded.renew_secret(
            mount, internal, increment_seconds=increment_seconds, issued_ns=issued_ns, now_ns=now_ns
        )
        return result

    # -- requests -----------------------------------------------------------------------------

    def route(self, operation: Operation, path: str, mount: Mount) -> Route:
        """The embedded route, or for a tenant's mount its request forwarded upstream."""
        tenant = mount.storage.tenant
        if not self._serves(tenant):
            return self._embedded.route(operation, path, mount)
        if operation is Operation.READ and (fetch := _files(path)) is not None:
            handler = self._file_handler(tenant, mount, *fetch)
        elif _is_ocsp(operation, path):
            handler = self._ocsp_handler(tenant, mount, operation, path)
        else:
            handler = self._forward(tenant, mount, operation, path)
        try:
            inner = self._embedded.route(operation, path, mount)
        except (NotFoundError, UnsupportedOperationError):
            # A pki path or method the embedded engine does not serve (ACME, unified OCSP,
            # …): authorized by operation, the upstream answers it.
            return replace(self._passthrough.route(operation, path, mount), handler=handler)
        exists = inner.exists
        if exists is not None:
            exists = self._exists(tenant, mount, path)
        # Parameters are the upstream's to check (it warns of the ones it ignores); the
        # escaped OCSP GET keeps its declaration, without which the Core refuses its tail.
        parameters = inner.parameters if _is_escaped_ocsp(operation, path) else None
        return replace(inner, handler=handler, exists=exists, parameters=parameters)

    def _placement(self, tenant: str, mount: Mount, path: str) -> Placement:
        return Placement(self._gateway.tenancy.token_namespace(tenant), f"{mount.path}{path}")

    def _forward(
        self, tenant: str, mount: Mount, operation: Operation, path: str
    ) -> Callable[[Call], Awaitable[Response]]:
        """The request as sent, to the same path of the tenant's namespace; the answer as
        OpenBao gives it (a `generate_lease` certificate's lease becomes the tenant's)."""
        placement = self._placement(tenant, mount, path)
        method = METHODS[operation]
        gateway = self._gateway

        async def handler(call: Call) -> Response:
            response = await send_as_is(gateway, tenant, method, placement, call.data)
            if response.status == 500:
                _raise(response)
            result = answer(response)
            result.secret = leased_secret(response)
            return result

        return handler

    def _ocsp_handler(
        self, tenant: str, mount: Mount, operation: Operation, path: str
    ) -> Callable[[Call], Awaitable[Response]]:
        """A query to OpenBao's responder as bytes (the POST body is the DER the HTTP layer
        handed on under `OCSP_REQUEST_FIELD`); its status and DER answer as OpenBao gives
        them. A JSON answer is OpenBao's router refusing (no such mount): its error."""
        placement = self._placement(tenant, mount, path)
        post = operation is not Operation.READ
        escaped = _is_escaped_ocsp(operation, path)

        async def handler(call: Call) -> Response:
            if post or escaped:
                # Absent or not the HTTP layer's base64: no request, which OpenBao answers
                # malformedRequest, as the embedded responder does. The escaped GET form is
                # sent as the POST it is equivalent to: the upstream client escapes paths
                # itself, and OpenBao's responder answers both forms alike.
                if escaped:
                    der = _escaped_ocsp_der(call.data.get(OCSP_GET_FIELD))
                else:
                    der = _ocsp_der(call.data.get(OCSP_REQUEST_FIELD))
                raw = await self._gateway.send_raw(
                    tenant,
                    "POST",
                    placement,
                    content=der,
                    content_type=_OCSP_REQUEST,
                    idempotent=True,  # a query: repeating it changes nothing
                )
            else:
                raw = await self._gateway.send_raw(tenant, "GET", placement)
            if raw.parsed is not None:
                _raise(raw.parsed)
                return answer(raw.parsed)
            return Response(body=raw.content, content_type=_OCSP_RESPONSE, status=raw.status)

        return handler

    def _exists(self, tenant: str, mount: Mount, path: str) -> Callable[[str], Awaitable[bool]]:
        """Vault's existence check of a role write, asked upstream."""
        placement = self._placement(tenant, mount, path)

        async def check(_tenant: str) -> bool:
            response = await self._gateway.send(tenant, "GET", placement)
            if response.status == 404:
                return False
            _raise(response)
            return True

        return check

    def _file_handler(
        self, tenant: str, mount: Mount, twin: str, field: str, encode: _Encode, kind: str
    ) -> Callable[[Call], Awaitable[Response]]:
        """A file fetch answered from its JSON twin upstream: the same file, OpenBao's
        content type, and 204 where OpenBao answers "nothing there" (no CA, no serial)."""
        placement = self._placement(tenant, mount, twin)
        content_type = kind or (_CERT_PEM if encode is _pem else _CERT_DER)
        raw_serial = twin.startswith("cert/") and twin != "cert/ca"

        async def handler(call: Call) -> Response:
            response = await self._gateway.send(tenant, "GET", placement)
            no_issuer = response.status in (400, 500) and any(
                "no default issuer currently configured" in text for text in response.errors
            )
            gone = raw_serial and response.status == 404
            if (no_issuer and not twin.startswith("issuer/")) or gone:
                return Response(status=204, content_type=content_type)
            if not response.ok:
                _raise(response)
            pem = response.data.get(field)
            if not isinstance(pem, str) or not pem:
                return Response(status=204, content_type=content_type)
            return Response(body=encode(pem), content_type=content_type)

        return handler
