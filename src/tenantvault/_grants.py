"""The token-issuing rules, applied by the Core to routes that mint tokens (never by engines).

Vault's rules, with its statuses and messages, in its order: a use-limited parent cannot
create tokens; a token hands out only the policies it holds (the subset rule); orphans and
periodic tokens need root or `sudo` on the creating path; outside its own namespace a parent's
policies are not inherited.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantvault._durations import parse_duration
from tenantvault._exceptions import InvalidRequestError, PermissionDeniedError
from tenantvault._fields import get_bool, get_mapping
from tenantvault._paths import validate_name
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
) -> TokenGrant:
    """What `principal` may mint in `namespace` (None: the root namespace) with `data`.

    `orphan_route` is create-orphan (always an orphan); `sudo` is whether the caller's
    policies grant `sudo` on the creating path (root's do).
    """
    orphan = orphan_route or get_bool(data, "no_parent") or False
    # First, as in Vault: a use-limited token gets this answer whatever else it asks.
    refuse_restricted_parent(principal.record)
    requested, explicit = _requested(data, principal, namespace)
    for name in requested:
        validate_name(name, kind="policy name")
    if not get_bool(data, "no_default_policy", default=False) and "root" not in requested:
        requested.append("default")
    if orphan and not sudo:
        raise PermissionDeniedError("root or sudo privileges required to create orphan token")
    if not principal.is_root and not set(requested) - {"default"} <= set(principal.policies):
        # A token can only hand out what it holds itself (Vault's subset rule).
        raise PermissionDeniedError(
            "child policies must be subset of parent" if explicit else "permission denied"
        )
    meta = get_mapping(data, "meta")
    if meta is not None and (
        len(meta) > MAX_META_KEYS
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    ):
        raise InvalidRequestError("invalid value for meta: expected an object of strings")
    period = parse_duration(data.get("period") or 0, field="period")
    if period and not sudo:
        # A periodic token can be renewed forever: Vault reserves it to root and sudo.
        raise InvalidRequestError("root or sudo privileges required to create periodic token")
    return TokenGrant(
        policies=tuple(requested),
        orphan=orphan,
        period_seconds=period,
        meta=dict(meta) if meta else None,
    )
