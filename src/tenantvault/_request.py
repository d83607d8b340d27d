"""Request and Response: the value types every surface (Python, HTTP, CLI) hands to the Core."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from tenantvault._public_random import public_random

if TYPE_CHECKING:
    from tenantvault.engines.auth._login import LoginResult

__all__ = [
    "OCSP_GET_FIELD",
    "OCSP_REQUEST_FIELD",
    "LeasedSecret",
    "Operation",
    "Request",
    "Response",
]

# The data key of an `application/ocsp-request` body: that body is DER, not JSON, so the
# HTTP layer hands it on unparsed (base64) under this key, as OpenBao hands its pki engine
# the raw body of such a request (`isOcspRequest`); only the pki `ocsp` route declares it.
OCSP_REQUEST_FIELD: Final = "_ocsp_request_der"
# The data key of RFC 6960's GET form with its base64 URL-escaped (`ocsp/MEow%2F…`): the HTTP
# layer hands the base64 on as data, not as path (an encoded '/' is refused in every path).
# The Core refuses it on every route that does not declare it (all but the pki `ocsp` read),
# as the encoded separator it would otherwise be. A query parameter can never take this name.
OCSP_GET_FIELD: Final = "ocsp:get-request"


class Operation(enum.StrEnum):
    """Vault's logical operations. Surfaces send UPDATE for writes; the Core decides whether
    the ACL must grant `create` or `update` by asking the engine whether the target exists."""

    READ = "read"
    LIST = "list"
    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"


def new_request_id() -> str:
    """A fresh random request id (a UUID4, as Vault's)."""
    # From the block pool (`_public_random`), not `uuid4()`'s getrandom call per request:
    # an id is no secret, unique and unguessable is all it must be.
    raw = bytearray(public_random(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(frozen=True, slots=True)
class Request:
    """One operation on one path, as a principal (token) in a tenant (namespace).

    `path` is tenant-relative and not yet validated (e.g. 'secret/data/app/db'); the Core parses
    it once. `namespace` is the tenant the caller asks for (X-Vault-Namespace), if any. Token
    and data are excluded from repr: they may hold secrets.
    """

    operation: Operation
    path: str
    data: Mapping[str, Any] | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    namespace: str | None = None
    client_address: str | None = None
    request_id: str = field(default_factory=new_request_id)
    # Response wrapping (X-Vault-Wrap-TTL, `_wrapping`): the Core stores the response and
    # answers a single-use wrapping token that lives this many seconds. None: not wrapped.
    wrap_ttl_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class LeasedSecret:
    """A dynamic secret an engine issued: the Core registers a lease for it (`leases`).

    `internal` is what the engine needs to renew or revoke it later (a database user's name
    and statements, never its password); it is stored with the lease and never returned.
    """

    internal: Mapping[str, Any] = field(repr=False)
    ttl_seconds: int = 0
    max_ttl_seconds: int = 0
    renewable: bool = True


@dataclass(slots=True)
class Response:
    """What the Core answers: Vault's envelope fields. `data=None` and `auth=None` with status
    204 means "no content"."""

    data: dict[str, Any] | None = field(default=None, repr=False)
    auth: dict[str, Any] | None = field(default=None, repr=False)
    warnings: list[str] | None = None
    status: int = 200
    request_id: str = ""
    # A few Vault endpoints (sys/health, sys/seal-status, sys/leader) answer with bare JSON,
    # not the envelope; clients such as hvac read their fields at the top level.
    raw: bool = False
    # Fields Vault repeats at the top level of the envelope (sys/mounts lists each mount both
    # under `data` and beside it; older clients read them there).
    top_level: dict[str, Any] | None = field(default=None, repr=False)
    # KV v1 reads carry a lease duration (the `ttl` in the data or the mount's), no lease.
    lease_duration: int = 0
    # A login route's answer: what the Core is asked to issue (it mints the token and sets
    # `auth`); refused on any other route (`engines/auth`).
    login: LoginResult | None = field(default=None, repr=False)
    # A wrapped response (`_wrapping`): the wrapping token's `wrap_info`, and nothing else.
    wrap_info: dict[str, Any] | None = field(default=None, repr=False)
    # A dynamic secret (database creds): the Core turns it into a lease and fills the
    # envelope's `lease_id`, `renewable` and `lease_duration`; never seen by a client.
    secret: LeasedSecret | None = field(default=None, repr=False)
    lease_id: str = ""
    renewable: bool = False
    # A raw body (PKI `ca`, `crl`: DER or PEM files), sent as is with `content_type` and no
    # envelope. Certificates and CRLs only: public material, nothing to redact.
    body: bytes | None = field(default=None, repr=False)
    content_type: str = ""

    @classmethod
    def no_content(cls) -> Response:
        """A 204 response: no data, no auth."""
        return cls(status=204)

    def envelope(self) -> dict[str, Any]:
        """Vault's JSON success envelope (or the bare data of a `raw` response)."""
        if self.raw:
            return dict(self.data or {})
        envelope: dict[str, Any] = {
            # OpenBao answers a wrapped response with an empty request id (the id belongs to
            # the response inside, which unwrap returns).
            "request_id": "" if self.wrap_info else self.request_id,
            "lease_id": self.lease_id,
            "renewable": self.renewable,
            "lease_duration": self.lease_duration,
            "data": self.data,
            "wrap_info": self.wrap_info,
            "warnings": self.warnings,
            "auth": self.auth,
        }
        # The repeated top-level fields come first; an envelope field of the same name wins.
        return {**self.top_level, **envelope} if self.top_level else envelope
