"""The whole tenantvault error tree; every error maps to one Vault HTTP status.

```
TenantVaultError
├── ConfigurationError           bad settings, unknown backend scheme, missing extra, bad master key
├── RequestError                 the caller's fault (4xx)
│   ├── InvalidRequestError      400: malformed input (InvalidPathError is one kind)
│   │   ├── InvalidPathError     400: a path or tenant id outside the canonical grammar
│   │   └── CheckAndSetError     400: cas mismatch or cas required
│   ├── PermissionDeniedError    403: no/bad/expired/foreign token, or ACL denial
│   ├── NotFoundError            404: nothing at that path (may carry a Vault envelope)
│   ├── UnsupportedOperationError 405
│   ├── PayloadTooLargeError     413
│   └── UnsupportedMediaTypeError 415
├── BackendError                 storage side (5xx)
│   ├── ConflictError            a per-key revision check failed (internal; engines retry or map it)
│   ├── BackendUnavailableError  transient: retry may help (503)
│   ├── BackendTimeoutError      the outcome is unknown (504)
│   └── BadGatewayError          the upstream Vault answered garbage or failed (502)
├── IntegrityError               stored data failed authentication: tampered or misplaced (500)
├── AuditError                   no sink could record: the request fails closed (500)
├── InternalError                a bug, not a refusal (500): how the audit trail records one
├── DecryptionError              ONE opaque error for any key/tag/format failure
└── ClosedError                  used after aclose()
```

Messages carry tenant, mount, path and version where useful — never secret material,
never a submitted value.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuditError",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "BadGatewayError",
    "CheckAndSetError",
    "ClosedError",
    "ConfigurationError",
    "ConflictError",
    "DecryptionError",
    "IntegrityError",
    "InternalError",
    "InvalidPathError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RequestError",
    "TaintedNamespaceError",
    "TenantVaultError",
    "UnsupportedMediaTypeError",
    "UnsupportedOperationError",
]


class TenantVaultError(Exception):
    """Base of every error tenantvault raises on purpose."""

    status: int = 500

    def __init__(self, message: str = "", *, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Vault bodies carry a list of error strings; most carry exactly the message.
        self.errors: list[str] = errors if errors is not None else ([message] if message else [])


class ConfigurationError(TenantVaultError):
    """Settings are wrong: unknown backend scheme, unreadable key file, missing extra."""


class RequestError(TenantVaultError):
    """The request cannot be served as sent; retrying it unchanged will not help."""

    status = 400


class InvalidRequestError(RequestError):
    """Malformed input: wrong types, bad values, limits exceeded."""

    status = 400


class InvalidPathError(InvalidRequestError):
    """A path or tenant id outside the canonical grammar; rejected, never repaired."""


class CheckAndSetError(InvalidRequestError):
    """The `cas` option did not match the current version, or was required and missing."""


class PermissionDeniedError(RequestError):
    """Missing, malformed, expired, revoked or foreign token, or an ACL denial.

    Every cause answers with the same text so that a caller learns nothing about why.
    """

    status = 403

    def __init__(self, message: str = "permission denied") -> None:
        super().__init__(message)


class TaintedNamespaceError(PermissionDeniedError):
    """A request into a tenant that is being deleted (tainted), or a lease issued in one
    meanwhile: 403 with OpenBao's text for a route into a tainted namespace."""

    def __init__(self, tenant: str, path: str) -> None:
        super().__init__(
            f'no handler for route "{path}" on namespace "{tenant}/". route entry or '
            "namespace is tainted."
        )


class NotFoundError(RequestError):
    """Nothing at that path. `body` is the full Vault envelope Vault sends for deleted versions."""

    status = 404

    def __init__(
        self, message: str = "", *, body: dict[str, Any] | None = None, empty: bool = False
    ) -> None:
        super().__init__(message, errors=[message] if message else [])
        self.body = body
        # Vault answers a few 404s with no body at all (PATCH of a missing key).
        self.empty = empty


class UnsupportedOperationError(RequestError):
    """The operation is not implemented on that path (Vault: 405 unsupported operation)."""

    status = 405

    def __init__(self, message: str = "unsupported operation") -> None:
        super().__init__(message)


class PayloadTooLargeError(RequestError):
    """The request body exceeds the configured limit."""

    status = 413


class UnsupportedMediaTypeError(RequestError):
    """The request's content type is not one we parse."""

    status = 415


class BackendError(TenantVaultError):
    """The storage side failed."""

    status = 500


class ConflictError(BackendError):
    """A per-key revision check failed: someone else changed the record first."""


class BackendUnavailableError(BackendError):
    """Transient: the backend is down, sealed or overloaded; a retry may succeed."""

    status = 503


class BackendTimeoutError(BackendError):
    """The backend did not answer in time; the outcome of a write is unknown."""

    status = 504


class BadGatewayError(BackendError):
    """The upstream Vault/OpenBao answered something unusable (not JSON, wrong shape) or failed
    with a 5xx of its own; as a gateway we answer 502."""

    status = 502


class IntegrityError(TenantVaultError):
    """Stored data failed authentication: tampered with, or moved to another row."""

    status = 500


class AuditError(TenantVaultError):
    """No audit sink could record the request; it fails closed."""

    status = 500


class InternalError(TenantVaultError):
    """An unexpected failure inside tenantvault (a bug); the client sees only "internal error"."""

    status = 500

    def __init__(self) -> None:
        super().__init__("internal error")


class DecryptionError(TenantVaultError):
    """One opaque error for every key, tag or format failure, so none can be told apart."""

    status = 400


class ClosedError(TenantVaultError):
    """The object was used after `aclose()`."""
