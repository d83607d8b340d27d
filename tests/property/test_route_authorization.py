"""Property: the Core checks every requirement a route declares, before its handler runs.

Routes come from the real route tables (kv, transit, sys, token, audit, the Core's own
sys/capabilities*, and auth methods' management and login routes), with their real
declarations; hypothesis may declare more on top (`sudo`, extra (path, capability) pairs) and
picks whether the target exists. Policies are random
exact-path rules over the paths the route names, so which requirements they meet is plain
set arithmetic. Whenever the policy lacks one declared requirement (capability, `sudo`, an
extra pair, mount access, root namespace), the request is refused and the handler never runs;
when it meets all of them the handler runs, and learns exactly which optional pairs hold.
A login route runs without a principal (the token the request carries is ignored), whatever
the policy, and only while it declares nothing else: with anything declared on top it is
refused and its handler never runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from tenantvault._core import Core
from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedOperationError,
)
from tenantvault._request import Operation, Request, Response
from tenantvault.backends._memory import MemoryBackend
from tenantvault.engines._route import Call, Need, RootOnly, Route
from tenantvault.engines.auth import LoginResult
from tenantvault.engines.auth._logins import LoginRoute

R, U, L, D = Operation.READ, Operation.UPDATE, Operation.LIST, Operation.DELETE
# (operation, path) pairs across every route table.
SAMPLES: list[tuple[Operation, str]] = [
    # kv
    (R, "secret/data/app/db"),
    (U, "secret/data/app/db"),
    (D, "secret/data/app/db"),
    (L, "secret/metadata/app"),
    (U, "secret/destroy/app/db"),
    (R, "secret/config"),
    # transit (encrypt declares create-on-encrypt as optional)
    (U, "transit/encrypt/k"),
    (U, "transit/decrypt/k"),
    (R, "transit/keys/k"),
    (U, "transit/keys/k/rotate"),
    (L, "transit/keys"),
    # sys
    (R, "sys/policies/acl/p"),
    (U, "sys/policies/acl/p"),
    (L, "sys/policies/acl"),
    (R, "sys/mounts"),
    (R, "sys/internal/ui/mounts/secret/app"),
    (R, "sys/internal/ui/mounts"),
    (R, "sys/namespaces/other"),
    (R, "sys/health"),
    # answered by the Core itself
    (U, "sys/capabilities-self"),
    (U, "sys/capabilities"),
    (U, "sys/capabilities-accessor"),
    # token
    (U, "auth/token/create"),
    (U, "auth/token/create-orphan"),
    (U, "auth/token/revoke-orphan"),
    (R, "auth/token/lookup-self"),
    (U, "auth/token/lookup"),
    (U, "auth/token/revoke-accessor"),
    (U, "auth/token/renew-accessor"),
    # audit
    (R, "sys/audit"),
    (U, "sys/audit/dev"),
    (D, "sys/audit/dev"),
    (U, "sys/audit-hash/dev"),
    (R, "sys/audit/events"),
    (R, "sys/audit/report"),
    # auth methods: management routes (ordinary ACL) and logins (run as no one)
    (R, "auth/approle/role/app"),
    (U, "auth/approle/role/app/secret-id"),
    (L, "auth/approle/role"),
    (R, "auth/jwt/config"),
    (U, "auth/jwt/role/tools"),
    (U, "auth/approle/login"),
    (U, "auth/jwt/login"),
]
AUTH_METHODS = ("approle", "jwt")
_LOGIN = "login"  # Route.mints_token of a login route (a route kind, not a credential)
TABLES: dict[str, list[tuple[Operation, str]]] = {}
for _operation, _path in SAMPLES:
    _table = "core" if _path.startswith("sys/capabilities") else _path.split("/")[0]
    if _path.startswith("sys/audit"):
        _table = "audit"
    if _path.split("/")[1:2] in (["approle"], ["jwt"]):
        _table = "login" if _path.endswith("/login") else "auth methods"
    TABLES.setdefault(_table, []).append((_operation, _path))
CAPABILITIES = ["create", "read", "update", "delete", "list", "patch", "sudo", "deny"]
EXTRA_PATHS = ["secret/data/other", "transit/keys/other", "sys/policies/acl/other", "auth/x"]


class Spy:
    """Stands in for every handler: records the Call it got, answers 200."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        # Only the request under test is routed to the spy; setup requests run for real.
        self.active = False

    async def __call__(self, call: Call) -> Response:
        self.calls.append(call)
        return Response(data={})

    async def login(self, call: Call) -> Response:
        """A login route's stand-in: what any login handler answers, for the Core to mint."""
        self.calls.append(call)
        return Response(login=LoginResult(policies=("p",), display_name=""))


def _instrumented(
    core: Core,
    spy: Spy,
    seen: list[Route],
    *,
    sudo: bool,
    extra: tuple[Need, ...],
    optional: tuple[Need, ...],
    exists: bool,
) -> None:
    """Route every request as the real tables do, then hand it to the spy: declarations kept,
    more declared on top, the existence check answered by the test."""

    async def answer(tenant: str) -> bool:
        return exists

    def wrap(route: Route | None) -> Route | None:
        if route is None or not spy.active:
            return route
        if route.resolve is not None:
            # A root-namespace-only placeholder: the real route it resolves to is spied too.
            resolve = route.resolve

            def resolved() -> Route:
                real = wrap(resolve())
                assert real is not None
                return real

            route = dataclasses.replace(route, resolve=resolved)
            seen.append(route)
            return route
        route = dataclasses.replace(
            route,
            handler=spy.login if route.mints_token == _LOGIN else spy,
            sudo=route.sudo or sudo,
            extra=route.extra + extra,
            optional=route.optional + optional,
            exists=answer if route.exists is not None else None,
        )
        seen.append(route)
        return route

    def spied(method: Callable[..., Any]) -> Callable[..., Any]:
        # Whether the Core's router is a coroutine or not, the spy wraps what it returns.
        def routed(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if inspect.isawaitable(result):

                async def later() -> Route | None:
                    return wrap(await result)

                return later()
            return wrap(result)

        return routed

    routed, owned = spied(core._route), spied(core._capabilities.route)
    find_login = core._logins.login_route

    async def login_route(request: Request) -> LoginRoute | None:
        # Logins are routed before authentication, by the Core's login pipeline.
        found = await find_login(request)
        if found is None:
            return None
        route = wrap(found.route)
        assert route is not None
        return dataclasses.replace(found, route=route)

    # Instance attributes shadow the methods: the Core's pipeline itself is untouched.
    vars(core).update(_route=routed)
    vars(core._capabilities).update(route=owned)
    vars(core._logins).update(login_route=login_route)


def _holds(rules: dict[str, frozenset[str]], path: str, capability: str) -> bool:
    granted = rules.get(path, frozenset())
    return "deny" not in granted and capability in granted


def _hcl(rules: dict[str, frozenset[str]]) -> str:
    lines = [
        f'path "{path}" {{ capabilities = {json.dumps(sorted(caps))} }}'
        for path, caps in rules.items()
        if caps
    ]
    return "\n".join(lines) or 'path "nothing" { capabilities = ["deny"] }'


def _expected(route: Route, rules: dict[str, frozenset[str]], *, exists: bool) -> bool:
    """Whether every declared requirement holds under `rules` (exact-path rules only)."""
    if route.mints_token == _LOGIN:
        # No principal and no policy: a login runs only while it declares nothing else.
        return not (
            route.sudo
            or route.extra
            or route.mount_access is not None
            or route.public
            or route.lists_mounts is not None
        )
    if route.public:
        # Run with no principal: nothing is granted, so any other declaration refuses.
        return not (route.sudo or route.extra or route.mount_access or route.mints_token)
    if route.lists_mounts is not None:
        pass  # no capability: the Core filters the listing instead (Call.visible_mounts)
    elif route.mount_access is not None:
        if not any(
            path.startswith(route.mount_access) and "deny" not in caps and caps
            for path, caps in rules.items()
        ):
            return False
    else:
        capability = route.capability or ("update" if exists else "create")
        if not _holds(rules, route.acl_path, capability):
            return False
    needs = list(route.extra)
    if route.sudo or route.mints_token == "orphan":
        needs.append((route.acl_path, "sudo"))
    return all(_holds(rules, path, capability) for path, capability in needs)


async def _scenario(data: st.DataObject) -> None:
    # One table first, then one of its routes: every table is drawn as often as the others.
    table = data.draw(st.sampled_from(sorted(TABLES)), label="table")
    operation, path = data.draw(st.sampled_from(TABLES[table]), label="route")
    in_tenant = data.draw(st.booleans(), label="in tenant")
    # Declared on top of the route's own: none most of the time, so that the route's own
    # declarations decide as often as the added ones.
    pairs = st.lists(
        st.tuples(st.sampled_from(EXTRA_PATHS), st.sampled_from(CAPABILITIES[:-1])),
        min_size=1,
        max_size=2,
    ).map(tuple)
    extra = data.draw(st.one_of(st.just(()), st.just(()), pairs), label="extra")
    optional = data.draw(st.one_of(st.just(()), pairs), label="optional")
    sudo = data.draw(st.sampled_from([False, False, True]), label="sudo")
    exists = data.draw(st.booleans(), label="exists")
    core = Core(MemoryBackend())
    await core.start()
    try:
        namespace = "acme" if in_tenant else None
        if in_tenant:
            await core.handle_as_operator(Request(Operation.UPDATE, "sys/namespaces/acme"))
        if table in ("login", "auth methods"):
            for kind in AUTH_METHODS:
                await core.handle_as_operator(
                    Request(
                        Operation.UPDATE,
                        f"sys/auth/{kind}",
                        data={"type": kind},
                        namespace=namespace,
                    )
                )
        spy, seen = Spy(), list[Route]()
        _instrumented(core, spy, seen, sudo=sudo, extra=extra, optional=optional, exists=exists)
        # Resolve the route once as the operator (root passes everything) to learn its paths.
        spy.active = True
        try:
            await core.handle_as_operator(Request(operation, path, data={}, namespace=namespace))
        except (NotFoundError, UnsupportedOperationError):
            assume(False)  # not served here (kv and transit live in tenants only)
        except (PermissionDeniedError, InvalidRequestError):
            pass  # a root-namespace-only route in a tenant: refused even to the operator
        spy.active = False
        assume(bool(seen))
        route = seen[-1]
        root_only = route.root_namespace_only is not None and in_tenant
        paths = sorted(
            {route.acl_path, *(p for p, _ in route.extra), *(p for p, _ in route.optional)}
            | ({route.mount_access + "x/y"} if route.mount_access else set())
        )
        # Often everything but deny (or but deny and sudo), so that runs which meet every
        # requirement, or all but sudo, are common too.
        grants = st.one_of(
            st.just(frozenset(CAPABILITIES[:-1])),
            st.just(frozenset(CAPABILITIES[:-2])),
            st.frozensets(st.sampled_from(CAPABILITIES)),
        )
        rules = {p: data.draw(grants, label=p) for p in paths}
        policy = _hcl(rules)
        await core.handle_as_operator(
            Request(
                Operation.UPDATE,
                "sys/policies/acl/p",
                data={"policy": policy},
                namespace=namespace,
            )
        )
        created = await core.handle_as_operator(
            Request(
                Operation.UPDATE,
                "auth/token/create",
                data={"policies": ["p"], "no_default_policy": True},
                namespace=namespace,
            )
        )
        assert created.auth is not None
        token = created.auth["client_token"]
        spy.calls.clear()
        spy.active = True
        expected = not root_only and _expected(route, rules, exists=exists)
        event("handler runs" if expected else "refused")
        names = (
            "sudo",
            "extra",
            "optional",
            "mount_access",
            "lists_mounts",
            "mints_token",
            "public",
        )
        for name in names:
            if getattr(route, name):
                event(f"declares {name}")
        if root_only:
            event("root-only route in a tenant")
        login = route.mints_token == _LOGIN
        if login:
            event("login runs" if expected else "login refused")
        # A login names its namespace itself (the token it carries is ignored).
        sent = Request(
            operation, path, data={}, token=token, namespace=namespace if login else None
        )
        try:
            await core.handle(sent)
        except PermissionDeniedError:
            assert not expected, (route, rules)
            assert spy.calls == [], "the handler ran although the request was refused"
            return
        except InvalidRequestError:
            # Only the root-namespace-only refusal answers 400 here (OpenBao's audit-hash).
            assert root_only
            assert route.root_namespace_only is RootOnly.REFUSE
            assert spy.calls == []
            return
        assert expected, (route, rules)
        assert len(spy.calls) == 1
        call = spy.calls[0]
        if login:
            # Run as no one: no caller, no token or policy views, nothing granted.
            assert call.caller is None
            assert call.tokens is None
            assert call.policies is None
            assert call.granted == frozenset()
            return
        held = {need for need in route.optional if _holds(rules, *need) and not route.public}
        assert call.granted == held
    finally:
        await core.aclose()


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_declared_requirement_is_checked_before_the_handler(data: st.DataObject) -> None:
    asyncio.run(_scenario(data))
