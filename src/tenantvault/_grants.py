"""The token-issuing rules, applied by the Core to routes that mint tokens (never by engines).

Vault's rules, with its statuses and messages, in its order: a use-limited parent cannot
create tokens; a token hands out only the policies it holds (the subset rule); orphans and
periodic tokens need root or `sudo` on the creating path; outside its own namespace a parent's
policies are not inherited. A token role (`auth/token/create/<role>`) replaces the subset rule
and the sudo requirements with its own constraints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from fnmatch import fnmatchcase
from typing import Any

from tenantvault._durations import parse_duration
from tenantvault._exceptions import InvalidRequestError, PermissionDeniedError
from tenantvault._fields import get_bool, get_mapping
from tenantvault._go_text import go_quote
from tenantvault._paths import validate_name
from tenantvault._token_roles import TokenRole
from tenantvault._tokens import Principal, refuse_restricted_parent
from tenantvault.engines._route import TokenGrant

__all__ = ["MAX_META_KEYS", "token_grant"]

MAX_META_KEYS = 64


def _requested(
    data: Mapping[str, Any], principal: Principal, namespace: str | None
) -> tuple[list[str], bool]:
    """The policies asked for, and whether they were named (rather than inherited)."""
    raw = data.get("policies")
    if raw is None:
        # The parent's policies are inherited only inside the parent's own namespace: a
        # root-namespace token (or the operator) making a tenant's token without naming
        # policies gives it `default` alone, as OpenBao does, never a tenant root token.
        inherited = principal.tenant == namespace
        return ([p for p in principal.policies if p != "default"] if inherited else []), False
    if isinstance(raw, list) and all(isinstance(p, str) for p in raw):
        return list(raw), True
    if isinstance(raw, str):
        return [p.strip() for p in raw.split(",") if p.strip()], True
    raise InvalidRequestError("invalid value for policies: expected a list of strings")


def token_grant(
    data: Mapping[str, Any],
    *,
    principal: Principal,
    namespace: str | None,
    orphan_route: bool,
    sudo: bool,
    role: TokenRole | None = None,
) -> TokenGrant:
    """What `principal` may mint in `namespace` (None: the root namespace) with `data`.

    `orphan_route` is create-orphan (always an orphan); `sudo` is whether the caller's
    policies grant `sudo` on the creating path (root's do). With a token `role`
    (`auth/token/create/<role>`) its rules decide instead, as in Vault: its allowed and
    disallowed policies replace the subset rule (which still holds when it allows none),
    and its `orphan` and `token_period` need no sudo.
    """
    # Through a role, `no_parent` is ignored: the role's `orphan` decides (as in OpenBao).
    asks_orphan = orphan_route or (role is None and bool(get_bool(data, "no_parent")))
    # First, as in Vault: a use-limited token gets this answer whatever else it asks.
    refuse_restricted_parent(principal.record)
    requested, explicit = _requested(data, principal, namespace)
    for name in requested:
        validate_name(name, kind="policy name")
    no_default = get_bool(data, "no_default_policy", default=False) or bool(
        role and role.no_default_policy
    )
    allows = role is not None and bool(role.allowed_policies or role.allowed_policies_glob)
    # A role with policy lists replaces the subset rule; one without keeps it.
    by_role = allows or (
        role is not None and bool(role.disallowed_policies or role.disallowed_policies_glob)
    )
    if role is not None and allows:
        requested = _role_allowed(role, requested if explicit else [], no_default=no_default)
    elif not no_default and "root" not in requested:
        requested.append("default")
    role_orphan = role is not None and role.orphan
    if asks_orphan and not role_orphan and not sudo:
        raise PermissionDeniedError("root or sudo privileges required to create orphan token")
    if (
        not by_role
        and not principal.is_root
        and not set(requested) - {"default"} <= set(principal.policies)
    ):
        # A token can only hand out what it holds itself (Vault's subset rule).
        raise PermissionDeniedError(
            "child policies must be subset of parent" if explicit else "permission denied"
        )
    if role is not None:
        _refuse_disallowed(role, requested)
        if "root" in requested and not principal.is_root:
            raise InvalidRequestError(
                "root tokens may not be created without parent token being root"
            )
    orphan = asks_orphan or role_orphan
    meta = get_mapping(data, "meta")
    if meta is not None and (
        len(meta) > MAX_META_KEYS
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    ):
        raise InvalidRequestError("invalid value for meta: expected an object of strings")
    if role is not None and role.period_seconds:
        period = role.period_seconds  # the role's period wins, and needs no sudo
    else:
        period = parse_duration(data.get("period") or 0, field="period")
        if period and not sudo:
            # A periodic token can be renewed forever: Vault reserves it to root and sudo.
            raise InvalidRequestError("root or sudo privileges required to create periodic token")
    grant = TokenGrant(
        policies=tuple(requested),
        orphan=orphan,
        period_seconds=period,
        meta=dict(meta) if meta else None,
    )
    if role is None:
        return grant
    suffix = f"/{role.path_suffix}" if role.path_suffix else ""
    return replace(
        grant,
        explicit_max_ttl_cap_seconds=role.explicit_max_ttl_seconds,
        renewable=role.renewable,
        bound_cidrs=role.bound_cidrs,
        path=f"auth/token/create/{role.name}{suffix}",
    )


def _quoted(names: list[str] | tuple[str, ...]) -> str:
    """Go's `%q` of a string slice: `["a" "b"]`."""
    return "[" + " ".join(go_quote(name) for name in names) + "]"


def _role_allowed(role: TokenRole, requested: list[str], *, no_default: bool) -> list[str]:
    """The policies of a token made through a role with allowed policies: those asked for
    (all the allowed ones if none), each allowed by name or by glob."""
    allowed = set(role.allowed_policies)
    if not no_default:
        allowed.add("default")
    wanted = set(requested) if requested else set(role.allowed_policies)
    if not no_default and "root" not in wanted:
        wanted.add("default")
    permitted = all(
        name in allowed or any(fnmatchcase(name, glob) for glob in role.allowed_policies_glob)
        for name in wanted
    )
    if not permitted:
        raise InvalidRequestError(
            f"token policies ({_quoted(sorted(wanted))}) must be subset of the role's allowed "
            f"policies ({_quoted(sorted(allowed))}) or glob policies "
            f"({_quoted(role.allowed_policies_glob)})"
        )
    return sorted(wanted)


def _refuse_disallowed(role: TokenRole, policies: list[str]) -> None:
    for name in sorted(policies):
        if name in role.disallowed_policies or any(
            fnmatchcase(name, glob) for glob in role.disallowed_policies_glob
        ):
            raise InvalidRequestError(f"token policy {go_quote(name)} is disallowed by this role")
