"""A jwt role (`role/<name>`): what a write accepts (OpenBao's rules and texts), how it is
stored and how it reads back, and the token a login through it earns.

As in OpenBao, a write updates the fields it names and keeps the others, except `role_type`
and `bound_claims_type`, which fall back to their defaults ("oidc", "string") when absent.
OIDC roles are not implemented: `role_type` must be "jwt". The three leeways are bounded by
`MAX_LEEWAY_SECONDS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tenantvault._durations import parse_duration
from tenantvault._exceptions import InvalidRequestError
from tenantvault._fields import get_bool, get_int, get_mapping, get_str
from tenantvault.engines.auth._cidr import parse_cidrs
from tenantvault.engines.auth._login import LoginResult, TokenType
from tenantvault.engines.auth.jwt._claims import MAX_LEEWAY_SECONDS, Leeways
from tenantvault.engines.auth.jwt._config import string_list

__all__ = ["ROLE_PARAMETERS", "JwtRole"]

_TOKEN_TYPES: Final[Mapping[str, TokenType]] = {
    "default": "default",
    "service": "service",
    "batch": "batch",
    "default-service": "service",
    "default-batch": "batch",
}
# Vault's names before tokenutil (`policies`, `ttl`, ...), still what its JWT guides write:
# accepted as aliases of the `token_*` fields, and read back beside them while set (as
# Vault's tokenutil.UpgradeValue does: naming the new field clears the old one).
_LEGACY: Final[Mapping[str, str]] = {
    "policies": "token_policies",
    "ttl": "token_ttl",
    "max_ttl": "token_max_ttl",
    "period": "token_period",
    "num_uses": "token_num_uses",
    "bound_cidrs": "token_bound_cidrs",
}
ROLE_PARAMETERS: Final = frozenset(
    {
        *_LEGACY,
        "name",  # hvac sends the name in the body too; the path is what counts
        "role_type",
        "bound_audiences",
        "bound_subject",
        "bound_claims",
        "bound_claims_type",
        "claim_mappings",
        "user_claim",
        "user_claim_json_pointer",
        "groups_claim",
        "clock_skew_leeway",
        "expiration_leeway",
        "not_before_leeway",
        "allowed_redirect_uris",
        "oidc_scopes",
        "verbose_oidc_logging",
        "max_age",
        "token_policies",
        "token_ttl",
        "token_max_ttl",
        "token_explicit_max_ttl",
        "token_period",
        "token_num_uses",
        "token_bound_cidrs",
        "token_type",
        "token_no_default_policy",
        "token_strictly_bind_ip",
        "token_policies_template_claims",
    }
)
# OpenBao's reserved metadata key: the role name is always recorded under it.
_RESERVED_METADATA: Final = frozenset({"role"})


def _signed_seconds(data: Mapping[str, Any], name: str) -> int | None:
    """Vault's TypeSignedDurationSecond: seconds or a duration string, possibly negative."""
    raw = data.get(name)
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().startswith("-"):
        return -parse_duration(raw.strip()[1:], field=name)
    return parse_duration(raw, field=name)


def _leeway(data: Mapping[str, Any], name: str, current: int) -> int:
    value = _signed_seconds(data, name)
    if value is None:
        return current
    if value > MAX_LEEWAY_SECONDS:
        raise InvalidRequestError(
            f"{name} may be at most {MAX_LEEWAY_SECONDS} seconds: tenantvault bounds the "
            "leeway a token's time claims get (-1 for none, 0 for the default)"
        )
    return max(value, -1)


def _duration(data: Mapping[str, Any], name: str, current: int) -> int:
    raw = data.get(name)
    return current if raw is None else parse_duration(raw, field=name)


def _string_map(data: Mapping[str, Any], name: str) -> dict[str, str] | None:
    """Vault's TypeKVPairs: an object of strings (numbers and bools as their text)."""
    mapping = get_mapping(data, name)
    if mapping is None:
        return None
    result: dict[str, str] = {}
    for key, value in mapping.items():
        if isinstance(value, bool):
            result[str(key)] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            result[str(key)] = str(value)
        else:
            raise InvalidRequestError(f"invalid value for {name}: expected an object of strings")
    return result


@dataclass(frozen=True, slots=True)
class JwtRole:
    """One stored role: the bindings a token must meet and the token it then earns."""

    user_claim: str
    role_type: str = "jwt"
    bound_audiences: tuple[str, ...] = ()
    bound_subject: str = ""
    bound_claims_type: str = "string"
    bound_claims: Mapping[str, Any] | None = None
    claim_mappings: Mapping[str, str] | None = None
    user_claim_json_pointer: bool = False
    groups_claim: str = ""
    clock_skew_leeway: int = 0
    expiration_leeway: int = 0
    not_before_leeway: int = 0
    # Stored and read back for clients that send them (hvac always does); unused by "jwt".
    allowed_redirect_uris: tuple[str, ...] | None = None
    oidc_scopes: tuple[str, ...] | None = None
    verbose_oidc_logging: bool = False
    max_age: int = 0
    token_policies: tuple[str, ...] = ()
    token_ttl: int = 0
    token_max_ttl: int = 0
    token_explicit_max_ttl: int = 0
    token_period: int = 0
    token_num_uses: int = 0
    token_bound_cidrs: tuple[str, ...] = ()
    token_type: str = "default"  # noqa: S105 -- a token kind, not a secret
    token_no_default_policy: bool = False
    token_strictly_bind_ip: bool = False
    # The legacy names (`_LEGACY`) this role was last written with, read back as aliases.
    legacy_fields: tuple[str, ...] = ()

    @property
    def leeways(self) -> Leeways:
        """The clock skew, expiration and not-before leeways as written."""
        return Leeways(self.clock_skew_leeway, self.expiration_leeway, self.not_before_leeway)

    @classmethod
    def from_request(cls, data: Mapping[str, Any], existing: JwtRole | None) -> JwtRole:
        """Validate a role write over `existing` (None: a new role)."""
        base = existing if existing is not None else cls(user_claim="")
        role_type = get_str(data, "role_type") or "oidc"
        if role_type not in ("jwt", "oidc"):
            raise InvalidRequestError(f"invalid 'role_type': {role_type}")
        changes: dict[str, Any] = {"role_type": role_type}
        token_data, legacy = _upgrade_legacy(data, base.legacy_fields)
        changes.update(_token_fields(token_data, base))
        changes["legacy_fields"] = legacy
        for name in ("clock_skew_leeway", "expiration_leeway", "not_before_leeway"):
            changes[name] = _leeway(data, name, getattr(base, name))
        audiences = string_list(data, "bound_audiences")
        if audiences is not None:
            changes["bound_audiences"] = tuple(audiences)
        for name in ("bound_subject", "user_claim", "groups_claim"):
            text = get_str(data, name)
            if text is not None:
                changes[name] = text
        for name in ("user_claim_json_pointer", "verbose_oidc_logging"):
            flag = get_bool(data, name)
            if flag is not None:
                changes[name] = flag
        if data.get("max_age") is not None:
            changes["max_age"] = parse_duration(data["max_age"], field="max_age")
        for name in ("allowed_redirect_uris", "oidc_scopes"):
            items = string_list(data, name)
            if items is not None:
                changes[name] = tuple(items)
        claims_type = get_str(data, "bound_claims_type") or "string"
        if claims_type not in ("string", "glob"):
            raise InvalidRequestError(f"invalid 'bound_claims_type': {claims_type}")
        changes["bound_claims_type"] = claims_type
        bound = get_mapping(data, "bound_claims")
        if bound is not None:
            if claims_type == "glob":
                _check_glob_claims(bound)
            changes["bound_claims"] = dict(bound)
        mappings = _string_map(data, "claim_mappings")
        if mappings is not None:
            _check_mappings(mappings)
            changes["claim_mappings"] = mappings
        role = dataclasses.replace(base, **changes)
        role._check()
        return role

    def _check(self) -> None:
        if not self.user_claim:
            raise InvalidRequestError("a user claim must be defined on the role")
        if self.role_type == "oidc":
            if not self.allowed_redirect_uris:
                raise InvalidRequestError(
                    "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified."
                )
            raise InvalidRequestError(
                'role_type "oidc" is not supported by tenantvault\'s jwt auth method: '
                'use role_type "jwt"'
            )
        if not (
            self.bound_audiences
            or self.token_bound_cidrs
            or self.bound_subject
            or self.bound_claims
        ):
            raise InvalidRequestError(
                "must have at least one bound constraint when creating/updating a role"
            )

    def login_result(self, *, display_name: str, metadata: Mapping[str, str]) -> LoginResult:
        """What a successful login through this role asks the Core to mint."""
        return LoginResult(
            policies=self.token_policies,
            display_name=display_name,
            metadata=metadata,
            no_default_policy=self.token_no_default_policy,
            ttl_seconds=self.token_ttl,
            max_ttl_seconds=self.token_max_ttl,
            explicit_max_ttl_seconds=self.token_explicit_max_ttl,
            period_seconds=self.token_period,
            num_uses=self.token_num_uses,
            bound_cidrs=self.token_bound_cidrs,
            token_type=_TOKEN_TYPES[self.token_type],
        )

    def to_record(self) -> dict[str, Any]:
        """The stored form (JSON)."""
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in record.items()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> JwtRole:
        """The inverse of `to_record` (unknown keys ignored: records of a newer version)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in record.items()
        }
        return cls(**{k: v for k, v in values.items() if k in names})

    def read(self) -> dict[str, Any]:
        """`GET role/<name>`'s data, with OpenBao's keys."""
        return {
            "allowed_redirect_uris": _list_or_none(self.allowed_redirect_uris),
            "bound_audiences": _list_or_none(self.bound_audiences or None),
            "bound_claims": dict(self.bound_claims) if self.bound_claims is not None else None,
            "bound_claims_type": self.bound_claims_type,
            "bound_subject": self.bound_subject,
            "callback_mode": "client",
            "claim_mappings": (
                dict(self.claim_mappings) if self.claim_mappings is not None else None
            ),
            "clock_skew_leeway": self.clock_skew_leeway,
            "expiration_leeway": self.expiration_leeway,
            "groups_claim": self.groups_claim,
            "max_age": self.max_age,
            "not_before_leeway": self.not_before_leeway,
            "oauth2_metadata": None,
            "oidc_disable_confirmation": False,
            "oidc_scopes": _list_or_none(self.oidc_scopes),
            "role_type": self.role_type,
            "token_bound_cidrs": list(self.token_bound_cidrs),
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_max_ttl": self.token_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
            "token_num_uses": self.token_num_uses,
            "token_period": self.token_period,
            "token_policies": list(self.token_policies),
            "token_policies_template_claims": False,
            "token_strictly_bind_ip": self.token_strictly_bind_ip,
            "token_ttl": self.token_ttl,
            "token_type": self.token_type,
            "user_claim": self.user_claim,
            "user_claim_json_pointer": self.user_claim_json_pointer,
            "verbose_oidc_logging": self.verbose_oidc_logging,
            **{old: _read_value(getattr(self, _LEGACY[old])) for old in self.legacy_fields},
        }


def _read_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _upgrade_legacy(
    data: Mapping[str, Any], current: tuple[str, ...]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The request with each legacy field moved to its `token_*` name (unless that is given
    too, which wins), and the legacy names the role carries afterwards."""
    merged = {k: v for k, v in data.items() if k not in _LEGACY}
    legacy = set(current)
    for old, new in _LEGACY.items():
        if data.get(new) is not None:
            legacy.discard(old)
        elif data.get(old) is not None:
            merged[new] = data[old]
            if data[old] in ("", 0, "0", [], None):
                legacy.discard(old)
            else:
                legacy.add(old)
    return merged, tuple(sorted(legacy))


def _list_or_none(items: tuple[str, ...] | None) -> list[str] | None:
    return list(items) if items is not None else None


def _token_fields(data: Mapping[str, Any], base: JwtRole) -> dict[str, Any]:
    """Vault's tokenutil fields (`token_*`), over the role's current values."""
    changes: dict[str, Any] = {}
    policies = string_list(data, "token_policies")
    if policies is not None:
        changes["token_policies"] = tuple(dict.fromkeys(p.lower() for p in policies))
    for name in ("token_ttl", "token_max_ttl", "token_explicit_max_ttl", "token_period"):
        changes[name] = _duration(data, name, getattr(base, name))
    num_uses = data.get("token_num_uses")
    if num_uses is not None:
        value = get_int(data, "token_num_uses", minimum=-(2**53))
        if value is not None and value < 0:
            raise InvalidRequestError("'token_num_uses' cannot be negative")
        changes["token_num_uses"] = value
    if data.get("token_bound_cidrs") is not None:
        changes["token_bound_cidrs"] = tuple(
            parse_cidrs(data["token_bound_cidrs"], field="token_bound_cidrs")
        )
    token_type = get_str(data, "token_type")
    if token_type is not None:
        if token_type not in _TOKEN_TYPES:
            raise InvalidRequestError(f"invalid 'token_type' value \"{token_type}\"")
        changes["token_type"] = token_type
    for name in ("token_no_default_policy", "token_strictly_bind_ip"):
        flag = get_bool(data, name)
        if flag is not None:
            changes[name] = flag
    if get_bool(data, "token_policies_template_claims"):
        raise InvalidRequestError(
            "token_policies_template_claims is not supported by tenantvault's jwt auth method"
        )
    ttl = changes["token_ttl"]
    max_ttl = changes["token_max_ttl"]
    if max_ttl and ttl > max_ttl:
        raise InvalidRequestError("'token_ttl' cannot be greater than 'token_max_ttl'")
    kind = changes.get("token_type", base.token_type)
    if changes["token_period"] and _TOKEN_TYPES[kind] == "batch":
        raise InvalidRequestError(
            "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens"
        )
    return changes


def _go_value(value: Any) -> str:
    """Go's %v of a JSON scalar from the role's own configuration (never a token's claim)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return "map[...]" if isinstance(value, Mapping) else "<nil>" if value is None else "[...]"


def _check_glob_claims(bound: Mapping[str, Any]) -> None:
    for values in bound.values():
        if not isinstance(values, list | str | bool | int | float):
            raise InvalidRequestError(f"claim is not a string or list: {_go_value(values)}")
        for item in values if isinstance(values, list) else [values]:
            if not isinstance(item, str):
                raise InvalidRequestError(f"claim is not a string: {_go_value(item)}")


def _check_mappings(mappings: Mapping[str, str]) -> None:
    targets: set[str] = set()
    for target in mappings.values():
        if target in _RESERVED_METADATA:
            raise InvalidRequestError(
                f'metadata key "{target}" is reserved and may not be a mapping destination'
            )
        if target in targets:
            raise InvalidRequestError(f'multiple keys are mapped to metadata key "{target}"')
        targets.add(target)
