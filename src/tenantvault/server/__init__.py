"""The Vault-compatible HTTP API as a bare ASGI application (tenants are namespaces).

`create_app(settings)` returns the ASGI callable; run it on any ASGI server with lifespan
support (`tenantvault serve` runs it on granian), or in-process with
`httpx.ASGITransport` after `await app.startup()`.
"""

from tenantvault.server._app import CoreFactory, RootTokenHandler, TenantVaultApp, create_app
from tenantvault.server._openapi import openapi_spec

__all__ = ["CoreFactory", "RootTokenHandler", "TenantVaultApp", "create_app", "openapi_spec"]
