"""The `jwt` auth method type: `config`, `role/<name>`, LIST `role`, and `login`.

A login (`{"role": ..., "jwt": ...}`) runs without a token: the role is read from the mount
the request was routed to, the JWT verified against that mount's keys (`_verify`), and the
identity it names handed to the Core as a `LoginResult`; the Core mints the tenant token.
Failed logins count against the mount's `LoginThrottle` per (role, client address). The JWT
is a declared parameter like any other, so audit entries hold only its salted HMAC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RequestError,
    UnsupportedOperationError,
)
from tenantvault._fields import get_str
from tenantvault._go_text import multierror
from tenantvault._records import decode_record, encode_record
from tenantvault._request import Operation, Response
from tenantvault.engines._protocol import Mount, MountStorage
from tenantvault.engines._route import Call, Route
from tenantvault.engines.auth._cidr import address_allowed
from tenantvault.engines.auth._errors import PlainError
from tenantvault.engines.auth._renew import RenewTerms, role_gone
from tenantvault.engines.auth._settings import AuthSettings
from tenantvault.engines.auth._throttle import LoginThrottle
from tenantvault.engines.auth.jwt._config import CONFIG_PARAMETERS, JwtConfig
from tenantvault.engines.auth.jwt._egress import JwksEgress
from tenantvault.engines.auth.jwt._jwks import (
    JwksCache,
    JwksError,
    JwksFetcher,
    JwksRefusedError,
    ssl_context,
)
from tenantvault.engines.auth.jwt._keys import VerificationKey, parse_pem
from tenantvault.engines.auth.jwt._role import ROLE_PARAMETERS, JwtRole
from tenantvault.engines.auth.jwt._verify import KeySource, verify

if TYPE_CHECKING:
    from tenantvault._tokens import TokenRecord

__all__ = ["JwtEngine"]

_CONFIG_KEY: Final = "config"
_ROLE_PREFIX: Final = "role/"
_LOGIN_PARAMETERS: Final = frozenset({"role", "jwt", "distributed_claim_access_token"})
_NONE: Final = frozenset[str]()
_NS: Final = 1_000_000_000
_MAX_PARSED_MOUNTS: Final = 4096
# OpenBao's texts for "no key verified the signature": PEM keys, and a JWKS.
_NO_PEM_KEY: Final = "no known key successfully validated the token signature"
_NO_JWKS_KEY: Final = "failed to verify id token signature"


async def _load_config(store: MountStorage) -> JwtConfig | None:
    record = await store.read(_CONFIG_KEY)
    return None if record is None else JwtConfig.from_record(decode_record(record.value))


async def _load_role(store: MountStorage, name: str) -> JwtRole | None:
    record = await store.read(_ROLE_PREFIX + name)
    return None if record is None else JwtRole.from_record(decode_record(record.value))


class JwtEngine:
    """The registered `jwt` auth method: one object serving every jwt mount of every tenant."""

    type: Final = "jwt"

    def __init__(self, settings: AuthSettings, *, jwks: JwksCache | None = None) -> None:
        self._clock = settings.clock
        self._throttle = LoginThrottle(
            clock=settings.clock,
            failures=settings.login_failures,
            window_seconds=settings.login_window_seconds,
        )
        if jwks is None:
            fetcher = JwksFetcher(egress=JwksEgress(settings.jwks_allow))
            jwks = JwksCache(fetcher, clock=settings.clock)
        self._jwks = jwks
        # Parsed PEM keys per mount, reused while the config's PEMs are unchanged.
        self._pem_keys: dict[tuple[str, str], tuple[tuple[str, ...], list[VerificationKey]]] = {}

    def __repr__(self) -> str:
        return "JwtEngine()"

    def check_options(self, options: Mapping[str, str]) -> dict[str, str]:
        return dict(options)

    async def destroy(self, mount: Mount) -> None:
        self._forget(mount)

    async def renew(self, mount: Mount, record: TokenRecord) -> RenewTerms:
        """A token of this mount renews while its role exists, under the role's current TTLs
        (OpenBao's `pathLoginRenew`; its text names the role unquoted)."""
        name = (record.meta or {}).get("role", "")
        if not name:
            raise PlainError(
                multierror(["failed to renew entry: failed to fetch role_name during renewal"])
            )
        role = await _load_role(mount.storage, name)
        if role is None:
            raise role_gone(name)
        return RenewTerms(role.token_ttl, role.token_max_ttl, role.token_period)

    def _forget(self, mount: Mount) -> None:
        self._jwks.forget(mount.storage.identity)
        self._pem_keys.pop(mount.storage.identity, None)

    def route(self, operation: Operation, path: str, mount: Mount) -> Route:
        acl = f"{mount.path}{path}"
        if path == "login":
            if operation not in (Operation.UPDATE, Operation.CREATE):
                raise UnsupportedOperationError()
            return Route(
                acl,
                "update",
                lambda call: self._login(call, mount),
                mount=mount.name,
                mints_token="login",  # noqa: S106 -- the kind of route, not a secret
                parameters=_LOGIN_PARAMETERS,
            )
        if path == "config":
            return self._config_route(operation, acl, mount)
        if path in ("role", "role/"):
            if operation is not Operation.LIST:
                raise UnsupportedOperationError()
            return Route(
                f"{mount.path}role/",
                "list",
                lambda call: self._list_roles(mount.storage),
                mount=mount.name,
                parameters=_NONE,
            )
        if path.startswith(_ROLE_PREFIX):
            return self._role_route(operation, acl, path[len(_ROLE_PREFIX) :], mount)
        raise NotFoundError("unsupported path")

    # -- config ----------------------------------------------------------------------------

    def _config_route(self, operation: Operation, acl: str, mount: Mount) -> Route:
        store = mount.storage
        if operation is Operation.READ:

            async def read(call: Call) -> Response:
                config = await _load_config(store)
                if config is None:
                    raise NotFoundError()
                return Response(data=config.read())

            return Route(acl, "read", read, mount=mount.name, parameters=_NONE)
        if operation in (Operation.UPDATE, Operation.CREATE):

            async def write(call: Call) -> Response:
                config = JwtConfig.from_request(call.data, await _load_config(store))
                if config.jwks_url:
                    await self._check_jwks(config)
                await store.write(
                    _CONFIG_KEY, encode_record(config.to_record()), expected_revision=None
                )
                self._forget(mount)
                return Response.no_content()

            return Route(acl, "update", write, mount=mount.name, parameters=CONFIG_PARAMETERS)
        raise UnsupportedOperationError()

    async def _check_jwks(self, config: JwtConfig) -> None:
        """OpenBao's write-time check: the CA parses and the URL serves a usable key set."""
        if config.jwks_ca_pem:
            try:
                ssl_context(config.jwks_ca_pem)
            except JwksError:
                raise InvalidRequestError("error checking jwks_ca_pem") from None
        try:
            await self._jwks.fetcher.fetch(config.jwks_url, config.jwks_ca_pem)
        except JwksRefusedError as refused:
            # tenantvault's own refusal (no SSRF): the text names the rule, never the answer.
            raise InvalidRequestError(str(refused)) from None
        except JwksError:
            raise InvalidRequestError("error checking jwks URL") from None

    # -- roles -----------------------------------------------------------------------------

    def _role_route(self, operation: Operation, acl: str, raw_name: str, mount: Mount) -> Route:
        if not raw_name or "/" in raw_name:
            raise NotFoundError("unsupported path")
        name = raw_name.lower()  # OpenBao's role names are case-insensitive
        store = mount.storage
        if operation is Operation.READ:

            async def read(call: Call) -> Response:
                role = await _load_role(store, name)
                if role is None:
                    raise NotFoundError()
                return Response(data=role.read())

            return Route(acl, "read", read, mount=mount.name, parameters=_NONE)
        if operation is Operation.DELETE:

            async def delete(call: Call) -> Response:
                await store.delete(_ROLE_PREFIX + name)
                return Response.no_content()

            return Route(acl, "delete", delete, mount=mount.name, parameters=_NONE)
        if operation in (Operation.UPDATE, Operation.CREATE):

            async def write(call: Call) -> Response:
                role = JwtRole.from_request(call.data, await _load_role(store, name))
                await store.write(
                    _ROLE_PREFIX + name, encode_record(role.to_record()), expected_revision=None
                )
                return Response.no_content()

            async def exists(_tenant: str) -> bool:
                return await store.read(_ROLE_PREFIX + name) is not None

            return Route(
                acl,
                "create" if operation is Operation.CREATE else None,
                write,
                exists=exists if operation is Operation.UPDATE else None,
                mount=mount.name,
                parameters=ROLE_PARAMETERS,
            )
        raise UnsupportedOperationError()

    @staticmethod
    async def _list_roles(store: MountStorage) -> Response:
        keys = [key for key in await store.list(_ROLE_PREFIX) if not key.endswith("/")]
        if not keys:
            raise NotFoundError()
        return Response(data={"keys": sorted(keys)})

    # -- login -----------------------------------------------------------------------------

    async def _login(self, call: Call, mount: Mount) -> Response:
        store = mount.storage
        config = await _load_config(store)
        if config is None:
            raise InvalidRequestError("could not load configuration")
        role_name = (get_str(call.data, "role") or config.default_role).lower()
        if not role_name:
            raise InvalidRequestError("missing role")
        key = (mount.uuid, role_name, call.client_address or "")
        async with self._throttle.attempt(key):
            role = await _load_role(store, role_name)
            if role is None:
                raise InvalidRequestError(f'role "{role_name}" could not be found')
            token = call.data.get("jwt")
            if not isinstance(token, str) or not token:
                raise InvalidRequestError("missing token")
            if not address_allowed(call.client_address, role.token_bound_cidrs):
                raise PermissionDeniedError()
            found = await verify(
                token,
                config=config,
                role_name=role_name,
                role=role,
                source=self._source(config, mount),
                now=self._clock() / _NS,
            )
        return Response(login=role.login_result(display_name=found.name, metadata=found.metadata))

    def _source(self, config: JwtConfig, mount: Mount) -> KeySource:
        ident = mount.storage.identity
        if config.jwks_url:

            async def jwks_keys(kid: str | None) -> list[VerificationKey]:
                try:
                    return await self._jwks.keys(
                        ident, config.jwks_url, config.jwks_ca_pem, kid=kid
                    )
                except JwksError:
                    # A 400 that is not the caller's fault: a plain `RequestError`, which the
                    # failed-login limit does not count, so an outage of the issuer's JWKS
                    # does not lock the tool servers out for the window after it is over.
                    raise RequestError(
                        "error validating token: error verifying token signature: "
                        "fetching keys failed"
                    ) from None

            return KeySource(jwks_keys, _NO_JWKS_KEY)

        async def pem_keys(kid: str | None) -> list[VerificationKey]:
            return self._parsed_pems(ident, config.jwt_validation_pubkeys)

        return KeySource(pem_keys, _NO_PEM_KEY)

    def _parsed_pems(self, ident: tuple[str, str], pems: tuple[str, ...]) -> list[VerificationKey]:
        cached = self._pem_keys.get(ident)
        if cached is not None and cached[0] == pems:
            return cached[1]
        keys: list[VerificationKey] = []
        for pem in pems:
            try:
                keys.append(parse_pem(pem))
            except ValueError:
                continue  # validated when written; a key that no longer parses verifies nothing
        if len(self._pem_keys) >= _MAX_PARSED_MOUNTS:
            self._pem_keys.clear()  # a cache: reparsing costs microseconds per key
        self._pem_keys[ident] = (pems, keys)
        return keys
