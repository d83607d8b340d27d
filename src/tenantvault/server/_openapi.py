"""The OpenAPI 3 document of everything the server answers, served at sys/internal/specs/openapi.

Written by hand from the routes in `tenantvault.engines` and the HTTP layer, and kept honest
by tests that call every operation listed here and check that the status code they get is
one this document lists. Every operation lists every status the HTTP layer itself can
produce (400 bad input, 403, 404, 405, 413, 414, 431, 500, 503), because a fuzzer
(schemathesis `status_code_conformance`) will find each of them.

OpenAPI has no LIST verb: list operations are documented as `GET …?list=true`, which is
what the Vault CLI sends; the `LIST` method is accepted as well.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import orjson

from tenantvault._version import __version__
from tenantvault.crypto import KeyType

__all__ = ["OPENAPI_PATH", "openapi_document", "openapi_spec"]

OPENAPI_PATH: Final = "sys/internal/specs/openapi"

_COMMON_ERRORS: Final = {
    "400": "Invalid request: bad path, parameter, header, JSON or form body",
    "403": "Missing, invalid or foreign token, or denied by policy",
    "404": "Nothing at this path (also: an empty list)",
    "405": "The operation is not supported on this path",
    "413": "The request body is larger than the configured limit",
    "414": "The request path or query string is too long",
    "431": "The request headers are too large",
    "500": "Internal error",
    "503": "The server is starting, shutting down or its storage is unavailable",
}
_BODY_ERRORS: Final = {"408": "The request body did not arrive in time"}
# Only PATCH is held to its label: every other body is JSON, or a form if labelled one.
_PATCH_ERRORS: Final = {"415": "The Content-Type is not application/merge-patch+json"}

Schema = dict[str, Any]

_ERRORS_SCHEMA: Final[Schema] = {
    "type": "object",
    "properties": {"errors": {"type": "array", "items": {"type": "string"}}},
}
_ENVELOPE_SCHEMA: Final[Schema] = {
    "type": "object",
    "properties": {
        "request_id": {"type": "string"},
        "lease_id": {"type": "string"},
        "renewable": {"type": "boolean"},
        "lease_duration": {"type": "integer"},
        "data": {"type": "object", "nullable": True},
        "wrap_info": {"type": "object", "nullable": True},
        "warnings": {"type": "array", "nullable": True, "items": {"type": "string"}},
        "auth": {"type": "object", "nullable": True},
    },
}
_STRING_MAP: Final[Schema] = {"type": "object", "additionalProperties": {"type": "string"}}
_DURATION: Final[Schema] = {
    "oneOf": [{"type": "string"}, {"type": "integer", "minimum": 0}],
    "description": "Seconds, or a Go duration string such as '1h30m'",
}
_VERSIONS: Final[Schema] = {
    "type": "array",
    "items": {"type": "integer", "minimum": 1},
    "description": "Version numbers",
}
_NON_NEGATIVE: Final[Schema] = {"type": "integer", "minimum": 0, "maximum": 2**53}
_NAMESPACE_HEADER: Final[Schema] = {
    "name": "X-Vault-Namespace",
    "in": "header",
    "required": False,
    "description": "The tenant (namespace). With a tenant token it must name the token's own "
    "tenant (else 403); with the root token it selects any tenant.",
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}/?$"},
}


def _json_response(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(success: dict[str, str], *, body: bool, patch: bool = False) -> Schema:
    responses: Schema = {}
    for code, description in success.items():
        if code == "204":
            responses[code] = {"description": description}
        else:
            responses[code] = _json_response(description, _ENVELOPE_SCHEMA)
    errors = {
        **_COMMON_ERRORS,
        **(_BODY_ERRORS if body else {}),
        **(_PATCH_ERRORS if patch else {}),
    }
    for code, description in sorted(errors.items()):
        # A deleted KV version answers 404 with a full envelope (data.metadata), not errors.
        schema = {"oneOf": [_ERRORS_SCHEMA, _ENVELOPE_SCHEMA]} if code == "404" else _ERRORS_SCHEMA
        responses[code] = _json_response(description, schema)
    return responses


def _query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def _path_param(name: str, pattern: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": pattern},
    }


_LIST_PARAM: Final = _query(
    "list",
    {"type": "string", "enum": ["true"]},
    "List the keys (the LIST method does the same)",
    required=True,
)
_SECRET_PATH: Final = _path_param(
    "path",
    "^[A-Za-z0-9][A-Za-z0-9_.@=:~-]{0,127}$",
    "The secret's path below the mount; deeper paths use '/' unencoded (e.g. app/db)",
)
_TENANT_NAME: Final = _path_param(
    "namespace", "^[a-z0-9][a-z0-9-]{0,62}$", "Tenant id: lowercase letters, digits and '-'"
)
_POLICY_NAME: Final = _path_param("name", "^[A-Za-z0-9][A-Za-z0-9_.@=:~-]{0,127}$", "Policy name")
_MOUNT_PATH: Final = _path_param(
    "path", "^[A-Za-z0-9][A-Za-z0-9_.@=:~-]{0,127}$", "The mount path (without the trailing '/')"
)
_ROLE_NAME: Final = _path_param("name", "^[A-Za-z0-9][A-Za-z0-9_.@=:~-]{0,127}$", "Token role")
_UI_MOUNT_PATH: Final = _path_param(
    "path", "^[A-Za-z0-9][A-Za-z0-9_.@=:~-]{0,127}$", "A mount, optionally with a path in it"
)


_RANDOM_BODY: Final = {
    "type": "object",
    "properties": {
        "bytes": {"type": "integer", "minimum": 1, "maximum": 131072},
        "format": {"type": "string", "enum": ["base64", "hex"]},
        "source": {"type": "string", "enum": ["platform", "seal", "all"]},
    },
}
_HASH_FIELDS: Final[dict[str, Schema]] = {
    "input": {"type": "string", "description": "Base64"},
    "format": {"type": "string", "enum": ["base64", "hex"]},
    "algorithm": {"type": "string"},
}
_ALGORITHM: Final = _path_param("algorithm", "^[a-z0-9-]{1,16}$", "Algorithm")
_BYTES: Final = _path_param("bytes", "^[0-9]{1,6}$", "How many bytes")
_SOURCE: Final = {
    "name": "source",
    "in": "path",
    "required": True,
    "description": "Entropy source",
    "schema": {"type": "string", "enum": ["platform", "seal", "all"]},
}


def _operation(
    summary: str,
    tag: str,
    *,
    success: dict[str, str],
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    body_media: str = "application/json",
    body_required: bool = False,
    public: bool = False,
) -> Schema:
    operation: Schema = {
        "summary": summary,
        "tags": [tag],
        "parameters": [*(parameters or []), *([] if public else [_NAMESPACE_HEADER])],
        "responses": _responses(
            success, body=body is not None, patch=body_media == "application/merge-patch+json"
        ),
    }
    if body is not None:
        operation["requestBody"] = {
            "required": body_required,
            "content": {body_media: {"schema": body}},
        }
    if public:
        operation["security"] = []
    return operation


def _object(properties: dict[str, Schema], *, required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


_OK: Final = {"200": "Success"}
_WRITTEN: Final = {"200": "Success, with data or warnings", "204": "Success, no content"}
_DELETED: Final = {"204": "Deleted", "200": "Deleted, with warnings"}


def _writes(summary: str, tag: str, body: Schema, **kwargs: Any) -> dict[str, Schema]:
    """POST and PUT are synonyms in Vault: both create or update."""
    operation = _operation(summary, tag, success=_WRITTEN, body=body, **kwargs)
    return {"post": operation, "put": operation}


def _token_paths() -> dict[str, Schema]:
    token_body = _object(
        {
            "policies": {"type": "array", "items": {"type": "string"}},
            "ttl": _DURATION,
            "explicit_max_ttl": _DURATION,
            "period": _DURATION,
            "renewable": {"type": "boolean"},
            "no_parent": {"type": "boolean"},
            "no_default_policy": {"type": "boolean"},
            "num_uses": _NON_NEGATIVE,
            "display_name": {"type": "string"},
            "meta": _STRING_MAP,
        }
    )
    token = _object({"token": {"type": "string"}}, required=["token"])
    accessor = _object({"accessor": {"type": "string"}}, required=["accessor"])
    renew = _object({"token": {"type": "string"}, "increment": _DURATION}, required=["token"])
    increment = _object({"increment": _DURATION})
    empty = _object({})
    names = {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]}
    role_body = _object(
        {
            "allowed_policies": names,
            "disallowed_policies": names,
            "allowed_policies_glob": names,
            "disallowed_policies_glob": names,
            "orphan": {"type": "boolean"},
            "renewable": {"type": "boolean"},
            "path_suffix": {"type": "string"},
            "allowed_entity_aliases": names,
            "token_period": _DURATION,
            "token_explicit_max_ttl": _DURATION,
            "token_bound_cidrs": names,
            "token_no_default_policy": {"type": "boolean"},
            "token_type": {"type": "string", "enum": ["default-service", "service"]},
        }
    )
    paths: dict[str, Schema] = {
        "/auth/token/create": _writes("Create a token in the caller's tenant", "token", token_body),
        "/auth/token/create-orphan": _writes(
            "Create an orphan token (root or sudo)", "token", token_body
        ),
        "/auth/token/lookup": _writes("Look up a token of the caller's tenant", "token", token),
        "/auth/token/lookup-self": {
            "get": _operation("Look up the calling token", "token", success=_OK),
            **_writes("Look up the calling token", "token", empty),
        },
        "/auth/token/lookup-accessor": _writes("Look up a token by accessor", "token", accessor),
        "/auth/token/renew": _writes("Renew a token", "token", renew),
        "/auth/token/renew-self": _writes("Renew the calling token", "token", increment),
        "/auth/token/renew-accessor": _writes(
            "Renew a token by accessor (a login's token: while its role exists)",
            "token",
            _object(
                {"accessor": {"type": "string"}, "increment": _DURATION}, required=["accessor"]
            ),
        ),
        "/auth/token/revoke": _writes("Revoke a token and its children", "token", token),
        "/auth/token/revoke-self": _writes("Revoke the calling token", "token", empty),
        "/auth/token/revoke-accessor": _writes("Revoke a token by accessor", "token", accessor),
        "/auth/token/revoke-orphan": _writes(
            "Revoke a token, orphaning its children (sudo)", "token", token
        ),
        "/auth/token/roles": {
            "get": _operation(
                "List the tenant's token roles", "token", success=_OK, parameters=[_LIST_PARAM]
            ),
        },
        "/auth/token/roles/{name}": {
            "parameters": [_ROLE_NAME],
            "get": _operation("Read a token role", "token", success=_OK),
            **_writes("Create or update a token role", "token", role_body),
            "delete": _operation("Delete a token role", "token", success=_DELETED),
        },
        "/auth/token/create/{name}": {
            "parameters": [_ROLE_NAME],
            **_writes("Create a token through a token role", "token", token_body),
        },
        "/auth/token/accessors": {
            "get": _operation(
                "List the accessors of the tenant's tokens (sudo)",
                "token",
                success=_OK,
                parameters=[_LIST_PARAM],
            ),
        },
    }
    return paths


def _kv_paths() -> dict[str, Schema]:
    settings = {
        "max_versions": _NON_NEGATIVE,
        "cas_required": {"type": "boolean"},
        "delete_version_after": _DURATION,
    }
    version = _query("version", _NON_NEGATIVE, "Version to read; 0 or absent: the latest")
    write_body = _object(
        {"data": {"type": "object"}, "options": _object({"cas": _NON_NEGATIVE})},
        required=["data"],
    )
    metadata_body = _object({**settings, "custom_metadata": _STRING_MAP})
    versions_body = _object({"versions": _VERSIONS}, required=["versions"])
    list_op = _operation("List keys under a directory", "kv", success=_OK, parameters=[_LIST_PARAM])
    return {
        "/secret/config": {
            "get": _operation("Read the KV mount configuration", "kv", success=_OK),
            **_writes("Configure the KV mount", "kv", _object(settings)),
        },
        "/secret/data/{path}": {
            "parameters": [_SECRET_PATH],
            "get": _operation(
                "Read a secret version (404 with metadata if deleted)",
                "kv",
                success=_OK,
                parameters=[version],
            ),
            **_writes(
                "Write a new version (options.cas for check-and-set)",
                "kv",
                write_body,
                body_required=True,
            ),
            "patch": _operation(
                "Merge a JSON merge patch into the latest version",
                "kv",
                success=_OK,
                body=write_body,
                body_media="application/merge-patch+json",
                body_required=True,
            ),
            "delete": _operation("Soft-delete the latest version", "kv", success=_DELETED),
        },
        "/secret/metadata/": {"get": list_op},
        "/secret/metadata/{path}/": {"parameters": [_SECRET_PATH], "get": list_op},
        "/secret/metadata/{path}": {
            "parameters": [_SECRET_PATH],
            "get": _operation("Read a key's metadata and version history", "kv", success=_OK),
            **_writes("Write a key's metadata", "kv", metadata_body),
            "patch": _operation(
                "Patch a key's metadata",
                "kv",
                success=_WRITTEN,
                body=metadata_body,
                body_media="application/merge-patch+json",
            ),
            "delete": _operation("Delete a key and all its versions", "kv", success=_DELETED),
        },
        "/secret/delete/{path}": {
            "parameters": [_SECRET_PATH],
            **_writes("Soft-delete versions", "kv", versions_body, body_required=True),
        },
        "/secret/undelete/{path}": {
            "parameters": [_SECRET_PATH],
            **_writes("Undelete versions", "kv", versions_body, body_required=True),
        },
        "/secret/destroy/{path}": {
            "parameters": [_SECRET_PATH],
            **_writes("Destroy versions for good", "kv", versions_body, body_required=True),
        },
        "/secret/subkeys/{path}": {
            "parameters": [_SECRET_PATH],
            "get": _operation(
                "Read the key structure of a version, without values",
                "kv",
                success=_OK,
                parameters=[version, _query("depth", _NON_NEGATIVE, "0: unlimited")],
            ),
        },
    }


def _sys_paths() -> dict[str, Schema]:
    code = {
        "type": "integer",
        "minimum": 200,
        "maximum": 599,
        "description": "2xx (not 205), 4xx or 5xx",
    }
    active_code = {**code, "maximum": 499, "description": "2xx (not 205) or 4xx"}
    flag = {"type": "string", "enum": ["true", "false"]}
    health_params = [
        _query("standbyok", flag, "Vault compatibility; this server is never a standby"),
        _query("perfstandbyok", flag, "Vault compatibility; this server is never a standby"),
        _query("activecode", active_code, "The status code to answer when serving"),
        *(
            _query(name, code, "The status code to answer in that state")
            for name in (
                "standbycode",
                "drsecondarycode",
                "performancestandbycode",
                "sealedcode",
                "uninitcode",
            )
        ),
        _query(
            "servicesunhealthycode",
            code,
            "tenantvault: the status code when a background service crash-loops (503)",
        ),
    ]
    health = _operation(
        "Health: 200 when serving, 503 when sealed or shutting down",
        "sys",
        success=_OK,
        parameters=health_params,
        public=True,
    )
    # The caller picks the status of each state (activecode, sealedcode, ...).
    health["responses"]["default"] = _json_response(
        "The status code chosen with a *code parameter", _ENVELOPE_SCHEMA
    )
    health_head = {
        **health,
        "responses": {
            code: {"description": response["description"]}
            for code, response in health["responses"].items()
        },
    }
    policy_body = _object({"policy": {"type": "string"}}, required=["policy"])
    legacy_body = _object({"policy": {"type": "string"}, "rules": {"type": "string"}})
    mount_config = _object(
        {
            "default_lease_ttl": _DURATION,
            "max_lease_ttl": _DURATION,
            "force_no_cache": {"type": "boolean"},
        }
    )
    mount_body = _object(
        {
            "type": {"type": "string", "description": "kv, kv-v1, kv-v2, generic or transit"},
            "description": {"type": "string"},
            "config": mount_config,
            "options": _STRING_MAP,
            "local": {"type": "boolean"},
            "seal_wrap": {"type": "boolean"},
        },
        required=["type"],
    )
    tune_body = _object(
        {
            "default_lease_ttl": _DURATION,
            "max_lease_ttl": _DURATION,
            "description": {"type": "string"},
            "options": _STRING_MAP,
        }
    )
    return {
        "/sys/health": {"get": health, "head": health_head},
        "/sys/leader": {
            "get": _operation(
                "HA leader status (a standalone node: ha_enabled false)",
                "sys",
                success=_OK,
                public=True,
            ),
        },
        "/sys/seal-status": {
            "get": _operation(
                "Seal status (the `vault status` command)", "sys", success=_OK, public=True
            ),
        },
        "/sys/init": {
            "get": _operation(
                "Initialization status (always initialized)", "sys", success=_OK, public=True
            ),
        },
        "/sys/tools/random": _writes("Random bytes", "sys", _RANDOM_BODY),
        "/sys/tools/random/{bytes}": {
            "parameters": [_BYTES],
            **_writes("Random bytes", "sys", _RANDOM_BODY),
        },
        "/sys/tools/random/{source}/{bytes}": {
            "parameters": [_SOURCE, _BYTES],
            **_writes("Random bytes from an entropy source", "sys", _RANDOM_BODY),
        },
        "/sys/tools/hash": _writes("Hash data", "sys", _object({**_HASH_FIELDS})),
        "/sys/tools/hash/{algorithm}": {
            "parameters": [_ALGORITHM],
            **_writes("Hash data", "sys", _object({**_HASH_FIELDS})),
        },
        "/sys/internal/specs/openapi": {
            "get": {
                **_operation(
                    "This document", "sys", success={"200": "The OpenAPI document"}, public=True
                ),
                "responses": {
                    **_responses({}, body=False),
                    "200": {
                        "description": "The OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                },
            },
        },
        "/sys/namespaces": {
            "get": _operation(
                "List tenants (root token)", "namespaces", success=_OK, parameters=[_LIST_PARAM]
            ),
        },
        "/sys/namespaces/{namespace}": {
            "parameters": [_TENANT_NAME],
            "get": _operation("Read a tenant (root token)", "namespaces", success=_OK),
            **_writes(
                "Create a tenant (root token)",
                "namespaces",
                _object({"custom_metadata": _STRING_MAP}),
            ),
            "delete": _operation(
                "Delete a tenant and crypto-shred its data (root token)",
                "namespaces",
                success=_DELETED,
            ),
        },
        "/sys/policies/acl": {
            "get": _operation(
                "List ACL policies", "policies", success=_OK, parameters=[_LIST_PARAM]
            ),
        },
        "/sys/policies/acl/{name}": {
            "parameters": [_POLICY_NAME],
            "get": _operation("Read an ACL policy", "policies", success=_OK),
            **_writes(
                "Write an ACL policy (HCL or JSON)", "policies", policy_body, body_required=True
            ),
            "delete": _operation("Delete an ACL policy", "policies", success=_DELETED),
        },
        "/sys/policy": {
            "get": _operation("List policies (legacy endpoint)", "policies", success=_OK),
        },
        "/sys/policy/{name}": {
            "parameters": [_POLICY_NAME],
            "get": _operation("Read a policy (legacy endpoint)", "policies", success=_OK),
            **_writes("Write a policy (legacy endpoint)", "policies", legacy_body),
            "delete": _operation("Delete a policy (legacy endpoint)", "policies", success=_DELETED),
        },
        "/sys/policies/password": {
            "get": _operation(
                "List the tenant's password policies",
                "policies",
                success=_OK,
                parameters=[_LIST_PARAM],
            ),
        },
        "/sys/policies/password/{name}": {
            "parameters": [_POLICY_NAME],
            "get": _operation("Read a password policy (as written)", "policies", success=_OK),
            **_writes(
                "Write a password policy: HCL or JSON (or base64 of either) with `length` "
                '(4-100) and `rule "charset" { charset, min-chars }` blocks',
                "policies",
                _object({"policy": {"type": "string"}}, required=["policy"]),
                body_required=True,
            ),
            "delete": _operation("Delete a password policy", "policies", success=_DELETED),
        },
        "/sys/policies/password/{name}/generate": {
            "parameters": [_POLICY_NAME],
            "get": _operation(
                "Generate a password from the policy: data.password", "policies", success=_OK
            ),
        },
        "/sys/mounts": {
            "get": _operation("List the mounts of the tenant", "sys", success=_OK),
        },
        "/sys/mounts/{path}": {
            "parameters": [_MOUNT_PATH],
            "get": _operation("Read a mount", "sys", success=_OK),
            **_writes(
                "Enable a secrets engine at a path (`bao secrets enable`)",
                "sys",
                mount_body,
                body_required=True,
            ),
            "delete": _operation(
                "Disable a mount: its data and key are destroyed", "sys", success=_DELETED
            ),
        },
        "/sys/mounts/{path}/tune": {
            "parameters": [_MOUNT_PATH],
            "get": _operation("Read a mount's tunable settings", "sys", success=_OK),
            **_writes(
                "Tune a mount (TTLs, description; kv `version` 2 upgrades kv v1)",
                "sys",
                tune_body,
            ),
        },
        "/sys/internal/ui/mounts": {
            "get": _operation("The namespace's mounts (secret and auth)", "sys", success=_OK),
        },
        "/sys/internal/ui/mounts/{path}": {
            "parameters": [_UI_MOUNT_PATH],
            "get": _operation(
                "The mount serving a path (the Vault CLI's KV preflight)", "sys", success=_OK
            ),
        },
        "/sys/pki/expiring": {
            "get": _operation(
                "Certificates and CAs of the namespace's pki mounts expiring within a window "
                "(revoked ones left out; metadata only)",
                "sys",
                success=_OK,
                parameters=[_query("within", _DURATION, "How far ahead to look (default 720h)")],
            ),
        },
        "/sys/capabilities-self": _writes(
            "The calling token's capabilities on paths",
            "sys",
            _object(
                {
                    "paths": {"type": "array", "items": {"type": "string"}},
                    "path": {"type": "string"},
                }
            ),
        ),
        "/sys/capabilities": _writes(
            "A token's capabilities on paths (a token of the caller's own tenant)",
            "sys",
            _object(
                {
                    "token": {"type": "string"},
                    "paths": {"type": "array", "items": {"type": "string"}},
                    "path": {"type": "string"},
                }
            ),
        ),
        "/sys/capabilities-accessor": _writes(
            "The capabilities on paths of the token with this accessor (caller's own tenant)",
            "sys",
            _object(
                {
                    "accessor": {"type": "string"},
                    "paths": {"type": "array", "items": {"type": "string"}},
                    "path": {"type": "string"},
                }
            ),
        ),
    }


_KEY_NAME: Final = _path_param("name", "^[A-Za-z0-9][A-Za-z0-9_.@=:~-]{0,127}$", "Transit key name")
_B64: Final[Schema] = {"type": "string", "description": "base64"}


def _batch(item: dict[str, Schema]) -> Schema:
    return {"type": "array", "items": _object(item), "description": "Batch items"}


def _transit_paths() -> dict[str, Schema]:
    key_settings = {
        "exportable": {"type": "boolean"},
        "allow_plaintext_backup": {"type": "boolean"},
        "auto_rotate_period": _DURATION,
    }
    create_key = _object(
        {
            "type": {
                "type": "string",
                # The types served, from the one list of them: Vault's other names get a 400.
                "enum": [key_type.value for key_type in KeyType],
            },
            "derived": {"type": "boolean"},
            "convergent_encryption": {"type": "boolean"},
            "key_size": {"type": "integer", "minimum": 0, "maximum": 4096},
            **key_settings,
        }
    )
    configure_key = _object(
        {
            "min_decryption_version": _NON_NEGATIVE,
            "min_encryption_version": _NON_NEGATIVE,
            "deletion_allowed": {"type": "boolean"},
            **key_settings,
        }
    )
    context = {"context": _B64, "associated_data": _B64}
    encrypt = _object(
        {
            "plaintext": _B64,
            **context,
            "key_version": _NON_NEGATIVE,
            "type": {"type": "string"},
            "convergent_encryption": {"type": "boolean"},
            "batch_input": _batch({"plaintext": _B64, **context, "reference": {"type": "string"}}),
        }
    )
    decrypt = _object(
        {
            "ciphertext": {"type": "string"},
            **context,
            "batch_input": _batch({"ciphertext": {"type": "string"}, **context}),
        }
    )
    rewrap = _object(
        {
            "ciphertext": {"type": "string"},
            **context,
            "key_version": _NON_NEGATIVE,
            "batch_input": _batch({"ciphertext": {"type": "string"}, **context}),
        }
    )
    datakey = _object({"bits": {"type": "integer", "enum": [128, 256, 512]}, **context})
    hmac_body = _object(
        {
            "input": _B64,
            "key_version": _NON_NEGATIVE,
            "algorithm": {"type": "string"},
            "batch_input": _batch({"input": _B64}),
        }
    )
    sign = _object(
        {
            "input": _B64,
            "key_version": _NON_NEGATIVE,
            "hash_algorithm": {"type": "string"},
            "signature_algorithm": {"type": "string"},
            "prehashed": {"type": "boolean"},
            "context": _B64,
            "batch_input": _batch({"input": _B64, "context": _B64}),
        }
    )
    verify = _object(
        {
            "input": _B64,
            "signature": {"type": "string"},
            "hmac": {"type": "string"},
            "hash_algorithm": {"type": "string"},
            "signature_algorithm": {"type": "string"},
            "prehashed": {"type": "boolean"},
            "context": _B64,
            "batch_input": _batch(
                {"input": _B64, "signature": {"type": "string"}, "hmac": {"type": "string"}}
            ),
        }
    )
    random = _RANDOM_BODY
    hash_body = _object({**_HASH_FIELDS}, required=["input"])
    algorithm = _ALGORITHM
    export_kind = {
        "name": "kind",
        "in": "path",
        "required": True,
        "description": "What to export",
        "schema": {
            "type": "string",
            "enum": ["encryption-key", "signing-key", "hmac-key", "public-key"],
        },
    }
    version = _path_param("version", "^(latest|[0-9]{1,9})$", "A key version, or latest")
    restore = _object(
        {"backup": {"type": "string"}, "force": {"type": "boolean"}, "name": {"type": "string"}},
        required=["backup"],
    )
    kind = {
        "name": "kind",
        "in": "path",
        "required": True,
        "description": "plaintext (returns the key too) or wrapped",
        "schema": {"type": "string", "enum": ["plaintext", "wrapped"]},
    }
    paths: dict[str, Schema] = {
        "/transit/keys": {
            "get": _operation(
                "List encryption keys", "transit", success=_OK, parameters=[_LIST_PARAM]
            ),
        },
        "/transit/keys/{name}": {
            "parameters": [_KEY_NAME],
            "get": _operation("Read a key's policy and versions", "transit", success=_OK),
            **_writes("Create a key (returns the key info)", "transit", create_key),
            "delete": _operation(
                "Delete a key (needs deletion_allowed)", "transit", success=_DELETED
            ),
        },
        "/transit/keys/{name}/config": {
            "parameters": [_KEY_NAME],
            **_writes("Configure a key", "transit", configure_key),
        },
        "/transit/keys/{name}/rotate": {
            "parameters": [_KEY_NAME],
            **_writes("Rotate a key to a new version", "transit", _object({})),
        },
        "/transit/encrypt/{name}": {
            "parameters": [_KEY_NAME],
            **_writes("Encrypt (creates the key with `create` capability)", "transit", encrypt),
        },
        "/transit/decrypt/{name}": {
            "parameters": [_KEY_NAME],
            **_writes("Decrypt", "transit", decrypt),
        },
        "/transit/rewrap/{name}": {
            "parameters": [_KEY_NAME],
            **_writes("Re-encrypt under the latest key version", "transit", rewrap),
        },
        "/transit/datakey/{kind}/{name}": {
            "parameters": [kind, _KEY_NAME],
            **_writes("Generate a data key wrapped by the named key", "transit", datakey),
        },
        "/transit/keys/{name}/trim": {
            "parameters": [_KEY_NAME],
            **_writes(
                "Delete the versions below min_available_version for good",
                "transit",
                _object(
                    {"min_available_version": _NON_NEGATIVE}, required=["min_available_version"]
                ),
            ),
        },
        "/transit/export/{kind}/{name}": {
            "parameters": [export_kind, _KEY_NAME],
            "get": _operation("Export an exportable key's versions", "transit", success=_OK),
        },
        "/transit/export/{kind}/{name}/{version}": {
            "parameters": [export_kind, _KEY_NAME, version],
            "get": _operation("Export one version of a key", "transit", success=_OK),
        },
        "/transit/backup/{name}": {
            "parameters": [_KEY_NAME],
            "get": _operation(
                "Back up a key (exportable, allow_plaintext_backup) as a sealed blob",
                "transit",
                success=_OK,
            ),
        },
        "/transit/restore": _writes("Restore a key from its mount's backup", "transit", restore),
        "/transit/restore/{name}": {
            "parameters": [_KEY_NAME],
            **_writes("Restore a backup under this name", "transit", restore),
        },
        "/transit/random": _writes("Random bytes", "transit", random),
        "/transit/random/{bytes}": {
            "parameters": [_path_param("bytes", "^[0-9]{1,6}$", "How many bytes")],
            **_writes("Random bytes", "transit", random),
        },
        "/transit/hash": _writes("Hash data", "transit", hash_body),
        "/transit/hash/{algorithm}": {
            "parameters": [algorithm],
            **_writes("Hash data", "transit", hash_body),
        },
    }
    for action, body in (("hmac", hmac_body), ("sign", sign), ("verify", verify)):
        summary = {"hmac": "HMAC", "sign": "Sign", "verify": "Verify a signature or HMAC"}
        paths[f"/transit/{action}/{{name}}"] = {
            "parameters": [_KEY_NAME],
            **_writes(summary[action], "transit", body),
        }
        paths[f"/transit/{action}/{{name}}/{{algorithm}}"] = {
            "parameters": [_KEY_NAME, algorithm],
            **_writes(summary[action], "transit", body),
        }
    return paths


def _audit_paths() -> dict[str, Schema]:
    time_param = {"type": "string", "description": "RFC 3339 time or a duration ago (30d)"}
    tenant = _query(
        "tenant",
        {"type": "string"},
        "Root namespace only: the tenant to query (its current incarnation)",
    )
    tenant_uid = _query(
        "tenant_uid",
        {"type": "string"},
        "Root namespace only: one incarnation of a tenant by id (request.namespace.id), also "
        "of a deleted one; `*` with `tenant`: every incarnation of that name",
    )
    device = _path_param("name", "^[A-Za-z0-9][A-Za-z0-9_.@=:~-]{0,127}$", "Audit device")
    return {
        "/sys/audit": {
            "get": _operation("List audit devices (root namespace, sudo)", "audit", success=_OK),
        },
        "/sys/audit/{name}": {
            "parameters": [device],
            **_writes(
                "Enable an audit device (root namespace, sudo)",
                "audit",
                _object(
                    {
                        "type": {"type": "string", "enum": ["file", "stdout", "store"]},
                        "description": {"type": "string"},
                        "options": _STRING_MAP,
                    },
                    required=["type"],
                ),
                body_required=True,
            ),
            "get": _operation(
                "An audit device and, for a file, its chain head (seq and hash of the last "
                "durable entry): the anchor `tenantvault audit verify --device` checks a log "
                "against (root namespace, sudo; ours, not Vault's)",
                "audit",
                success=_OK,
            ),
            "delete": _operation("Disable an audit device", "audit", success=_DELETED),
        },
        "/sys/audit/events": {
            "get": _operation(
                "Query the audit trail of the caller's tenant",
                "audit",
                success=_OK,
                parameters=[
                    _query("since", time_param, "Oldest entry"),
                    _query("until", time_param, "Newest entry"),
                    _query("path_prefix", {"type": "string"}, "Request path prefix"),
                    _query("operation", {"type": "string"}, "read, update, ..."),
                    _query(
                        "outcome",
                        {"type": "string", "enum": ["success", "denied", "invalid", "error"]},
                        "success, denied, invalid or error",
                    ),
                    _query("accessor", {"type": "string"}, "Token accessor (or its HMAC)"),
                    _query("type", {"type": "string"}, "request or response"),
                    _query("after", _NON_NEGATIVE, "Cursor from the previous page"),
                    _query(
                        "limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page size"
                    ),
                    tenant,
                    tenant_uid,
                ],
            ),
        },
        "/sys/audit/report": {
            "get": _operation(
                "Compliance report of a tenant",
                "audit",
                success=_OK,
                parameters=[
                    _query("since", time_param, "Start of the period (default 30d)"),
                    _query("format", {"type": "string", "enum": ["json", "csv"]}, "Format"),
                    tenant,
                    tenant_uid,
                ],
            ),
        },
        "/sys/audit-hash/{name}": {
            "parameters": [device],
            **_writes(
                "HMAC a value as the audit device does, to search the trail",
                "audit",
                _object({"input": {"type": "string"}}, required=["input"]),
                body_required=True,
            ),
        },
    }


def _observability_paths() -> dict[str, Schema]:
    """`sys/metrics` (Vault's), `sys/alerts` and `sys/dashboard` (ours): the server's view
    in the root namespace (sudo for metrics), one tenant's own in a tenant; Vault's
    `sys/in-flight-req` and `sys/host-info`, root namespace only."""
    metrics = _operation(
        "Metrics: Prometheus text (format=prometheus) or Vault's JSON dump",
        "observability",
        success=_OK,
        parameters=[_query("format", {"type": "string", "enum": ["json", "prometheus"]}, "Format")],
    )
    metrics["responses"]["200"] = {
        "description": "The metrics",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
    alerts = _operation(
        "Anomaly alerts, each with the numbers that raised it (a tenant sees its own)",
        "observability",
        success=_OK,
        parameters=[_query("since", _NON_NEGATIVE, "Only alerts with a greater id")],
    )
    dashboard = _operation(
        "What the dashboard's overview draws, for the caller's scope", "observability", success=_OK
    )
    in_flight = _operation(
        "The requests being served, by request id, this one included (root namespace)",
        "observability",
        success=_OK,
    )
    host_info = _operation(
        "The host's CPUs, CPU times, disks, host and memory (root namespace)",
        "observability",
        success=_OK,
    )
    return {
        "/sys/metrics": {"get": metrics},
        "/sys/alerts": {"get": alerts},
        "/sys/dashboard": {"get": dashboard},
        "/sys/in-flight-req": {"get": in_flight},
        "/sys/host-info": {"get": host_info},
    }


def _rotation_paths() -> dict[str, Schema]:
    """`sys/rotation/*`: scheduled rotation of KV v2 secrets (ours, not Vault's)."""
    target = _path_param(
        "path",
        "^[A-Za-z0-9][A-Za-z0-9_.@=:~-]{0,127}$",
        "The secret as `<mount>/<path>` of a kv v2 mount of the tenant (e.g. secret/app/db; "
        "'/' unencoded)",
    )
    config = _object(
        {
            "rotator": {"type": "string", "enum": ["random", "webhook", "database"]},
            "field": {"type": "string", "description": "The key of the secret's data rotated"},
            "period": {**_DURATION, "description": "Rotate this long after the last rotation"},
            "schedule": {"type": "string", "description": "5-field cron expression (UTC)"},
            "grace": {
                **_DURATION,
                "description": "How long the replaced version stays readable (then deleted)",
            },
            "params": {
                "type": "object",
                "description": "random: length, lowercase, uppercase, digits, symbols, or "
                "password_policy alone (a password policy of the tenant); webhook: "
                "url (under an operator-allowed prefix), secret (signs each call, HMAC-SHA256, "
                "never shown again); database: mount, role (a static role)",
            },
        },
        required=["rotator", "field"],
    )
    rotate = _operation(
        "Rotate now: create, set, test, finish; answers the new KV version (never the value). "
        "400 while another rotation of the secret is in progress; 502 if a phase failed (the "
        "current value is untouched and the rotation is retried with backoff)",
        "rotation",
        success=_OK,
        body=_object({"if_due": {"type": "boolean", "description": "Only if it is due"}}),
    )
    rotate["responses"]["502"] = _json_response("A rotation phase failed", _ERRORS_SCHEMA)
    return {
        "/sys/rotation/config": {
            "get": _operation(
                "List the tenant's secrets with a rotation",
                "rotation",
                success=_OK,
                parameters=[_LIST_PARAM],
            ),
        },
        "/sys/rotation/config/{path}": {
            "parameters": [target],
            **_writes("Configure a secret's rotation", "rotation", config, body_required=True),
            "get": _operation(
                "A rotation's status: rotator, state (idle, rotating, failed), rotations, "
                "last_rotation, next_rotation, last_error (params without secrets)",
                "rotation",
                success=_OK,
            ),
            "delete": _operation("Remove a secret's rotation", "rotation", success=_DELETED),
        },
        "/sys/rotation/rotate/{path}": {"parameters": [target], "post": rotate, "put": rotate},
        "/sys/rotation/expiring": {
            "get": _operation(
                "Secrets whose custom_metadata.expires_at (RFC 3339) falls within a window, "
                "and secrets whose current version is older than stale_days: paths and dates "
                "(no values) of every kv v2 mount of the tenant",
                "rotation",
                success=_OK,
                parameters=[
                    _query("within", _DURATION, "The window (default 30 days)"),
                    _query("stale_days", _NON_NEGATIVE, "List secrets older than this (0: none)"),
                ],
            ),
        },
    }


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI 3.0 document as a dict (a fresh copy each call)."""
    # Imported here: that module builds on the helpers above.
    from tenantvault.server._openapi_auth import auth_paths
    from tenantvault.server._openapi_pki import pki_paths

    return {
        "openapi": "3.0.3",
        "info": {
            "title": "tenantvault",
            "version": __version__,
            "description": (
                "The Vault HTTP API subset tenantvault serves. Tenants are namespaces: select "
                "one with X-Vault-Namespace or a path prefix (/v1/<tenant>/secret/...). The "
                "token goes in X-Vault-Token or `Authorization: Bearer`; if both are sent "
                "they must be equal (else 400). Tokens in the query string are refused. "
                "List operations also accept the LIST method."
            ),
        },
        "servers": [{"url": "/v1"}],
        "security": [{"vaultToken": []}, {"bearerToken": []}],
        "components": {
            "securitySchemes": {
                "vaultToken": {"type": "apiKey", "in": "header", "name": "X-Vault-Token"},
                "bearerToken": {"type": "http", "scheme": "bearer"},
            },
        },
        "paths": {
            **_sys_paths(),
            **_audit_paths(),
            **_token_paths(),
            **auth_paths(),
            **_kv_paths(),
            **_transit_paths(),
            **pki_paths(),
            **_rotation_paths(),
            **_observability_paths(),
        },
    }


@functools.cache
def openapi_document() -> bytes:
    """The OpenAPI document as JSON bytes, built once."""
    return orjson.dumps(openapi_spec())
