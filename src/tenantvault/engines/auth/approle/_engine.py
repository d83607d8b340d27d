"""The AppRole routes: roles, role-ids, secret-ids, tidy and login (OpenBao 2.7 shapes,
statuses and texts; `reference/approle.md`)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from tenantvault._exceptions import InvalidRequestError, NotFoundError
from tenantvault._go_text import go_quote, multierror
from tenantvault._request import Operation, Response
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call, Route
from tenantvault.engines.auth._errors import PlainError
from tenantvault.engines.auth._renew import RenewTerms, role_gone
from tenantvault.engines.auth._settings import AuthSettings
from tenantvault.engines.auth.approle._login import AppRoleLogin
from tenantvault.engines.auth.approle._role import (
    ROLE_PARAMETERS,
    Role,
    mount_max_ttl,
    role_from_request,
)
from tenantvault.engines.auth.approle._secret_ids import SecretIds
from tenantvault.engines.auth.approle._store import AppRoleStore
from tenantvault.engines.auth.approle._texts import UNSUPPORTED

if TYPE_CHECKING:
    from tenantvault._tokens import TokenRecord

__all__ = ["AppRoleEngine"]

Handler = Callable[[Call], Awaitable[Response]]
# Builds a route below the mount: (mount-relative path, capability, handler, parameters).
Make = Callable[[str, str | None, Handler, frozenset[str] | None], Route]

_BOUND_CIDR_LIST_WARNING: Final = (
    'The "bound_cidr_list" field is deprecated and will be removed. Please use '
    '"secret_id_bound_cidrs" instead.'
)
# Vault's role-name grammar (framework.GenericNameRegex), and its byte limit.
_NAME: Final = re.compile(r"\w(?:[\w.@-]*\w)?\Z")
_MAX_NAME: Final = 4096
_NONE: frozenset[str] = frozenset()
_LOGIN: Final = frozenset({"role_id", "secret_id"})
_GENERATE: Final = frozenset({"metadata", "cidr_list", "token_bound_cidrs", "num_uses", "ttl"})
_SECRET_ID: Final = frozenset({"secret_id"})
_ACCESSOR: Final = frozenset({"secret_id_accessor"})
# The per-field sub-paths of a role (`role/<name>/<sub-path>`), by the field they edit.
_FIELD_PATHS: Final = {
    "policies": "token_policies",
    "secret-id-num-uses": "secret_id_num_uses",
    "secret-id-ttl": "secret_id_ttl",
    "token-ttl": "token_ttl",
    "token-max-ttl": "token_max_ttl",
    "token-num-uses": "token_num_uses",
    "secret-id-bound-cidrs": "secret_id_bound_cidrs",
    "token-bound-cidrs": "token_bound_cidrs",
    "bound-cidr-list": "secret_id_bound_cidrs",
    "period": "token_period",
}
_FIELD_DEFAULTS: Final[Mapping[str, Any]] = {
    "token_policies": [],
    "secret_id_num_uses": 0,
    "secret_id_ttl": 0,
    "token_ttl": 0,
    "token_max_ttl": 0,
    "token_num_uses": 0,
    "secret_id_bound_cidrs": [],
    "token_bound_cidrs": [],
    "token_period": 0,
}


def _role_name(raw: str) -> str:
    name = raw.lower()
    if len(name.encode()) > _MAX_NAME or not _NAME.match(name):
        raise NotFoundError(UNSUPPORTED)
    return name


class AppRoleEngine:
    """Vault's `approle` auth method; one instance serves every approle mount."""

    type = "approle"

    def __init__(self, settings: AuthSettings) -> None:
        self._login = AppRoleLogin(settings)
        self._secret_ids = SecretIds(settings.clock)

    def check_options(self, options: Mapping[str, str]) -> dict[str, str]:
        return dict(options)

    async def destroy(self, mount: Mount) -> None:
        return None  # nothing beyond the mount's records (the throttle forgets by itself)

    async def renew(self, mount: Mount, record: TokenRecord) -> RenewTerms:
        """A token of this mount renews while its role exists, under the role's current TTLs
        (Vault's `pathLoginRenew`: a role deleted and made again under the name renews it)."""
        name = (record.meta or {}).get("role_name", "")
        if not name:
            raise PlainError(
                multierror(["failed to renew entry: failed to fetch role_name during renewal"])
            )
        role, _ = await (await AppRoleStore.open(mount.storage)).role(name.lower())
        if role is None:
            raise role_gone(go_quote(name))
        return RenewTerms(role.token_ttl, role.token_max_ttl, role.token_period)

    # -- routing ---------------------------------------------------------------------------

    def route(self, operation: Operation, path: str, mount: Mount) -> Route:
        op = operation
        write = op in (Operation.UPDATE, Operation.CREATE)
        base = mount.path

        def make(
            rel: str, capability: str | None, handler: Handler, params: frozenset[str] | None
        ) -> Route:
            acl = base + rel + ("/" if op is Operation.LIST and not rel.endswith("/") else "")
            return Route(acl, capability, handler, mount=mount.name, parameters=params)

        if path == "login":
            if not write:
                raise NotFoundError(UNSUPPORTED)
            return Route(
                base + "login",
                "update",
                lambda call: self._login.login(call, mount),
                mount=mount.name,
                mints_token="login",  # noqa: S106 -- a route kind, not a credential
                parameters=_LOGIN,
            )
        if path == "tidy/secret-id":
            if not write:
                raise NotFoundError(UNSUPPORTED)
            return make(path, "update", lambda call: self._secret_ids.tidy(mount), _NONE)
        if path in ("role", "role/"):
            if op is not Operation.LIST:
                raise NotFoundError(UNSUPPORTED)
            return make("role", "list", lambda call: self._list_roles(mount), _NONE)
        if not path.startswith("role/"):
            raise NotFoundError(UNSUPPORTED)
        raw_name, _, sub = path.removeprefix("role/").partition("/")
        name = _role_name(raw_name)
        sub = sub.rstrip("/") if op is Operation.LIST else sub
        if not sub:
            return self._role_route(op, name, mount, make)
        handlers: dict[tuple[str, bool], tuple[str, Handler, frozenset[str]]] = {
            ("role-id", False): ("read", lambda c: self._read_role_id(mount, name), _NONE),
            ("role-id", True): (
                "update",
                lambda c: self._write_role_id(c, mount, name),
                frozenset({"role_id"}),
            ),
            ("secret-id", True): (
                "update",
                lambda c: self._secret_ids.generate(c, mount, name, custom=False),
                _GENERATE,
            ),
            ("custom-secret-id", True): (
                "update",
                lambda c: self._secret_ids.generate(c, mount, name, custom=True),
                _GENERATE | _SECRET_ID,
            ),
            ("secret-id/lookup", True): (
                "update",
                lambda c: self._secret_ids.lookup(c, mount, name),
                _SECRET_ID,
            ),
            ("secret-id/destroy", True): (
                "update",
                lambda c: self._secret_ids.destroy(c, mount, name),
                _SECRET_ID,
            ),
            ("secret-id-accessor/lookup", True): (
                "update",
                lambda c: self._secret_ids.lookup_accessor(c, mount, name),
                _ACCESSOR,
            ),
            ("secret-id-accessor/destroy", True): (
                "update",
                lambda c: self._secret_ids.destroy_accessor(c, mount, name),
                _ACCESSOR,
            ),
        }
        if sub == "secret-id" and op is Operation.LIST:
            listing = self._secret_ids.list_secret_ids
            return make(f"role/{name}/secret-id", "list", lambda c: listing(mount, name), _NONE)
        if sub in ("secret-id/destroy", "secret-id-accessor/destroy") and op is Operation.DELETE:
            capability, handler, params = handlers[(sub, True)]
            return make(f"role/{name}/{sub}", "delete", handler, params)
        if op in (Operation.READ, Operation.UPDATE, Operation.CREATE):
            found = handlers.get((sub, write))
            if found is not None:
                capability, handler, params = found
                return make(f"role/{name}/{sub}", capability, handler, params)
        if sub in _FIELD_PATHS or sub == "local-secret-ids":
            return self._field_route(op, name, sub, mount, make)
        raise NotFoundError(UNSUPPORTED)

    def _role_route(self, op: Operation, name: str, mount: Mount, make: Make) -> Route:
        rel = f"role/{name}"
        if op is Operation.READ:
            route = make(rel, "read", lambda c: self._read_role(mount, name), _NONE)
            return route
        if op is Operation.DELETE:
            route = make(rel, "delete", lambda c: self._delete_role(mount, name), _NONE)
            return route
        if op in (Operation.UPDATE, Operation.CREATE):

            async def exists(_: str) -> bool:
                # Asked before the request is audited: a read only (no key is created).
                return await AppRoleStore.has_role(mount.storage, name)

            return Route(
                mount.path + rel,
                None,
                lambda c: self._write_role(c, mount, name),
                exists=exists,
                mount=mount.name,
                parameters=ROLE_PARAMETERS,
            )
        raise NotFoundError(UNSUPPORTED)

    def _field_route(self, op: Operation, name: str, sub: str, mount: Mount, make: Make) -> Route:
        rel = f"role/{name}/{sub}"
        if sub == "local-secret-ids":
            if op is not Operation.READ:
                raise NotFoundError(UNSUPPORTED)
            route = make(rel, "read", lambda c: self._read_field(mount, name, sub), _NONE)
            return route
        role_field = _FIELD_PATHS[sub]
        # The request key of a field endpoint: its field, or the legacy name it stood for.
        key = {"policies": "policies", "period": "period", "bound-cidr-list": "bound_cidr_list"}
        param = key.get(sub, role_field)
        if op is Operation.READ:
            route = make(rel, "read", lambda c: self._read_field(mount, name, sub), _NONE)
        elif op in (Operation.UPDATE, Operation.CREATE):
            route = make(
                rel,
                "update",
                lambda c: self._write_field(c, mount, name, param, role_field),
                frozenset({param, role_field}),
            )
        elif op is Operation.DELETE:
            route = make(rel, "delete", lambda c: self._reset_field(mount, name, role_field), _NONE)
        else:
            raise NotFoundError(UNSUPPORTED)
        return route

    # -- roles -----------------------------------------------------------------------------

    async def _list_roles(self, mount: Mount) -> Response:
        names = await (await AppRoleStore.open(mount.storage)).role_names()
        if not names:
            raise NotFoundError()
        return Response(data={"keys": names})

    async def _read_role(self, mount: Mount, name: str) -> Response:
        role, _ = await (await AppRoleStore.open(mount.storage)).role(name)
        if role is None:
            raise NotFoundError()
        return Response(data=role.read_data())

    async def _delete_role(self, mount: Mount, name: str) -> Response:
        store = await AppRoleStore.open(mount.storage)
        role, _ = await store.role(name)
        if role is not None:
            await store.delete_role(role)
        return Response.no_content()

    async def _write_role(self, call: Call, mount: Mount, name: str) -> Response:
        store = await AppRoleStore.open(mount.storage)
        existing, revision = await store.role(name)
        role, warnings = role_from_request(
            name, call.data, existing, mount_max_ttl=mount_max_ttl(mount)
        )
        await self._save(store, role, existing, revision)
        return Response(warnings=warnings) if warnings else Response.no_content()

    async def _save(
        self, store: AppRoleStore, role: Role, existing: Role | None, revision: int
    ) -> None:
        """Store a role and its role-id index (the new id first, the old one released last:
        a crash leaves a dangling index entry, which names no role, never a lost one)."""
        changed = existing is None or existing.role_id != role.role_id
        if changed and not await store.claim_role_id(role.role_id, role.name):
            raise PlainError(multierror(["role_id already in use"]))
        await store.save_role(role, revision)
        if existing is not None and changed:
            await store.release_role_id(existing.role_id, role.name)

    async def _read_field(self, mount: Mount, name: str, sub: str) -> Response:
        role, _ = await (await AppRoleStore.open(mount.storage)).role(name)
        if role is None:
            raise NotFoundError()
        if sub == "local-secret-ids":
            return Response(data={"local_secret_ids": role.local_secret_ids})
        if sub == "bound-cidr-list":
            # The deprecated field reads as null, with OpenBao's warning.
            return Response(data={"bound_cidr_list": None}, warnings=[_BOUND_CIDR_LIST_WARNING])
        role_field = _FIELD_PATHS[sub]
        data = role.read_data()
        value = data[role_field]
        # An empty list reads as null at the field's own endpoint (as OpenBao); a legacy name
        # in use shows beside the field, as on the role.
        result = {role_field: value if value != [] else None}
        legacy = {"period": "period", "policies": "policies"}.get(sub)
        if legacy is not None and legacy in data:
            result[legacy] = data[legacy]
        return Response(data=result)

    async def _write_field(
        self, call: Call, mount: Mount, name: str, param: str, role_field: str
    ) -> Response:
        store = await AppRoleStore.open(mount.storage)
        existing, revision = await store.role(name)
        if existing is None:
            raise NotFoundError()
        # The name the client used decides whether the deprecated field shows on read.
        key = role_field if role_field in call.data else param
        value = call.data.get(key)
        if value is None:
            raise InvalidRequestError(f"missing {param}")
        role, warnings = role_from_request(
            name, {key: value}, existing, mount_max_ttl=mount_max_ttl(mount)
        )
        await self._save(store, role, existing, revision)
        return Response(warnings=warnings) if warnings else Response.no_content()

    async def _reset_field(self, mount: Mount, name: str, role_field: str) -> Response:
        store = await AppRoleStore.open(mount.storage)
        existing, revision = await store.role(name)
        if existing is None:
            return Response.no_content()
        role, _ = role_from_request(
            name,
            {role_field: _FIELD_DEFAULTS[role_field]},
            existing,
            mount_max_ttl=mount_max_ttl(mount),
        )
        await self._save(store, role, existing, revision)
        return Response.no_content()

    # -- role-id ---------------------------------------------------------------------------

    async def _read_role_id(self, mount: Mount, name: str) -> Response:
        role, _ = await (await AppRoleStore.open(mount.storage)).role(name)
        if role is None:
            raise NotFoundError()
        return Response(data={"role_id": role.role_id})

    async def _write_role_id(self, call: Call, mount: Mount, name: str) -> Response:
        store = await AppRoleStore.open(mount.storage)
        existing, revision = await store.role(name)
        if existing is None:
            raise NotFoundError()
        role_id = call.data.get("role_id")
        if not isinstance(role_id, str) or not role_id.strip():
            raise InvalidRequestError("missing role_id")
        role, _ = role_from_request(
            name, {"role_id": role_id}, existing, mount_max_ttl=mount_max_ttl(mount)
        )
        await self._save(store, role, existing, revision)
        return Response.no_content()

    # -- secret-ids ------------------------------------------------------------------------
