"""The auth-method seam: a login route runs as no one and declares nothing else; only a login
route's answer is minted, by the Core, with the mount's TTL limits; CIDR checks fail closed;
the failed-login throttle counts failures in windows of a fake clock."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from tenantvault._authorize import ROOT_ACL, Decision, authorize, grant_token
from tenantvault._exceptions import InternalError, InvalidRequestError, PermissionDeniedError
from tenantvault._namespaces import Namespaces
from tenantvault._request import Operation, Request, Response
from tenantvault._router import MountEntry, Router
from tenantvault._tenants import TenantRegistry
from tenantvault._tokens import Principal, TokenStore
from tenantvault.backends._memory import MemoryBackend
from tenantvault.engines._route import Call, Route
from tenantvault.engines.auth import LoginResult, LoginThrottle, LoginThrottledError
from tenantvault.engines.auth._cidr import address_allowed, is_subset, parse_cidrs
from tenantvault.engines.auth._login import mint_login
from tenantvault.engines.auth._logins import LoginRoute, Logins
from tenantvault.engines.auth._registry import AUTH_METHODS, AuthSettings
from tenantvault.engines.auth._renew import RenewGrant, RenewingEngine
from tests.conftest import FakeClock

_REQUEST = Request(Operation.UPDATE, "auth/approle/login", data={"role_id": "r"})
_KEY = ("mount-uuid", "app", "10.0.0.1")
_RESULT = LoginResult(policies=("app",), display_name="approle")


async def _answer(call: Call) -> Response:
    return Response(login=_RESULT)


_LOGIN = Route("auth/approle/login", "update", _answer, mints_token="login")


# -- authorization ----------------------------------------------------------------------


async def test_a_login_route_runs_without_a_principal() -> None:
    result = await authorize(
        _LOGIN, ROOT_ACL, storage_tenant="acme", principal=None, request=_REQUEST, tenant="acme"
    )
    assert result == Decision(None, frozenset())
    grant = await grant_token(_LOGIN, ROOT_ACL, principal=None, request=_REQUEST, tenant="acme")
    assert grant is None


@pytest.mark.parametrize(
    "route",
    [
        dataclasses.replace(_LOGIN, sudo=True),
        dataclasses.replace(_LOGIN, extra=(("sys/x", "read"),)),
        dataclasses.replace(_LOGIN, mount_access="auth/approle/"),
        dataclasses.replace(_LOGIN, public=True),
    ],
)
async def test_a_login_route_that_declares_anything_else_fails_closed(route: Route) -> None:
    with pytest.raises(PermissionDeniedError):
        await authorize(
            route, ROOT_ACL, storage_tenant="acme", principal=None, request=_REQUEST, tenant="acme"
        )


async def test_a_login_route_reached_with_a_principal_fails_closed() -> None:
    holder = Principal(tenant="acme", policies=("root",))
    with pytest.raises(PermissionDeniedError):
        await authorize(
            _LOGIN,
            ROOT_ACL,
            storage_tenant="acme",
            principal=holder,
            request=_REQUEST,
            tenant="acme",
        )


# -- minting ----------------------------------------------------------------------------


@dataclasses.dataclass
class _Stores:
    tokens: TokenStore
    logins: Logins


@pytest.fixture
async def stores() -> AsyncIterator[_Stores]:
    backend = MemoryBackend()
    clock = FakeClock()
    tenants = TenantRegistry(backend, clock=clock)
    store = TokenStore(backend, clock=clock, tenant_uid=tenants.uid)
    await store.start()
    router = Router(backend, {}, tenant_uid=tenants.uid)
    yield _Stores(store, Logins(router, Namespaces(router, tenants), store))
    await backend.aclose()


@pytest.fixture
def tokens(stores: _Stores) -> TokenStore:
    return stores.tokens


def _mount(*, default: int = 0, maximum: int = 0) -> MountEntry:
    return Router.new_entry(
        "auth/approle/", "approle", default_lease_ttl=default, max_lease_ttl=maximum
    )


async def test_only_a_login_route_may_answer_a_login_result(stores: _Stores) -> None:
    logins = stores.logins
    other = Route("auth/approle/role/x", "read", _answer)
    with pytest.raises(InternalError):
        await logins.issue(Response(login=_RESULT), None, other)
    # A login route that answers no LoginResult is a bug too.
    routed = LoginRoute(None, "", _LOGIN, _mount(), "auth/approle/login")
    with pytest.raises(InternalError):
        await logins.issue(Response(), routed, _LOGIN)
    response = Response(login=_RESULT)
    await logins.issue(response, routed, _LOGIN)
    assert response.login is None
    assert response.auth is not None
    assert response.auth["policies"] == ["app", "default"]


@pytest.mark.parametrize(
    ("result", "mount", "lease"),
    [
        (LoginResult(policies=(), display_name="x"), _mount(), 768 * 3600),
        (LoginResult(policies=(), display_name="x"), _mount(default=600), 600),
        (LoginResult(policies=(), display_name="x", ttl_seconds=7200), _mount(maximum=3600), 3600),
        (
            LoginResult(policies=(), display_name="x", ttl_seconds=7200, max_ttl_seconds=60),
            _mount(),
            60,
        ),
        (LoginResult(policies=(), display_name="x", period_seconds=300), _mount(), 300),
    ],
)
async def test_the_mount_and_the_result_bound_the_token_lifetime(
    tokens: TokenStore, result: LoginResult, mount: MountEntry, lease: int
) -> None:
    auth = await mint_login(
        tokens, result, tenant=None, tenant_uid="", mount=mount, path="auth/approle/login"
    )
    assert auth["lease_duration"] == lease
    assert auth["orphan"] is True


async def test_an_auth_method_never_mints_root(tokens: TokenStore) -> None:
    with pytest.raises(InvalidRequestError, match="auth methods cannot create root tokens"):
        await mint_login(
            tokens,
            LoginResult(policies=("root",), display_name="x"),
            tenant=None,
            tenant_uid="",
            mount=_mount(),
            path="auth/approle/login",
        )


async def test_a_bound_token_authenticates_only_from_inside_its_blocks(
    tokens: TokenStore,
) -> None:
    result = LoginResult(policies=("app",), display_name="x", bound_cidrs=("10.0.0.0/8",))
    auth = await mint_login(
        tokens, result, tenant=None, tenant_uid="", mount=_mount(), path="auth/approle/login"
    )
    token = auth["client_token"]
    assert (await tokens.authenticate(token, client_address="10.2.3.4")).policies
    for address in ("192.168.0.1", None):
        with pytest.raises(PermissionDeniedError):
            await tokens.authenticate(token, client_address=address)


async def test_revoke_issued_revokes_only_that_mounts_tokens(tokens: TokenStore) -> None:
    one, two = _mount(), _mount()
    first = await mint_login(
        tokens, _RESULT, tenant=None, tenant_uid="", mount=one, path="auth/approle/login"
    )
    second = await mint_login(
        tokens, _RESULT, tenant=None, tenant_uid="", mount=two, path="auth/other/login"
    )
    assert await tokens.revoke_issued(None, "", one.uuid) == 1
    with pytest.raises(PermissionDeniedError):
        await tokens.authenticate(first["client_token"])
    assert await tokens.authenticate(second["client_token"])


# -- CIDR -------------------------------------------------------------------------------


def test_cidr_checks_fail_closed() -> None:
    assert address_allowed(None, [])  # nothing bound
    assert not address_allowed(None, ["0.0.0.0/0"])  # an unknown address satisfies nothing
    assert not address_allowed("not-an-ip", ["0.0.0.0/0"])
    assert address_allowed("::ffff:10.1.2.3", ["10.0.0.0/8"])  # IPv4-mapped IPv6
    assert not address_allowed("10.1.2.3", ["::/0"])
    assert parse_cidrs("10.0.0.1, 10.0.0.0/8", field="f") == ["10.0.0.1/32", "10.0.0.0/8"]
    with pytest.raises(InvalidRequestError):
        parse_cidrs(["nope"], field="f")
    assert is_subset(["10.1.0.0/16"], ["10.0.0.0/8"])
    assert not is_subset(["10.0.0.0/8"], ["10.1.0.0/16"])


# -- throttle ---------------------------------------------------------------------------


async def _fail(throttle: LoginThrottle) -> None:
    async with throttle.attempt(_KEY):
        raise InvalidRequestError("invalid role or secret ID")


async def test_the_throttle_counts_failures_per_window(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock=clock, failures=3, window_seconds=60)
    for _ in range(3):
        with pytest.raises(InvalidRequestError):
            await _fail(throttle)
    with pytest.raises(LoginThrottledError):
        await _fail(throttle)
    with pytest.raises(LoginThrottledError):
        throttle.check(_KEY)  # the right credential too
    throttle.check(("mount-uuid", "app", "10.0.0.2"))  # another address is not affected
    clock.advance(59)
    with pytest.raises(LoginThrottledError):
        throttle.check(_KEY)
    clock.advance(1)
    throttle.check(_KEY)


async def test_successes_do_not_reset_the_count(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock=clock, failures=2, window_seconds=60)
    with pytest.raises(InvalidRequestError):
        await _fail(throttle)
    async with throttle.attempt(_KEY):
        pass
    with pytest.raises(InvalidRequestError):
        await _fail(throttle)
    with pytest.raises(LoginThrottledError):
        throttle.check(_KEY)


def test_the_throttle_refuses_a_limit_that_limits_nothing(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="failures"):
        LoginThrottle(clock=clock, failures=0)


# -- renewal ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(AUTH_METHODS))
def test_every_auth_method_answers_renewals(kind: str, clock: FakeClock) -> None:
    # The Core refuses to renew a token whose issuer cannot re-check it (fails closed), so a
    # registered method without `renew` would make its tokens unrenewable.
    assert isinstance(AUTH_METHODS[kind](AuthSettings(clock=clock)), RenewingEngine)


@pytest.mark.parametrize(
    ("terms", "requested", "increment", "ceiling"),
    [
        (RenewGrant(ttl_seconds=600, max_ttl_seconds=1200, period_seconds=0), None, 600, 1200),
        (RenewGrant(ttl_seconds=600, max_ttl_seconds=1200, period_seconds=0), 7200, 7200, 1200),
        # A period renews to the period (capped by the max), whatever the increment; no cap.
        (RenewGrant(ttl_seconds=600, max_ttl_seconds=1200, period_seconds=300), 7200, 300, 0),
        (RenewGrant(ttl_seconds=600, max_ttl_seconds=120, period_seconds=300), None, 120, 0),
    ],
)
def test_a_renew_grant_is_vaults_calculate_ttl(
    terms: RenewGrant, requested: int | None, increment: int, ceiling: int
) -> None:
    assert terms.increment(requested) == increment
    assert terms.ceiling_seconds == ceiling
