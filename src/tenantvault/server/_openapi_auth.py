"""The OpenAPI paths of auth methods and response wrapping: `sys/auth`, AppRole at
`auth/approle/`, JWT at `auth/jwt/` (where `sys/auth` enabled them; other paths answer the
same), and `sys/wrapping/*`. Part of the document `_openapi` builds.

Logins run without a token (`security: []`) but in the namespace the request names. Where
OpenBao answers a plain Go error with 500 (`missing role_id`, an unknown secret-id accessor,
...), tenantvault answers the same: those operations say so with `x-vault-plain-errors`, so
that fuzzers and tests know a 500 there is Vault's answer, not a crash.
"""

from __future__ import annotations

from typing import Any, Final

from tenantvault.server._openapi import (
    _DELETED,
    _DURATION,
    _LIST_PARAM,
    _MOUNT_PATH,
    _NON_NEGATIVE,
    _OK,
    _STRING_MAP,
    Schema,
    _object,
    _operation,
    _path_param,
    _writes,
)

__all__ = ["PLAIN_ERRORS", "auth_paths"]

# The extension naming operations whose 500 is Vault's plain error (see the module docstring).
PLAIN_ERRORS: Final = "x-vault-plain-errors"
_NAME_PATTERN: Final = "^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$"
_ROLE: Final = _path_param("name", _NAME_PATTERN, "Role name")
_NAMES: Final[Schema] = {
    "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
    "description": "A list, or a comma-separated string",
}
_BOOL: Final[Schema] = {"type": "boolean"}
_STRING: Final[Schema] = {"type": "string"}
_LOGGED_IN: Final = {"200": "Logged in: the token is in `auth`"}
_THROTTLED: Final = "Too many failed logins for this role and client address; retry later"
# AppRole's per-field endpoints (`role/<name>/<field>`): read, write, reset.
_ROLE_FIELDS: Final = (
    "bound-cidr-list",
    "period",
    "policies",
    "secret-id-bound-cidrs",
    "secret-id-num-uses",
    "secret-id-ttl",
    "token-bound-cidrs",
    "token-max-ttl",
    "token-num-uses",
    "token-ttl",
)
_TOKEN_FIELDS: Final[dict[str, Schema]] = {
    "token_policies": _NAMES,
    "policies": _NAMES,
    "token_ttl": _DURATION,
    "token_max_ttl": _DURATION,
    "token_explicit_max_ttl": _DURATION,
    "token_period": _DURATION,
    "period": _DURATION,
    "token_num_uses": _NON_NEGATIVE,
    "token_no_default_policy": _BOOL,
    "token_bound_cidrs": _NAMES,
    "token_strictly_bind_ip": _BOOL,
    "token_type": {"type": "string", "enum": ["default", "service", "batch"]},
}


def _plain(operation: Schema) -> Schema:
    """Mark `operation` as one that answers Vault's plain errors with 500."""
    operation[PLAIN_ERRORS] = True
    operation["responses"]["500"]["description"] = (
        "Vault's plain error (as OpenBao answers it), or an internal error"
    )
    return operation


def _both(operation: Schema) -> dict[str, Schema]:
    """POST and PUT are synonyms in Vault."""
    return {"post": operation, "put": operation}


def _plain_writes(summary: str, tag: str, body: Schema, **kwargs: Any) -> dict[str, Schema]:
    written = _writes(summary, tag, body, **kwargs)
    operation = _plain(written["post"])
    return {"post": operation, "put": operation}


def _login(summary: str, tag: str, body: Schema, *, plain: bool = False) -> dict[str, Schema]:
    """A login: no token (`security: []`), in the namespace the request names; 429 when
    throttled."""
    operation = _operation(summary, tag, success=_LOGGED_IN, body=body, body_required=True)
    operation["security"] = []
    operation["responses"]["429"] = {
        "description": _THROTTLED,
        "content": operation["responses"]["403"]["content"],
    }
    if plain:
        _plain(operation)
    return {"post": operation, "put": operation}


def _sys_auth_paths() -> dict[str, Schema]:
    enable = _object(
        {
            "type": {"type": "string", "description": "approle or jwt"},
            "description": _STRING,
            "config": _object(
                {
                    "default_lease_ttl": _DURATION,
                    "max_lease_ttl": _DURATION,
                    "listing_visibility": {"type": "string", "enum": ["", "hidden", "unauth"]},
                    "token_type": _STRING,
                }
            ),
            "options": _STRING_MAP,
            "local": _BOOL,
            "seal_wrap": _BOOL,
        },
        required=["type"],
    )
    tune = _object(
        {
            "default_lease_ttl": _DURATION,
            "max_lease_ttl": _DURATION,
            "description": _STRING,
            "listing_visibility": {"type": "string", "enum": ["", "hidden", "unauth"]},
            "options": _STRING_MAP,
            "token_type": {
                "type": "string",
                "enum": ["default-service", "default-batch", "service", "batch"],
            },
            "audit_non_hmac_request_keys": _NAMES,
            "audit_non_hmac_response_keys": _NAMES,
        }
    )
    return {
        "/sys/auth": {
            "get": _operation(
                "List the tenant's auth methods (token/ always)", "auth", success=_OK
            ),
        },
        "/sys/auth/{path}": {
            "parameters": [_MOUNT_PATH],
            "get": _operation("Read an auth method's mount (sudo)", "auth", success=_OK),
            **_writes(
                "Enable an auth method at auth/<path> (`bao auth enable`; sudo)",
                "auth",
                enable,
                body_required=True,
            ),
            "delete": _operation(
                "Disable an auth method: its roles go and the tokens it issued are revoked (sudo)",
                "auth",
                success=_DELETED,
            ),
        },
        "/sys/auth/{path}/tune": {
            "parameters": [_MOUNT_PATH],
            "get": _operation("Read an auth method's tunable settings (sudo)", "auth", success=_OK),
            **_writes("Tune an auth method (TTLs, token type; sudo)", "auth", tune),
        },
        "/sys/mounts/auth/{path}/tune": {
            "parameters": [_MOUNT_PATH],
            "get": _operation("Read an auth method's tunable settings", "auth", success=_OK),
            **_writes("Tune an auth method (TTLs, token type)", "auth", tune),
        },
    }


def _approle_paths() -> dict[str, Schema]:
    base = "/auth/approle"
    role = _object(
        {
            "bind_secret_id": _BOOL,
            "secret_id_bound_cidrs": _NAMES,
            "bound_cidr_list": _NAMES,
            "secret_id_num_uses": _NON_NEGATIVE,
            "secret_id_ttl": _DURATION,
            "local_secret_ids": _BOOL,
            "role_id": _STRING,
            **_TOKEN_FIELDS,
        }
    )
    generate = {
        "metadata": {"type": "string", "description": "A JSON object of strings, as a string"},
        "cidr_list": _NAMES,
        "token_bound_cidrs": _NAMES,
        "num_uses": _NON_NEGATIVE,
        "ttl": _DURATION,
    }
    secret_id = _object({"secret_id": _STRING}, required=["secret_id"])
    accessor = _object({"secret_id_accessor": _STRING}, required=["secret_id_accessor"])
    field = {
        "name": "field",
        "in": "path",
        "required": True,
        "description": "One setting of the role",
        "schema": {"type": "string", "enum": list(_ROLE_FIELDS)},
    }
    tag = "approle"
    return {
        f"{base}/login": _login(
            "Log in with a role-id and (if the role binds one) a secret-id",
            tag,
            _object({"role_id": _STRING, "secret_id": _STRING}, required=["role_id"]),
            plain=True,
        ),
        f"{base}/role": {
            "get": _operation("List the roles", tag, success=_OK, parameters=[_LIST_PARAM]),
        },
        f"{base}/role/{{name}}": {
            "parameters": [_ROLE],
            "get": _operation("Read a role", tag, success=_OK),
            **_plain_writes("Create or update a role", tag, role),
            "delete": _operation("Delete a role and its secret-ids", tag, success=_DELETED),
        },
        f"{base}/role/{{name}}/{{field}}": {
            "parameters": [_ROLE, field],
            "get": _operation("Read one setting of a role", tag, success=_OK),
            **_plain_writes("Write one setting of a role", tag, role),
            "delete": _operation("Reset one setting of a role", tag, success=_DELETED),
        },
        f"{base}/role/{{name}}/local-secret-ids": {
            "parameters": [_ROLE],
            "get": _operation("Read whether the role's secret-ids are local", tag, success=_OK),
        },
        f"{base}/role/{{name}}/role-id": {
            "parameters": [_ROLE],
            "get": _operation("Read the role's role-id", tag, success=_OK),
            **_plain_writes(
                "Set the role's role-id", tag, _object({"role_id": _STRING}, required=["role_id"])
            ),
        },
        f"{base}/role/{{name}}/secret-id": {
            "parameters": [_ROLE],
            "get": _plain(
                _operation(
                    "List the accessors of the role's secret-ids",
                    tag,
                    success=_OK,
                    parameters=[_LIST_PARAM],
                )
            ),
            **_plain_writes("Generate a secret-id (shown once)", tag, _object(generate)),
        },
        f"{base}/role/{{name}}/custom-secret-id": {
            "parameters": [_ROLE],
            **_plain_writes(
                "Register a secret-id of the caller's choosing",
                tag,
                _object({**generate, "secret_id": _STRING}, required=["secret_id"]),
            ),
        },
        f"{base}/role/{{name}}/secret-id/lookup": {
            "parameters": [_ROLE],
            **_plain_writes("Look up a secret-id's properties", tag, secret_id),
        },
        f"{base}/role/{{name}}/secret-id/destroy": {
            "parameters": [_ROLE],
            **_plain_writes("Destroy a secret-id", tag, secret_id),
            "delete": _plain(_operation("Destroy a secret-id", tag, success=_DELETED)),
        },
        f"{base}/role/{{name}}/secret-id-accessor/lookup": {
            "parameters": [_ROLE],
            **_plain_writes("Look up a secret-id by its accessor", tag, accessor),
        },
        f"{base}/role/{{name}}/secret-id-accessor/destroy": {
            "parameters": [_ROLE],
            **_plain_writes("Destroy a secret-id by its accessor", tag, accessor),
            "delete": _plain(
                _operation("Destroy a secret-id by its accessor", tag, success=_DELETED)
            ),
        },
        f"{base}/tidy/secret-id": _both(
            _operation(
                "Remove expired secret-ids and dangling accessors",
                tag,
                success={"202": "Tidy started (its outcome goes to the server log)"},
                body=_object({}),
            )
        ),
    }


def _jwt_paths() -> dict[str, Schema]:
    base = "/auth/jwt"
    config = _object(
        {
            "jwt_validation_pubkeys": _NAMES,
            "jwks_url": {
                "type": "string",
                "description": "Only under the operator's --jwt-jwks-allow prefixes, or "
                "else reaching public addresses only",
            },
            "jwks_ca_pem": _STRING,
            "bound_issuer": _STRING,
            "jwt_supported_algs": _NAMES,
            "default_role": _STRING,
        }
    )
    role = _object(
        {
            "role_type": {"type": "string", "enum": ["jwt"]},
            "user_claim": _STRING,
            "user_claim_json_pointer": _BOOL,
            "bound_audiences": _NAMES,
            "bound_subject": _STRING,
            "bound_claims": {"type": "object"},
            "bound_claims_type": {"type": "string", "enum": ["string", "glob"]},
            "claim_mappings": _STRING_MAP,
            "groups_claim": _STRING,
            "clock_skew_leeway": _DURATION,
            "expiration_leeway": _DURATION,
            "not_before_leeway": _DURATION,
            **_TOKEN_FIELDS,
        }
    )
    tag = "jwt"
    return {
        f"{base}/login": _login(
            "Log in with a signed JWT",
            tag,
            _object({"role": _STRING, "jwt": _STRING}, required=["jwt"]),
        ),
        f"{base}/config": {
            "get": _operation("Read the mount's key configuration", tag, success=_OK),
            **_writes("Configure the keys JWTs are verified with", tag, config),
        },
        f"{base}/role": {
            "get": _operation("List the roles", tag, success=_OK, parameters=[_LIST_PARAM]),
        },
        f"{base}/role/{{name}}": {
            "parameters": [_ROLE],
            "get": _operation("Read a role", tag, success=_OK),
            **_writes("Create or update a role", tag, role),
            "delete": _operation("Delete a role", tag, success=_DELETED),
        },
    }


def _wrapping_paths() -> dict[str, Schema]:
    token = _object({"token": _STRING})
    wrap_ttl = {
        "name": "X-Vault-Wrap-TTL",
        "in": "header",
        "required": False,
        "description": "How long the wrapping token lives, e.g. 5m (without it: 400)",
        "schema": _STRING,
    }
    lookup = _writes("Look up a wrapping token (no token needed)", "wrapping", token)
    for operation in lookup.values():
        operation["security"] = []
    return {
        "/sys/wrapping/wrap": _writes(
            "Wrap the request body (needs X-Vault-Wrap-TTL)",
            "wrapping",
            {"type": "object", "additionalProperties": True},
            parameters=[wrap_ttl],
        ),
        "/sys/wrapping/unwrap": _writes(
            "Unwrap once: the wrapped response (the wrapping token, or the `token` given)",
            "wrapping",
            token,
        ),
        "/sys/wrapping/lookup": lookup,
        "/sys/wrapping/rewrap": _writes(
            "Move a wrapped response to a new wrapping token", "wrapping", token
        ),
    }


def auth_paths() -> dict[str, Schema]:
    """The paths of `sys/auth`, AppRole, JWT and `sys/wrapping`."""
    return {**_sys_auth_paths(), **_approle_paths(), **_jwt_paths(), **_wrapping_paths()}
