"""Password policies: Vault's `sys/policies/password/<name>`, per tenant.

`_rules` parses a policy document and generates passwords from it, `_store` keeps each
tenant's documents, `_routes` serves the endpoints. The database engine (`password_policy`
of a connection config) and the KV rotation's `random` rotator (`params.password_policy`)
generate through the same store, in the tenant of the mount or secret.
"""

from __future__ import annotations

from tenantvault._password_policy._routes import PasswordPolicyRoutes
from tenantvault._password_policy._rules import (
    CharsetRule,
    PasswordPolicy,
    PolicyGenerationError,
    parse_policy,
)
from tenantvault._password_policy._store import PasswordPolicyStore

__all__ = [
    "CharsetRule",
    "PasswordPolicy",
    "PasswordPolicyRoutes",
    "PasswordPolicyStore",
    "PolicyGenerationError",
    "parse_policy",
]
