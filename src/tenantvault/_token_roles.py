"""Token roles (`auth/token/roles/<name>`): stored per tenant, read by the Core's grant rules.

A role is a named set of constraints on the tokens `auth/token/create/<role>` mints: which
policies they may carry (`allowed_policies`, `disallowed_policies` and their globs), whether
they are orphans or periodic, their maximum lifetime, the CIDR blocks they work from. The
token engine stores and shows roles; only the Core (`_grants.role_grant`) applies them.

Roles live in the tenant's own system records (`token-role/<name>` under storage mount
`sys`), beside its policies, so deleting a tenant deletes its roles with its data. Fields
and texts are OpenBao's (checked against 2.7.2), apart from batch tokens, which are not
served here (a role may not ask for them).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

from tenantvault._durations import parse_duration
from tenantvault._exceptions import InvalidRequestError
from tenantvault._fields import get_bool
from tenantvault._paths import validate_name
from tenantvault._records import decode_record, encode_record
from tenantvault.backends._protocol import Backend
from tenantvault.engines.auth._cidr import parse_cidrs

__all__ = ["ROLE_PARAMETERS", "TenantTokenRoles", "TokenRole", "TokenRoleStore", "updated_role"]

_MOUNT: Final = "sys"
_PREFIX: Final = "token-role/"
# OpenBao's grammar for a role's path suffix (the token's `path` is create/<role>/<suffix>).
_SUFFIX: Final = re.compile(r"\w[\w.-]+\w\Z", re.ASCII)
_TOKEN_TYPES: Final = ("default-service", "service")
_BATCH_TYPES: Final = ("batch", "default-batch")
_POLICY_LISTS: Final = (
    "allowed_policies",
    "disallowed_policies",
    "allowed_policies_glob",
    "disallowed_policies_glob",
)
# The fields a role write reads (OpenBao's, with the deprecated `period`, `explicit_max_ttl`
# and `bound_cidrs` spellings of the `token_` fields).
ROLE_PARAMETERS: Final = frozenset(
    {
        *_POLICY_LISTS,
        "orphan",
        "renewable",
        "path_suffix",
        "allowed_entity_aliases",
        "token_period",
        "period",
        "token_explicit_max_ttl",
        "explicit_max_ttl",
        "token_bound_cidrs",
        "bound_cidrs",
        "token_no_default_policy",
        "token_type",
    }
)


@dataclass(frozen=True, slots=True)
class TokenRole:
    """One stored role: the constraints on the tokens made through it."""

    name: str
    allowed_policies: tuple[str, ...] = ()
    disallowed_policies: tuple[str, ...] = ()
    allowed_policies_glob: tuple[str, ...] = ()
    disallowed_policies_glob: tuple[str, ...] = ()
    orphan: bool = False
    renewable: bool = True
    path_suffix: str = ""
    allowed_entity_aliases: tuple[str, ...] | None = None
    period_seconds: int = 0
    explicit_max_ttl_seconds: int = 0
    bound_cidrs: tuple[str, ...] = ()
    no_default_policy: bool = False
    token_type: str = "default-service"  # noqa: S105 -- a token kind, not a credential
    # Which spelling set the legacy fields, so a read shows them as OpenBao does.
    legacy: frozenset[str] = field(default=frozenset())

    def describe(self) -> dict[str, Any]:
        """The role as `GET auth/token/roles/<name>` shows it."""
        data: dict[str, Any] = {
            "allowed_entity_aliases": (
                list(self.allowed_entity_aliases)
                if self.allowed_entity_aliases is not None
                else None
            ),
            **{name: list(getattr(self, name)) for name in _POLICY_LISTS},
            "explicit_max_ttl": (
                self.explicit_max_ttl_seconds if "explicit_max_ttl" in self.legacy else 0
            ),
            "name": self.name,
            "orphan": self.orphan,
            "path_suffix": self.path_suffix,
            "period": self.period_seconds if "period" in self.legacy else 0,
            "renewable": self.renewable,
            "token_explicit_max_ttl": self.explicit_max_ttl_seconds,
            "token_no_default_policy": self.no_default_policy,
            "token_period": self.period_seconds,
            "token_type": self.token_type,
        }
        if self.bound_cidrs:
            shown = [_shown_cidr(cidr) for cidr in self.bound_cidrs]
            data["token_bound_cidrs"] = shown
            if "bound_cidrs" in self.legacy:
                data["bound_cidrs"] = shown
        return data

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["legacy"] = sorted(self.legacy)
        return record

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenRole:
        aliases = data.get("allowed_entity_aliases")
        return cls(
            name=data["name"],
            **{name: tuple(data.get(name) or ()) for name in _POLICY_LISTS},
            orphan=bool(data.get("orphan", False)),
            renewable=bool(data.get("renewable", True)),
            path_suffix=data.get("path_suffix", ""),
            allowed_entity_aliases=tuple(aliases) if aliases is not None else None,
            period_seconds=int(data.get("period_seconds", 0)),
            explicit_max_ttl_seconds=int(data.get("explicit_max_ttl_seconds", 0)),
            bound_cidrs=tuple(data.get("bound_cidrs") or ()),
            no_default_policy=bool(data.get("no_default_policy", False)),
            token_type=data.get("token_type", "default-service"),
            legacy=frozenset(data.get("legacy") or ()),
        )


def _shown_cidr(cidr: str) -> str:
    # OpenBao shows a one-address block as the bare address ("127.0.0.1", not "/32").
    network = ipaddress.ip_network(cidr)
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return cidr


def _names(raw: Any, field_name: str) -> tuple[str, ...]:
    """A policy or alias list (a list or a comma-separated string), trimmed, deduplicated
    and sorted as OpenBao sanitizes it."""
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        items: list[Any] = raw.split(",")
    elif isinstance(raw, list):
        items = raw
    else:
        raise InvalidRequestError(f"invalid value for {field_name}: expected a list of strings")
    names: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise InvalidRequestError(f"invalid value for {field_name}: expected a list of strings")
        if item.strip():
            names.add(item.strip())
    return tuple(sorted(names))


def _first(data: Mapping[str, Any], new: str, old: str) -> tuple[Any, str | None]:
    """The value of field `new`, or of its deprecated spelling `old` (then also its name)."""
    if data.get(new) is not None:
        return data[new], None
    if data.get(old) is not None:
        return data[old], old
    return None, None


def updated_role(name: str, data: Mapping[str, Any], existing: TokenRole | None) -> TokenRole:
    """The role `name` after a write of `data` (fields absent keep their value), with
    OpenBao's checks and texts."""
    validate_name(name, kind="role name")
    role = existing or TokenRole(name=name)
    changes: dict[str, Any] = {}
    for list_name in _POLICY_LISTS:
        if list_name in data:
            values = _names(data[list_name], list_name)
            if not list_name.endswith("_glob"):
                for policy in values:
                    validate_name(policy, kind="policy name")
            changes[list_name] = values
    for flag in ("orphan", "renewable"):
        value = get_bool(data, flag)
        if value is not None:
            changes[flag] = value
    value = get_bool(data, "token_no_default_policy")
    if value is not None:
        changes["no_default_policy"] = value
    if "allowed_entity_aliases" in data:
        changes["allowed_entity_aliases"] = _names(
            data["allowed_entity_aliases"], "allowed_entity_aliases"
        )
    suffix = data.get("path_suffix")
    if suffix is not None:
        if not isinstance(suffix, str) or (suffix and not _SUFFIX.match(suffix)):
            raise InvalidRequestError(
                r"given role path suffix contains invalid characters; must match \w[\w-.]+\w"
            )
        changes["path_suffix"] = suffix
    legacy = set(role.legacy)
    for new, old, target in (
        ("token_period", "period", "period_seconds"),
        ("token_explicit_max_ttl", "explicit_max_ttl", "explicit_max_ttl_seconds"),
    ):
        raw, spelled = _first(data, new, old)
        if raw is not None:
            changes[target] = parse_duration(raw, field=new)
            legacy.discard(old)
            if spelled:
                legacy.add(spelled)
    raw, spelled = _first(data, "token_bound_cidrs", "bound_cidrs")
    if raw is not None:
        changes["bound_cidrs"] = tuple(parse_cidrs(raw, field="token_bound_cidrs"))
        legacy.discard("bound_cidrs")
        if spelled:
            legacy.add(spelled)
    token_type = data.get("token_type")
    if token_type is not None:
        if token_type in _BATCH_TYPES:
            # Every token here is a service token (stored, revocable, with an accessor).
            raise InvalidRequestError("batch tokens are not supported")
        if token_type not in _TOKEN_TYPES:
            shown = token_type if isinstance(token_type, str) else ""
            raise InvalidRequestError(f"invalid 'token_type' value \"{shown}\"")
        changes["token_type"] = token_type
    return replace(role, **changes, legacy=frozenset(legacy))


class TokenRoleStore:
    """Every tenant's token roles on one Backend."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def bound(self, storage_tenant: str) -> TenantTokenRoles:
        """The roles of one tenant (or of the root namespace's storage tenant)."""
        return TenantTokenRoles(self._backend, storage_tenant)


class TenantTokenRoles:
    """One tenant's token roles: no way to name another tenant's."""

    __slots__ = ("_backend", "_tenant")

    def __init__(self, backend: Backend, tenant: str) -> None:
        self._backend = backend
        self._tenant = tenant

    def __repr__(self) -> str:
        return f"TenantTokenRoles(tenant={self._tenant!r})"

    async def read(self, name: str) -> TokenRole | None:
        record = await self._backend.read(self._tenant, _MOUNT, _PREFIX + name)
        if record is None:
            return None
        return TokenRole.from_json(decode_record(record.value))

    async def write(self, role: TokenRole) -> None:
        await self._backend.write(
            self._tenant,
            _MOUNT,
            _PREFIX + role.name,
            encode_record(role.to_json()),
            expected_revision=None,
        )

    async def delete(self, name: str) -> None:
        await self._backend.delete(self._tenant, _MOUNT, _PREFIX + name)

    async def list(self) -> list[str]:
        return sorted(await self._backend.list(self._tenant, _MOUNT, _PREFIX))
