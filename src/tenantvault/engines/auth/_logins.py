"""The Core's side of logins: find an auth mount's login route before authenticating, and
mint the token a login handler asked for (`LoginResult`) in the mount's tenant."""

from __future__ import annotations

from dataclasses import dataclass

from tenantvault._exceptions import InternalError, TenantVaultError
from tenantvault._namespaces import Namespaces
from tenantvault._request import Request, Response
from tenantvault._router import AUTH_PREFIX, MountEntry, Router
from tenantvault._tokens import TokenStore
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.engines._route import Route
from tenantvault.engines.auth._login import mint_login

__all__ = ["LoginRoute", "Logins"]

_LOGIN = "login"  # Route.mints_token of a login route (a route kind, not a credential)


@dataclass(frozen=True, slots=True)
class LoginRoute:
    """A login request, routed: the tenant it runs in, its route and the auth mount."""

    tenant: str | None
    tenant_uid: str
    route: Route
    mount: MountEntry
    path: str  # namespace-relative, e.g. 'auth/approle/login'


def _is_token_auth(rest: str) -> bool:
    return rest == "token" or rest.startswith("token/")


class Logins:
    """Steps 1-3 of the pipeline for a login, and the minting after its handler."""

    def __init__(self, router: Router, namespaces: Namespaces, tokens: TokenStore) -> None:
        self._router = router
        self._namespaces = namespaces
        self._tokens = tokens

    async def login_route(self, request: Request) -> LoginRoute | None:
        """The login route `request` reaches without a token, or None (then the request goes
        through the usual pipeline, authenticated, and gets its usual answer).

        The tenant is the namespace the request names (header or path prefix) and never the
        token's: a login ignores any token it carries, as in Vault.
        """
        first, _, after = request.path.partition("/")
        if first != "auth" and not after.startswith(AUTH_PREFIX):
            return None  # neither `auth/...` nor `<tenant>/auth/...`: the common case
        try:
            namespace, path, _ = await self._namespaces.split(request, None)
            head, _, rest = path.partition("/")
            if head != "auth" or _is_token_auth(rest):
                return None
            tenant, uid = await self._namespaces.resolve(None, namespace, anonymous=True)
            if tenant is not None and not uid:
                return None  # no such tenant: the usual pipeline answers
            table = await self._router.table(tenant if tenant is not None else SYSTEM_TENANT, uid)
            found = table.match(path)
            if found is None or not found[0].is_auth:
                return None
            entry, rest = found
            route = self._router.engine(entry).route(
                request.operation, rest, table.mounts[entry.path]
            )
        except TenantVaultError:
            # Whatever refuses here refuses in the usual pipeline too, with the caller's token
            # taken into account (a bad path, a method the endpoint does not serve, ...).
            return None
        if route.mints_token != _LOGIN:
            return None
        return LoginRoute(tenant, uid, route, entry, path)

    async def issue(self, response: Response, login: LoginRoute | None, route: Route) -> None:
        """Mint the token a login handler asked for into `response.auth`; refuse a
        `LoginResult` from any other route (a handler cannot mint by answering one)."""
        if route.mints_token != _LOGIN:
            if response.login is not None:
                raise InternalError()
            return
        result = response.login
        if login is None or result is None:
            raise InternalError()  # a login route always answers a LoginResult
        response.login = None
        response.auth = await mint_login(
            self._tokens,
            result,
            tenant=login.tenant,
            tenant_uid=login.tenant_uid,
            mount=login.mount,
            path=login.path,
        )
