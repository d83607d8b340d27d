"""tenantvault: a multi-tenant, Vault-compatible secrets service.

Every tenant is a Vault namespace with its own KV v2 secrets, ACL policies and tokens. The
Python API, the HTTP API and the CLI all pass one choke point (`Core`).
"""

from tenantvault._audit_hook import AuditHook, RequestContext
from tenantvault._client import KV, Policies, Tenant, TenantVault, Tokens, Transit, Wrapping, open
from tenantvault._clock import Clock
from tenantvault._core import Core
from tenantvault._exceptions import (
    AuditError,
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    BadGatewayError,
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
from tenantvault._models import (
    BatchResult,
    DataKey,
    KeyInfo,
    KeyMetadata,
    KVConfig,
    Secret,
    TenantInfo,
    TokenInfo,
    TokenLookup,
    VersionInfo,
    VersionState,
)
from tenantvault._refs import InvalidReferenceError, Reference, parse_reference
from tenantvault._request import Operation, Request, Response
from tenantvault._resolve import aresolve, resolve
from tenantvault._version import __version__
from tenantvault._wrapping import WrapInfo

__all__ = [
    "KV",
    "AuditError",
    "AuditHook",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "BadGatewayError",
    "BatchResult",
    "CheckAndSetError",
    "Clock",
    "ClosedError",
    "ConfigurationError",
    "ConflictError",
    "Core",
    "DataKey",
    "DecryptionError",
    "IntegrityError",
    "InternalError",
    "InvalidPathError",
    "InvalidReferenceError",
    "InvalidRequestError",
    "KVConfig",
    "KeyInfo",
    "KeyMetadata",
    "NotFoundError",
    "Operation",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Policies",
    "Reference",
    "Request",
    "RequestContext",
    "RequestError",
    "Response",
    "Secret",
    "Tenant",
    "TenantInfo",
    "TenantVault",
    "TenantVaultError",
    "TokenInfo",
    "TokenLookup",
    "Tokens",
    "Transit",
    "UnsupportedMediaTypeError",
    "UnsupportedOperationError",
    "VersionInfo",
    "VersionState",
    "WrapInfo",
    "Wrapping",
    "__version__",
    "aresolve",
    "open",
    "parse_reference",
    "resolve",
]
