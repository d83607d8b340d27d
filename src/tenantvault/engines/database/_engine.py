"""The `database` engine type: connection configs, dynamic and static roles, credentials.

Paths (mount-relative), as Vault's database engine: `config/<name>`, `reset/<name>`,
`rotate-root/<name>`, `roles/<name>`, `creds/<role>` (a dynamic user, leased),
`static-roles/<name>`, `static-creds/<name>`, `rotate-role/<name>`. Everything is stored
in the mount's own records (per tenant and mount), so no tenant can name another's config.
Dynamic credentials come back as `Response.secret`: the Core registers their lease and
later calls `revoke_secret` / `renew_secret` (`tenantvault.leases.LeasingEngine`).
Static-role rotation is in `_static`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from tenantvault._clock import Clock, system_clock
from tenantvault._durations import parse_duration
from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
    UnsupportedOperationError,
)
from tenantvault._fields import get_bool, get_int, get_str
from tenantvault._password_policy import PasswordPolicyStore, PolicyGenerationError
from tenantvault._paths import parse_path
from tenantvault._request import LeasedSecret, Operation, Response
from tenantvault.engines._protocol import Mount, MountStorage
from tenantvault.engines._route import Call, Route
from tenantvault.engines.auth._errors import PlainError
from tenantvault.engines.database._credentials import (
    check_username_template,
    generate_password,
    generate_username,
)
from tenantvault.engines.database._egress import DatabaseAllowList
from tenantvault.engines.database._plugin import DatabaseError, DatabasePlugin
from tenantvault.engines.database._postgres import (
    PLUGIN_NAME,
    PostgresPlugin,
    check_connection_url,
    check_password_authentication,
    redact_url,
)
from tenantvault.engines.database._records import (
    CONFIG,
    ROLE,
    STATIC_ROLE,
    ConnectionConfig,
    DynamicRole,
    StaticRole,
    load,
    parse_names,
    parse_statements,
    save,
)
from tenantvault.engines.database._static import StaticRotation
from tenantvault.leases import LeaseTTL, calculate_ttl

__all__ = ["DatabaseEngine", "plain"]

logger = logging.getLogger("tenantvault.database")

_NS: Final = 1_000_000_000
# Open pools at most (each holds up to `max_open_connections` connections and one worker).
_MAX_PLUGINS: Final = 256
# Vault's PostgreSQL plugin lets the database role outlive its lease by a few seconds.
_EXPIRATION_SLACK: Final = timedelta(seconds=5)
_DETAIL_FIELDS: Final = (
    "connection_url",
    "username",
    "max_open_connections",
    "max_idle_connections",
    "max_connection_lifetime",
    "username_template",
    "password_authentication",
    "disable_escaping",
)
_CONFIG_FIELDS: Final = frozenset(
    {
        *_DETAIL_FIELDS,
        "plugin_name",
        "plugin_version",
        "password",
        "allowed_roles",
        "verify_connection",
        "password_policy",
        "root_rotation_statements",
    }
)
_ROLE_FIELDS: Final = frozenset(
    {
        "db_name",
        "creation_statements",
        "revocation_statements",
        "rollback_statements",
        "renew_statements",
        "default_ttl",
        "max_ttl",
        "credential_type",
    }
)
_STATIC_FIELDS: Final = frozenset(
    {
        "db_name",
        "username",
        "rotation_period",
        "rotation_schedule",
        "rotation_window",
        "rotation_statements",
        "credential_type",
    }
)
_NONE: Final[frozenset[str]] = frozenset()
# A warning text, not a password.
_PASSWORD_WARNING: Final = (
    "Password found in connection_url, use a templated url to enable root rotation and "  # noqa: S105
    "prevent read access to password information."
)

PLUGINS: Final[Mapping[str, Callable[[Mapping[str, Any], str, str], DatabasePlugin]]] = {
    PLUGIN_NAME: PostgresPlugin,
}


def plain(text: str) -> PlainError:
    """A plain Go error as OpenBao's handler wraps it (HTTP 500)."""
    return PlainError(f"1 error occurred:\n\t* {text}\n\n")


_FOLDERS: Final = {"config": CONFIG, "roles": ROLE, "static-roles": STATIC_ROLE}
_ACTIONS: Final = frozenset({"reset", "rotate-root", "rotate-role", "creds", "static-creds"})


def _name(name: str) -> str:
    """A config or role name: one valid path segment."""
    parse_path(name)
    if "/" in name:
        raise NotFoundError("unsupported path")
    return name


def _seconds(data: Mapping[str, Any], field: str) -> int | None:
    value = data.get(field)
    if value is None or value == "":
        return None
    return parse_duration(value, field=field)


class DatabaseEngine:
    """The registered `database` type; one plugin (connection pool) per config."""

    type: Final = "database"

    def __init__(self, *, clock: Clock = system_clock, allow: tuple[str, ...] = ()) -> None:
        """`allow`: the operator's `--database-allow` hosts (empty: any host)."""
        self._clock = clock
        self._allow = DatabaseAllowList(allow)
        # (mount identity, config name) → (config revision, plugin). A changed config
        # gets a new plugin; the old pool is closed.
        self._plugins: dict[tuple[tuple[str, str], str], tuple[int, DatabasePlugin]] = {}
        self._password_policies: PasswordPolicyStore | None = None
        self.static = StaticRotation(self._plugin_for, self._new_password, clock=clock)
        self._mounts_of_type: Callable[[str], Awaitable[list[tuple[str, Mount]]]] | None = None
        self._on_destroy: Callable[[Mount, DatabaseEngine], Awaitable[int]] | None = None

    def attach(
        self,
        mounts_of_type: Callable[[str], Awaitable[list[tuple[str, Mount]]]],
        *,
        on_destroy: Callable[[Mount, DatabaseEngine], Awaitable[int]] | None = None,
    ) -> None:
        """Give the engine the router's listing of mounts (for scheduled rotation) and the
        Core's step that revokes a disabled mount's leases."""
        self._mounts_of_type = mounts_of_type
        self._on_destroy = on_destroy

    def use_password_policies(self, store: PasswordPolicyStore) -> None:
        """Generate passwords from the tenants' password policies (`password_policy`)."""
        self._password_policies = store

    async def _new_password(self, store: MountStorage, config: ConnectionConfig) -> str:
        """A password for a user of `config`: from its `password_policy` (a policy of the
        mount's tenant), else Vault's default generator; Vault's 500 when it cannot."""
        name = config.password_policy
        if not name:
            return generate_password()
        policy = None
        if self._password_policies is not None:
            policy = await self._password_policies.read(store.tenant, name)
        if policy is None:
            raise plain("failed to generate password: no password policy found")
        try:
            return policy.generate()
        except PolicyGenerationError as error:
            raise plain(f"failed to generate password: {error.message}") from None

    def check_options(self, options: Mapping[str, str]) -> dict[str, str]:
        if options.get("version"):
            raise InvalidRequestError('secrets engine "database" does not allow setting a version')
        return dict(options)

    async def destroy(self, mount: Mount) -> None:
        """The mount is being disabled: revoke its leases (while its configs can still be
        read through `mount`), then close its pools."""
        if self._on_destroy is not None:
            await self._on_destroy(mount, self)
        for key in [k for k in self._plugins if k[0] == mount.storage.identity]:
            _, plugin = self._plugins.pop(key)
            await plugin.aclose()

    async def aclose(self) -> None:
        """Close every pool."""
        plugins, self._plugins = self._plugins, {}
        for _, plugin in plugins.values():
            await plugin.aclose()

    # -- plugins -------------------------------------------------------------------------------

    async def _plugin_for(
        self, store: MountStorage, db_name: str
    ) -> tuple[ConnectionConfig, DatabasePlugin]:
        """The config `db_name` and its plugin; 500 (Vault's text) when there is none."""
        config = await load(store, ConnectionConfig, CONFIG + db_name)
        if config is None:
            raise plain(f'failed to find entry for connection with name: "{db_name}"')
        self._allow.check(config.details)  # also a config stored before the list changed
        key = (store.identity, db_name)
        cached = self._plugins.get(key)
        if cached is not None and cached[0] == config.revision:
            return config, cached[1]
        plugin = PLUGINS[config.plugin_name](config.details, config.username, config.password)
        self._plugins.pop(key, None)
        self._plugins[key] = (config.revision, plugin)
        if cached is not None:
            await cached[1].aclose()
        if len(self._plugins) > _MAX_PLUGINS:
            # The least recently created pool goes (reopened on its next use).
            _, (_, oldest) = next(iter(self._plugins.items()))
            del self._plugins[next(iter(self._plugins))]
            await oldest.aclose()
        return config, plugin

    async def _drop_plugin(self, store: MountStorage, name: str) -> None:
        cached = self._plugins.pop((store.identity, name), None)
        if cached is not None:
            await cached[1].aclose()

    # -- routing -------------------------------------------------------------------------------

    def route(self, operation: Operation, path: str, mount: Mount) -> Route:
        acl = f"{mount.path}{path}"
        store = mount.storage
        head, _, tail = path.partition("/")
        kind = _FOLDERS.get(head)
        if kind is not None:
            if operation is Operation.LIST and not tail.strip("/"):
                return self._list_route(f"{mount.path}{head}/", store, kind, mount)
            if tail:
                return self._item_route(operation, acl, mount, kind, _name(tail))
        if head in _ACTIONS and tail:
            return self._action_route(operation, acl, mount, head, _name(tail))
        raise NotFoundError("unsupported path")

    def _action_route(
        self, operation: Operation, acl: str, mount: Mount, action: str, name: str
    ) -> Route:
        write = operation in (Operation.UPDATE, Operation.CREATE)
        store = mount.storage
        if action in ("creds", "static-creds"):
            if not (write or operation is Operation.READ):
                raise UnsupportedOperationError()

            async def run_creds(call: Call) -> Response:
                if action == "creds":
                    return await self._creds(call, mount, name)
                return await self._static_creds(store, name)

            capability = "read" if operation is Operation.READ else "update"
            return Route(acl, capability, run_creds, mount=mount.name, parameters=_NONE)
        if not write:
            raise UnsupportedOperationError()
        handler = {
            "reset": self._reset,
            "rotate-root": self._rotate_root,
            "rotate-role": self._rotate_role,
        }[action]

        async def run_action(call: Call) -> Response:
            return await handler(store, name)

        return Route(acl, "update", run_action, mount=mount.name, parameters=_NONE)

    def _list_route(self, acl: str, store: MountStorage, kind: str, mount: Mount) -> Route:
        async def run_list(call: Call) -> Response:
            keys = await store.list(kind)
            if not keys:
                raise NotFoundError()
            return Response(data={"keys": keys})

        return Route(acl, "list", run_list, mount=mount.name, parameters=_NONE)

    def _item_route(
        self, operation: Operation, acl: str, mount: Mount, kind: str, name: str
    ) -> Route:
        store = mount.storage
        key = kind + name
        fields = {CONFIG: _CONFIG_FIELDS, ROLE: _ROLE_FIELDS, STATIC_ROLE: _STATIC_FIELDS}[kind]
        if operation is Operation.READ:

            async def run_read(call: Call) -> Response:
                return await self._read(store, kind, key)

            return Route(acl, "read", run_read, mount=mount.name, parameters=_NONE)
        if operation is Operation.DELETE:

            async def run_delete(call: Call) -> Response:
                await store.delete(key)
                if kind == CONFIG:
                    await self._drop_plugin(store, name)
                return Response.no_content()

            return Route(acl, "delete", run_delete, mount=mount.name, parameters=_NONE)
        if operation in (Operation.UPDATE, Operation.CREATE):
            writers = {
                CONFIG: self._write_config,
                ROLE: self._write_role,
                STATIC_ROLE: self._write_static,
            }
            writer = writers[kind]

            async def run_write(call: Call) -> Response:
                return await writer(store, name, call.data)

            async def exists(_tenant: str) -> bool:
                return await store.read(key) is not None

            return Route(
                acl,
                "create" if operation is Operation.CREATE else None,
                run_write,
                exists=exists if operation is Operation.UPDATE else None,
                mount=mount.name,
                parameters=fields,
            )
        raise UnsupportedOperationError()

    async def _read(self, store: MountStorage, kind: str, key: str) -> Response:
        if kind == CONFIG:
            config = await load(store, ConnectionConfig, key)
            if config is None:
                raise NotFoundError()
            details = dict(config.details)
            details["connection_url"] = redact_url(str(details.get("connection_url") or ""))
            return Response(
                data={
                    "allowed_roles": config.allowed_roles,
                    "connection_details": details,
                    "password_policy": config.password_policy,
                    "plugin_name": config.plugin_name,
                    "plugin_version": config.plugin_version,
                    "root_credentials_rotate_statements": config.root_rotation_statements,
                }
            )
        if kind == ROLE:
            role = await load(store, DynamicRole, key)
            if role is None:
                raise NotFoundError()
            return Response(data=role.describe())
        static = await load(store, StaticRole, key)
        if static is None:
            raise NotFoundError()
        return Response(data=self.static.describe(static))

    # -- config ----------------------------------------------------------------------------

    async def _write_config(
        self, store: MountStorage, name: str, data: Mapping[str, Any]
    ) -> Response:
        key = CONFIG + name
        existing = await load(store, ConnectionConfig, key)
        plugin_name = get_str(data, "plugin_name") or (existing.plugin_name if existing else "")
        if not plugin_name:
            raise InvalidRequestError("empty plugin name")
        if plugin_name not in PLUGINS:
            raise InvalidRequestError(
                f"error creating database object: unknown plugin {plugin_name!r}"
            )
        details: dict[str, Any] = dict(existing.details) if existing else {}
        for field in _DETAIL_FIELDS:
            if field in data and data[field] is not None:
                details[field] = data[field]
        if "max_open_connections" in details:
            details["max_open_connections"] = get_int(details, "max_open_connections", minimum=1)
        url = str(details.get("connection_url") or "")
        try:
            literal_password = check_connection_url(url)
            self._allow.check(details)
            check_password_authentication(details)
            check_username_template(str(details.get("username_template") or ""))
        except InvalidRequestError as error:
            raise InvalidRequestError(f"error creating database object: {error.message}") from None
        password = get_str(data, "password")
        config = ConnectionConfig(
            plugin_name=plugin_name,
            details=details,
            password=password if password is not None else (existing.password if existing else ""),
            allowed_roles=(
                parse_names(data["allowed_roles"])
                if "allowed_roles" in data
                else (existing.allowed_roles if existing else [])
            ),
            root_rotation_statements=(
                parse_statements(data["root_rotation_statements"], "root_rotation_statements")
                if "root_rotation_statements" in data
                else (existing.root_rotation_statements if existing else [])
            ),
            password_policy=get_str(data, "password_policy")
            or (existing.password_policy if existing else ""),
            plugin_version=get_str(data, "plugin_version") or "",
            revision=existing.revision if existing else 0,
        )
        if get_bool(data, "verify_connection", default=True):
            plugin = PLUGINS[plugin_name](config.details, config.username, config.password)
            try:
                await plugin.verify_connection()
            except DatabaseError as error:
                raise InvalidRequestError(
                    f"error creating database object: error verifying connection: {error.message}"
                ) from None
            finally:
                await plugin.aclose()
        await save(store, key, config, create=existing is None)
        await self._drop_plugin(store, name)
        if literal_password:
            return Response(warnings=[_PASSWORD_WARNING])
        return Response.no_content()

    async def _reset(self, store: MountStorage, name: str) -> Response:
        await self._plugin_for(store, name)  # Vault's error when there is no such config
        await self._drop_plugin(store, name)
        return Response.no_content()

    async def _rotate_root(self, store: MountStorage, name: str) -> Response:
        config, plugin = await self._plugin_for(store, name)
        if not config.username:
            raise PlainError("unable to rotate root credentials: no username in configuration")
        if not config.password:
            raise PlainError("unable to rotate root credentials: no password in configuration")
        new_password = await self._new_password(store, config)
        try:
            await plugin.set_password(
                config.root_rotation_statements, username=config.username, password=new_password
            )
        except DatabaseError as error:
            raise plain(f"failed to update user: {error.message}") from None
        config.password = new_password
        await save(store, CONFIG + name, config)
        await self._drop_plugin(store, name)
        logger.info("rotated the root credentials of a database config")
        return Response.no_content()

    # -- dynamic roles -------------------------------------------------------------------------

    async def _write_role(
        self, store: MountStorage, name: str, data: Mapping[str, Any]
    ) -> Response:
        if await store.read(STATIC_ROLE + name) is not None:
            raise InvalidRequestError("Role and Static Role names must be unique")
        existing = await load(store, DynamicRole, ROLE + name)
        role = existing or DynamicRole(db_name="")
        role.db_name = get_str(data, "db_name") or role.db_name
        if not role.db_name:
            raise InvalidRequestError("database name is required")
        for field in (
            "creation_statements",
            "revocation_statements",
            "rollback_statements",
            "renew_statements",
        ):
            if field in data:
                setattr(role, field, parse_statements(data[field], field))
        default_ttl, max_ttl = _seconds(data, "default_ttl"), _seconds(data, "max_ttl")
        role.default_ttl = role.default_ttl if default_ttl is None else default_ttl
        role.max_ttl = role.max_ttl if max_ttl is None else max_ttl
        credential_type = get_str(data, "credential_type")
        if credential_type not in (None, "", "password"):
            raise InvalidRequestError(f"invalid credential_type {credential_type!r}")
        await save(store, ROLE + name, role, create=existing is None)
        return Response.no_content()

    async def _creds(self, call: Call, mount: Mount, name: str) -> Response:
        store = mount.storage
        role = await load(store, DynamicRole, ROLE + name)
        if role is None:
            raise InvalidRequestError(f"unknown role: {name}")
        config, plugin = await self._plugin_for(store, role.db_name)
        if not config.allows(name):
            raise plain(f'"{name}" is not an allowed role')
        if not role.creation_statements:
            raise plain("empty creation statements")
        ttl = calculate_ttl(
            mount.config,
            backend_ttl_seconds=role.default_ttl,
            backend_max_ttl_seconds=role.max_ttl,
        )
        now = self._clock()
        owner = call.tokens.own() if call.tokens is not None else None
        display = owner.display_name if owner is not None and owner.display_name != "root" else ""
        username = generate_username(
            str(config.details.get("username_template") or ""),
            display_name=display or "token",
            role_name=name,
            now_seconds=now // _NS,
        )
        password = await self._new_password(store, config)
        expiration = (
            datetime.fromtimestamp(now / _NS, UTC)
            + timedelta(seconds=ttl.ttl_seconds)
            + _EXPIRATION_SLACK
        )
        try:
            await plugin.create_user(
                role.creation_statements,
                role.rollback_statements,
                username=username,
                password=password,
                expiration=expiration,
            )
        except DatabaseError as error:
            raise plain(error.message) from None
        internal = {
            "username": username,
            "role": name,
            "db_name": role.db_name,
            "revocation_statements": role.revocation_statements,
        }
        return Response(
            data={"username": username, "password": password},
            secret=LeasedSecret(
                internal=internal,
                ttl_seconds=ttl.ttl_seconds,
                max_ttl_seconds=role.max_ttl,
            ),
        )

    # -- the lease manager's calls (tenantvault.leases.LeasingEngine) -------------------------

    async def revoke_secret(self, mount: Mount, internal: Mapping[str, Any]) -> None:
        """Drop the database user of a dynamic credential (its lease ended)."""
        _, plugin = await self._plugin_for(mount.storage, str(internal["db_name"]))
        await plugin.revoke_user(
            list(internal.get("revocation_statements") or []), username=str(internal["username"])
        )

    async def renew_secret(
        self,
        mount: Mount,
        internal: Mapping[str, Any],
        *,
        increment_seconds: int,
        issued_ns: int,
        now_ns: int,
    ) -> LeaseTTL:
        """Move the user's VALID UNTIL; the role must still exist (Vault's rule)."""
        role_name = str(internal["role"])
        role = await load(mount.storage, DynamicRole, ROLE + role_name)
        if role is None:
            raise plain(f'error during renew: could not find role with name "{role_name}"')
        ttl = calculate_ttl(
            mount.config,
            increment_seconds=increment_seconds,
            backend_ttl_seconds=role.default_ttl,
            backend_max_ttl_seconds=role.max_ttl,
            issued_ns=issued_ns,
            now_ns=now_ns,
        )
        _, plugin = await self._plugin_for(mount.storage, str(internal["db_name"]))
        expiration = (
            datetime.fromtimestamp(now_ns / _NS, UTC)
            + timedelta(seconds=ttl.ttl_seconds)
            + _EXPIRATION_SLACK
        )
        try:
            await plugin.renew_user(
                role.renew_statements, username=str(internal["username"]), expiration=expiration
            )
        except DatabaseError as error:
            raise plain(error.message) from None
        return ttl

    # -- static roles ----------------------------------------------------------------------------

    async def _write_static(
        self, store: MountStorage, name: str, data: Mapping[str, Any]
    ) -> Response:
        if await store.read(ROLE + name) is not None:
            raise InvalidRequestError("Role and Static Role names must be unique")
        await self.static.write(store, name, data)
        return Response.no_content()

    async def _static_creds(self, store: MountStorage, name: str) -> Response:
        role = await load(store, StaticRole, STATIC_ROLE + name)
        if role is None:
            raise InvalidRequestError(f"unknown role: {name}")
        config, _ = await self._plugin_for(store, role.db_name)
        if not config.allows(name):
            raise plain(f'"{name}" is not an allowed role')
        return Response(data=self.static.credentials(role))

    async def _rotate_role(self, store: MountStorage, name: str) -> Response:
        if await store.read(STATIC_ROLE + name) is None:
            raise InvalidRequestError("no static role found for role name")
        try:
            await self.static.rotate(store, name)
        except DatabaseError as error:
            raise PlainError(
                "unable to finish rotating credentials; retries will continue in the "
                f"background but it is also safe to retry manually: {error.message}"
            ) from None
        return Response.no_content()

    # -- for other parts of tenantvault (the KV rotation's `database` rotator) ----------------

    async def static_credentials(self, mount: Mount, name: str) -> tuple[str, str]:
        """A static role's (username, current password); `NotFoundError` if none."""
        role = await load(mount.storage, StaticRole, STATIC_ROLE + name)
        if role is None:
            raise NotFoundError("no static role found for role name")
        return role.username, role.password

    async def rotate_static_role(
        self, mount: Mount, name: str, *, password: str | None = None
    ) -> tuple[str, str]:
        """Set a static role's password now (a fresh one unless `password` is given); its
        (username, new password). `DatabaseError` if the database refused it,
        `RotationBusyError` while another rotation of the role runs."""
        role = await self.static.rotate(mount.storage, name, password=password)
        return role.username, role.password

    async def rotate_due(self) -> int:
        """One pass of scheduled static-role rotation over every database mount."""
        if self._mounts_of_type is None:
            return 0
        done = 0
        for _tenant, mount in await self._mounts_of_type(self.type):
            done += await self.static.rotate_due(mount.storage)
        return done
