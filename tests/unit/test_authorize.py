"""The Core's authorization step decides what a mount listing shows, and how a refusal reads."""

from __future__ import annotations

import pytest

from tenantvault._authorize import ROOT_ACL, Decision, authorize, visible_mounts
from tenantvault._exceptions import PermissionDeniedError
from tenantvault._policy import ACL, Policy
from tenantvault._request import Operation, Request, Response
from tenantvault._tokens import Principal
from tenantvault.engines._route import Call, MountView, Route

_LISTED = {"reach/": False, "pub/": True, "dark/": False, "auth/token/": False}
_HOLDER = Principal(tenant="acme", policies=("p",))
_REQUEST = Request(Operation.READ, "sys/internal/ui/mounts")


async def _answer(call: Call) -> Response:
    return Response()


def _acl(text: str) -> ACL:
    return ACL([Policy.parse("p", text)])


def _listing() -> Route:
    return Route("sys/internal/ui/mounts", None, _answer, mount="sys", lists_mounts=_LISTED)


def test_a_token_sees_in_full_what_it_reaches_and_what_is_listed_unauth() -> None:
    acl = _acl(
        'path "reach/a/b" { capabilities = ["read"] }\npath "dark/*" { capabilities = ["deny"] }'
    )
    view = visible_mounts(_listing(), acl, principal=_HOLDER)
    assert view == MountView(frozenset({"reach/", "pub/"}), detailed=True)


def test_no_token_sees_only_what_is_listed_unauth_in_brief() -> None:
    view = visible_mounts(_listing(), ROOT_ACL, principal=None)
    assert view == MountView(frozenset({"pub/"}), detailed=False)


def test_root_sees_every_declared_mount() -> None:
    view = visible_mounts(_listing(), ROOT_ACL, principal=Principal.operator())
    assert view is not None
    assert view.paths == frozenset(_LISTED)


def test_routes_that_list_nothing_get_no_view() -> None:
    route = Route("sys/mounts", "read", _answer, mount="sys")
    assert visible_mounts(route, ROOT_ACL, principal=_HOLDER) is None


async def _anonymous(route: Route) -> Decision:
    return await authorize(
        route, ACL(()), storage_tenant="acme", principal=None, request=_REQUEST, tenant="acme"
    )


async def test_only_the_listing_runs_without_a_principal() -> None:
    """Reached without a token, a listing runs (it will show only unauth mounts); any other
    non-public route, or a listing that also declares a requirement, is refused."""
    assert await _anonymous(_listing()) == Decision(None, frozenset())
    for route in (
        Route("sys/mounts", "read", _answer, mount="sys"),
        Route("sys/x", None, _answer, sudo=True, lists_mounts=_LISTED),
    ):
        with pytest.raises(PermissionDeniedError):
            await _anonymous(route)


async def test_a_refusal_reads_as_the_route_declares() -> None:
    route = Route(
        "sys/internal/ui/mounts/dark/x",
        None,
        _answer,
        mount_access="dark/",
        refusal="preflight capability check returned 403",
    )
    with pytest.raises(PermissionDeniedError, match="preflight capability check"):
        await authorize(
            route,
            _acl('path "reach/*" { capabilities = ["read"] }'),
            storage_tenant="acme",
            principal=_HOLDER,
            request=_REQUEST,
            tenant="acme",
        )
