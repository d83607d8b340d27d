"""tenantvault: a multi-tenant, Vault-compatible secrets service.

Every tenant is a Vault namespace with its own KV v2 secrets, ACL policies and tokens. The
Python API, the HTTP API and the CLI all pass one choke point (`Core`).
"""

from tenantvault._audit_hook import AuditHook, RequestContext
from tenantvault._client import (
    KV,
    KeyMetadata,
    Policies,
    Secret,
    Tenant,
    TenantVault,
    TokenInfo,
    Tokens,
    VersionInfo,
    open,
)
from tenantvault._core import Core
from tenantvault._exceptions import (
    AuditError,
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    CheckAndSetError,
    ClosedError,
    ConfigurationError,
    ConflictError,
    DecryptionError,
    IntegrityError,
    InternalError,
    InvalidPathError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RequestError,
    TenantVaultError,
    UnsupportedMediaTypeError,
    UnsupportedOperationError,
)
from tenantvault._request import Operation, Request, Response
from tenantvault._version import __version__

__all__ = [
    "KV",
    "AuditError",
    "AuditHook",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "CheckAndSetError",
    "ClosedError",
    "ConfigurationError",
    "ConflictError",
    "Core",
    "DecryptionError",
    "IntegrityError",
    "InternalError",
    "InvalidPathError",
    "InvalidRequestError",
    "KeyMetadata",
    "NotFoundError",
    "Operation",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Policies",
    "Request",
    "RequestContext",
    "RequestError",
    "Response",
    "Secret",
    "Tenant",
    "TenantVault",
    "TenantVaultError",
    "TokenInfo",
    "Tokens",
    "UnsupportedMediaTypeError",
    "UnsupportedOperationError",
    "VersionInfo",
    "__version__",
    "open",
]
