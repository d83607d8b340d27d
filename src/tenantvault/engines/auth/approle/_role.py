"""An AppRole role: its fields, Vault's parsing and validation rules, and its read shape."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Final

from tenantvault._durations import parse_duration
from tenantvault._exceptions import InvalidRequestError
from tenantvault._fields import get_bool, get_int
from tenantvault._go_text import multierror
from tenantvault.engines._protocol import Mount
from tenantvault.engines.auth._cidr import parse_cidrs
from tenantvault.engines.auth._errors import PlainError

__all__ = [
    "BATCH",
    "ROLE_PARAMETERS",
    "Role",
    "mount_max_ttl",
    "parse_list",
    "role_from_request",
    "secret_id_cidrs",
    "token_cidrs",
]

# Vault's system maximum lease TTL (768h), what a mount's 0 means.
_SYSTEM_MAX_TTL: Final = 768 * 3600

# Every field a role takes, with the deprecated aliases Vault still reads.
ROLE_PARAMETERS: Final = frozenset(
    {
        "role_id",
        "bind_secret_id",
        "secret_id_bound_cidrs",
        "bound_cidr_list",
        "secret_id_num_uses",
        "secret_id_ttl",
        "local_secret_ids",
        "token_policies",
        "policies",
        "token_ttl",
        "token_max_ttl",
        "token_explicit_max_ttl",
        "token_period",
        "period",
        "token_num_uses",
        "token_type",
        "token_bound_cidrs",
        "token_no_default_policy",
        "token_strictly_bind_ip",
    }
)
_TOKEN_TYPES: Final = {"default": "default", "service": "service", "batch": "batch"}
BATCH: Final = "batch"
_ADJUSTED: Final = {"default-service": "service", "default-batch": "batch"}


def _multierror(message: str) -> str:
    return multierror([message])


def mount_max_ttl(mount: Mount) -> int:
    """The mount's max lease TTL in seconds (the system's when the mount has none)."""
    return int(mount.config.get("max_lease_ttl") or 0) or _SYSTEM_MAX_TTL


def parse_list(raw: Any, *, field_name: str) -> list[str]:
    """A string list field (Vault's comma-separated string or JSON array)."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return [item.strip() for item in raw if item.strip()]
    raise InvalidRequestError(f"invalid value for {field_name}: expected a list of strings")


def token_cidrs(raw: Any) -> list[str]:
    """`token_bound_cidrs`: addresses or blocks (Vault's ParseAddrs), with its error text."""
    items = parse_list(raw, field_name="token_bound_cidrs")
    for item in items:
        try:
            parse_cidrs(item, field="token_bound_cidrs")
        except InvalidRequestError:
            raise InvalidRequestError(
                f'error parsing address "{item}": Unable to convert "{item}" to an IPv4 or '
                "IPv6 address, or a UNIX Socket"
            ) from None
    return items  # as given (Vault shows them so); validated above


def secret_id_cidrs(raw: Any) -> list[str]:
    """`secret_id_bound_cidrs`/`cidr_list`: CIDR blocks with a prefix length (Vault: a
    plain error, 500)."""
    items = parse_list(raw, field_name="secret_id_bound_cidrs")
    for item in items:
        try:
            if "/" not in item:
                raise InvalidRequestError(item)
            parse_cidrs(item, field="secret_id_bound_cidrs")
        except InvalidRequestError:
            raise PlainError(
                _multierror(f"failed to validate CIDR blocks: invalid CIDR address: {item}")
            ) from None
    return items  # as given (Vault shows them so); validated above


def _seconds(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if value in (None, ""):
        return 0
    return parse_duration(value, field=name)


@dataclass(frozen=True, slots=True)
class Role:
    """A role as stored (the name is the record key, lower-cased)."""

    name: str
    role_id: str = field(repr=False)  # a login credential's half: never in a repr
    bind_secret_id: bool = True
    secret_id_bound_cidrs: list[str] = field(default_factory=list)
    secret_id_num_uses: int = 0
    secret_id_ttl: int = 0
    local_secret_ids: bool = False
    token_policies: list[str] = field(default_factory=list)
    token_ttl: int = 0
    token_max_ttl: int = 0
    token_explicit_max_ttl: int = 0
    token_period: int = 0
    token_num_uses: int = 0
    token_type: str = "default"  # noqa: S105 -- a token type, not a credential
    token_bound_cidrs: list[str] = field(default_factory=list)
    token_no_default_policy: bool = False
    token_strictly_bind_ip: bool = False
    # Whether the deprecated `policies` / `period` were used: read shows them then, as Vault.
    legacy_policies: bool = False
    legacy_period: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Role:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in raw.items() if key in known})

    def read_data(self) -> dict[str, Any]:
        """`GET role/<name>`: Vault's `data` (integer seconds, null CIDR list when empty)."""
        data: dict[str, Any] = {
            "bind_secret_id": self.bind_secret_id,
            "local_secret_ids": self.local_secret_ids,
            "secret_id_bound_cidrs": self.secret_id_bound_cidrs or None,
            "secret_id_num_uses": self.secret_id_num_uses,
            "secret_id_ttl": self.secret_id_ttl,
            "token_bound_cidrs": list(self.token_bound_cidrs),
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_max_ttl": self.token_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
            "token_num_uses": self.token_num_uses,
            "token_period": self.token_period,
            "token_policies": list(self.token_policies),
            "token_strictly_bind_ip": self.token_strictly_bind_ip,
            "token_ttl": self.token_ttl,
            "token_type": self.token_type,
        }
        if self.legacy_policies:
            data["policies"] = list(self.token_policies)
        if self.legacy_period:
            data["period"] = self.token_period
        return data


def role_from_request(
    name: str,
    data: Mapping[str, Any],
    existing: Role | None,
    *,
    mount_max_ttl: int,
) -> tuple[Role, list[str]]:
    """The role after a create (`existing` None) or update with `data`, and its warnings.

    Vault's rules and texts (path_role.go, tokenutil): only fields present change on update;
    the checks run on the result.
    """
    role = existing or Role(name=name, role_id=str(uuid.uuid4()))
    changes: dict[str, Any] = {}
    warnings: list[str] = []
    if "role_id" in data:
        role_id = data.get("role_id")
        if not isinstance(role_id, str) or not role_id.strip():
            raise InvalidRequestError("missing role_id")
        changes["role_id"] = role_id.strip()
    if "bind_secret_id" in data:
        changes["bind_secret_id"] = bool(get_bool(data, "bind_secret_id"))
    if "secret_id_bound_cidrs" in data or "bound_cidr_list" in data:
        raw = data.get("secret_id_bound_cidrs", data.get("bound_cidr_list"))
        changes["secret_id_bound_cidrs"] = secret_id_cidrs(raw)
    if "secret_id_num_uses" in data:
        uses = get_int(data, "secret_id_num_uses", minimum=-(2**53))
        if uses is not None and uses < 0:
            raise InvalidRequestError("secret_id_num_uses cannot be negative")
        changes["secret_id_num_uses"] = uses or 0
    if "secret_id_ttl" in data:
        changes["secret_id_ttl"] = _seconds(data, "secret_id_ttl")
    if "local_secret_ids" in data:
        local = bool(get_bool(data, "local_secret_ids"))
        if existing is not None and local != existing.local_secret_ids:
            raise InvalidRequestError("local_secret_ids can only be modified during role creation")
        changes["local_secret_ids"] = local
    if "token_policies" in data or "policies" in data:
        legacy = "token_policies" not in data
        raw = data.get("token_policies") if not legacy else data.get("policies")
        changes["token_policies"] = sorted(
            {p.lower() for p in parse_list(raw, field_name="token_policies")}
        )
        changes["legacy_policies"] = legacy
    for name_ in ("token_ttl", "token_max_ttl", "token_explicit_max_ttl"):
        if name_ in data:
            changes[name_] = _seconds(data, name_)
    if "token_period" in data or "period" in data:
        legacy = "token_period" not in data
        changes["token_period"] = _seconds(data, "period" if legacy else "token_period")
        changes["legacy_period"] = legacy
    if "token_num_uses" in data:
        changes["token_num_uses"] = get_int(data, "token_num_uses") or 0
    if "token_type" in data:
        raw_type = data.get("token_type")
        if isinstance(raw_type, str) and raw_type in _ADJUSTED:
            adjusted = _ADJUSTED[raw_type]
            warnings.append(f"{raw_type} has no useful meaning; adjusting to {adjusted}")
            changes["token_type"] = adjusted
        elif isinstance(raw_type, str) and raw_type in _TOKEN_TYPES:
            changes["token_type"] = raw_type
        else:
            raise InvalidRequestError(f"invalid 'token_type' value \"{raw_type}\"")
    if "token_bound_cidrs" in data:
        changes["token_bound_cidrs"] = token_cidrs(data.get("token_bound_cidrs"))
    if "token_no_default_policy" in data:
        changes["token_no_default_policy"] = bool(get_bool(data, "token_no_default_policy"))
    if "token_strictly_bind_ip" in data:
        changes["token_strictly_bind_ip"] = bool(get_bool(data, "token_strictly_bind_ip"))
    role = replace(role, **changes)
    _check(role, warnings, mount_max_ttl=mount_max_ttl)
    return role, warnings


def _check(role: Role, warnings: list[str], *, mount_max_ttl: int) -> None:
    """Vault's cross-field checks, in its order."""
    if role.token_strictly_bind_ip and role.token_bound_cidrs:
        raise InvalidRequestError(
            "'token_strictly_bind_ip' conflicts with 'token_bound_cidrs'; set only one"
        )
    if role.token_max_ttl and role.token_ttl > role.token_max_ttl:
        raise InvalidRequestError("'token_ttl' cannot be greater than 'token_max_ttl'")
    if role.token_type == BATCH and role.token_num_uses:
        raise InvalidRequestError(
            "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens "
            "with limited use count"
        )
    if role.token_max_ttl > mount_max_ttl:
        warnings.append(
            "token_max_ttl is greater than the backend mount's maximum TTL value; issued "
            "tokens' max TTL value will be truncated"
        )
    if not (role.bind_secret_id or role.secret_id_bound_cidrs or role.token_bound_cidrs):
        # A plain error in Vault (HTTP 500), wrapped by go-multierror.
        raise PlainError(_multierror("at least one constraint should be enabled on the role"))
