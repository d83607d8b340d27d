"""The secret-id endpoints of an AppRole role: generate, custom, list (accessors), lookup
and destroy (by value and by accessor), and tidy; OpenBao 2.7 shapes, statuses and texts."""

from __future__ import annotations

import uuid
from typing import Any, Final

import orjson

from tenantvault._clock import Clock, format_time
from tenantvault._durations import parse_duration
from tenantvault._exceptions import InvalidRequestError, NotFoundError
from tenantvault._fields import get_int
from tenantvault._go_text import go_quote, multierror
from tenantvault._request import Response
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call
from tenantvault.engines.auth._cidr import is_subset
from tenantvault.engines.auth._errors import PlainError
from tenantvault.engines.auth.approle._role import mount_max_ttl, secret_id_cidrs, token_cidrs
from tenantvault.engines.auth.approle._store import AppRoleStore, SecretIdEntry
from tenantvault.engines.auth.approle._texts import role_missing

__all__ = ["SecretIds"]

_NO_EXPIRY: Final = "0001-01-01T00:00:00Z"  # Go's zero time, as Vault shows "never"
_TIDY_WARNING: Final = (
    "Tidy operation successfully started. Any information from the operation will be "
    "printed to OpenBao's server logs."
)


def _plain(message: str) -> str:
    return multierror([message])


def _go_strings(values: list[str]) -> str:
    """Go's `%q` of a []string: `["a" "b"]`."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def _metadata(raw: Any) -> dict[str, str]:
    """A secret-id's `metadata`: a JSON string of string → string (Vault's texts)."""
    if raw in (None, ""):
        return {}
    if not isinstance(raw, str):
        raise InvalidRequestError(
            "Field validation failed: error converting input for field \"metadata\": '' "
            f"expected type 'string', got unconvertible type '{_go_type(raw)}'"
        )
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise InvalidRequestError(
            "failed to parse metadata: failed to parse the input: invalid <key,value> format"
        )
    return dict(parsed)


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    return "float64" if isinstance(value, int | float) else "string"


class SecretIds:
    """The secret-id handlers (the engine routes to them)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def generate(self, call: Call, mount: Mount, name: str, *, custom: bool) -> Response:
        data = call.data
        store = await AppRoleStore.open(mount.storage)
        role = await store.existing(name, missing=NotFoundError(role_missing(name)))
        if custom:
            secret_id = data.get("secret_id")
            if not isinstance(secret_id, str) or not secret_id.strip():
                raise InvalidRequestError("missing secret_id")
            secret_id = secret_id.strip()
        else:
            secret_id = str(uuid.uuid4())
        if not role.bind_secret_id:
            raise InvalidRequestError("bind_secret_id is not set on the role")
        cidrs = secret_id_cidrs(data.get("cidr_list"))
        if cidrs and not is_subset(cidrs, role.secret_id_bound_cidrs):
            raise PlainError(
                _plain(
                    "failed to verify subset relationship between CIDR blocks on the role "
                    f"{_go_strings(role.secret_id_bound_cidrs)} and CIDR blocks on the secret "
                    f"ID {_go_strings(cidrs)}: %!w(<nil>)"
                )
            )
        bound = token_cidrs(data.get("token_bound_cidrs"))
        if bound and not is_subset(bound, role.token_bound_cidrs):
            raise PlainError(
                _plain(
                    "failed to verify subset relationship between CIDR blocks on the role "
                    f"{_go_strings(role.token_bound_cidrs)} and CIDR blocks on the secret "
                    f"ID {_go_strings(bound)}: %!w(<nil>)"
                )
            )
        num_uses = role.secret_id_num_uses
        if "num_uses" in data:
            asked = get_int(data, "num_uses", minimum=-(2**53)) or 0
            if asked < 0:
                raise InvalidRequestError("num_uses cannot be negative")
            if role.secret_id_num_uses > 0 and (asked == 0 or asked > role.secret_id_num_uses):
                raise InvalidRequestError(
                    "num_uses cannot be higher than the role's secret_id_num_uses"
                )
            num_uses = asked
        ttl = role.secret_id_ttl
        if "ttl" in data and data.get("ttl") not in (None, ""):
            asked_ttl = parse_duration(data.get("ttl"), field="ttl")
            if role.secret_id_ttl > 0 and (asked_ttl == 0 or asked_ttl > role.secret_id_ttl):
                raise InvalidRequestError("ttl cannot be longer than the role's secret_id_ttl")
            ttl = asked_ttl
        ttl = min(ttl, mount_max_ttl(mount)) if ttl else 0
        now = self._clock()
        entry = SecretIdEntry(
            accessor=str(uuid.uuid4()),
            num_uses=num_uses,
            ttl=ttl,
            creation_ns=now,
            expiration_ns=now + ttl * 1_000_000_000 if ttl else 0,
            last_updated_ns=now,
            metadata=_metadata(data.get("metadata")),
            cidr_list=cidrs,
            token_bound_cidrs=bound,
        )
        if not await store.add_secret_id(role.name, secret_id, entry):
            raise PlainError(_plain("failed to store secret_id: SecretID is already registered"))
        return Response(
            data={
                "secret_id": secret_id,
                "secret_id_accessor": entry.accessor,
                "secret_id_num_uses": entry.num_uses,
                "secret_id_ttl": entry.ttl,
            }
        )

    @staticmethod
    def _describe(entry: SecretIdEntry) -> dict[str, Any]:
        return {
            "cidr_list": list(entry.cidr_list),
            "creation_time": format_time(entry.creation_ns),
            "expiration_time": format_time(entry.expiration_ns) or _NO_EXPIRY,
            "last_updated_time": format_time(entry.last_updated_ns),
            "metadata": dict(entry.metadata),
            "secret_id_accessor": entry.accessor,
            "secret_id_num_uses": entry.num_uses,
            "secret_id_ttl": entry.ttl,
            "token_bound_cidrs": list(entry.token_bound_cidrs),
        }

    async def list_secret_ids(self, mount: Mount, name: str) -> Response:
        store = await AppRoleStore.open(mount.storage)
        await store.existing(name, missing=InvalidRequestError(role_missing(name)))
        accessors = await store.accessors(name)
        if not accessors:
            raise NotFoundError()
        return Response(data={"keys": accessors})

    @staticmethod
    def _secret_of(call: Call) -> str:
        secret_id = call.data.get("secret_id")
        if not isinstance(secret_id, str) or not secret_id.strip():
            raise InvalidRequestError("missing secret_id")
        return secret_id.strip()

    async def lookup(self, call: Call, mount: Mount, name: str) -> Response:
        secret_id = self._secret_of(call)
        store = await AppRoleStore.open(mount.storage)
        await store.existing(name, missing=PlainError(role_missing(name, plain=True)))
        entry = await store.secret_id(name, secret_id)
        if entry is None:
            return Response.no_content()  # Vault: a nil response to an update
        return Response(data=self._describe(entry))

    async def destroy(self, call: Call, mount: Mount, name: str) -> Response:
        secret_id = self._secret_of(call)
        store = await AppRoleStore.open(mount.storage)
        await store.existing(name, missing=PlainError(role_missing(name, plain=True)))
        await store.destroy(name, secret_id)
        return Response.no_content()

    @staticmethod
    def _accessor_of(call: Call) -> str:
        accessor = call.data.get("secret_id_accessor")
        if not isinstance(accessor, str) or not accessor.strip():
            raise InvalidRequestError("missing secret_id_accessor")
        return accessor.strip()

    @staticmethod
    def _no_accessor(accessor: str) -> str:
        return f'failed to find accessor entry for secret_id_accessor: "{accessor}"'

    async def lookup_accessor(self, call: Call, mount: Mount, name: str) -> Response:
        accessor = self._accessor_of(call)
        store = await AppRoleStore.open(mount.storage)
        await store.existing(name, missing=PlainError(role_missing(name, plain=True)))
        entry = await store.secret_id_by_accessor(name, accessor)
        if entry is None:
            # Vault answers 404 with the envelope and `data.error` (a logical error response).
            raise NotFoundError(body={"data": {"error": self._no_accessor(accessor)}})
        return Response(data=self._describe(entry))

    async def destroy_accessor(self, call: Call, mount: Mount, name: str) -> Response:
        accessor = self._accessor_of(call)
        store = await AppRoleStore.open(mount.storage)
        await store.existing(name, missing=PlainError(role_missing(name, plain=True)))
        if not await store.destroy_by_accessor(name, accessor):
            raise PlainError(_plain(self._no_accessor(accessor)))
        return Response.no_content()

    async def tidy(self, mount: Mount) -> Response:
        # Run at once rather than in the background: a tidy is bounded by the mount's records.
        await (await AppRoleStore.open(mount.storage)).tidy(self._clock())
        return Response(status=202, warnings=[_TIDY_WARNING])
