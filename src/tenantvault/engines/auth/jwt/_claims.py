"""The claim checks of a jwt login, after the signature: OpenBao's order, rules and texts.

Registered claims first (iss, sub, aud, then nbf/exp/iat with the role's clock skew), then
the identity the token names (user claim, claim mappings, groups), then `bound_claims`. Every
refusal is an `InvalidRequestError` (400) with the text OpenBao gives, which names a claim but
never repeats a claim's value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tenantvault._exceptions import InvalidRequestError

__all__ = [
    "DEFAULT_CLOCK_SKEW_SECONDS",
    "DEFAULT_LEEWAY_SECONDS",
    "MAX_LEEWAY_SECONDS",
    "Identity",
    "Leeways",
    "check_bound_claims",
    "check_registered",
    "check_times",
    "check_unbound_audience",
    "claim_at",
    "identity",
    "matches_glob",
]

# OpenBao's defaults: a leeway of 0 means "the default", -1 means none at all.
DEFAULT_LEEWAY_SECONDS: Final = 150  # to synthesize a missing exp or nbf
DEFAULT_CLOCK_SKEW_SECONDS: Final = 60  # tolerance of every time check
# tenantvault's bound on every leeway (refused above it when a role is written, and clamped
# again here): a leeway of hours would quietly turn an expired token back into a credential.
MAX_LEEWAY_SECONDS: Final = 300

_VALIDATING: Final = "error validating token: "


def _refuse(text: str) -> InvalidRequestError:
    return InvalidRequestError(_VALIDATING + text)


@dataclass(frozen=True, slots=True)
class Leeways:
    """A role's three leeways as written (0 = default, -1 = none)."""

    clock_skew: int = 0
    expiration: int = 0
    not_before: int = 0


def _effective(value: int, default: int) -> int:
    if value < 0:
        return 0
    return min(value or default, MAX_LEEWAY_SECONDS)


def check_registered(
    claims: Mapping[str, Any],
    *,
    bound_issuer: str,
    bound_subject: str,
    bound_audiences: Sequence[str],
) -> None:
    """iss, sub and aud against the mount's issuer and the role's subject and audiences."""
    if bound_issuer and claims.get("iss") != bound_issuer:
        raise _refuse("invalid issuer (iss) claim")
    if bound_subject and claims.get("sub") != bound_subject:
        raise _refuse("invalid subject (sub) claim")
    audiences = _audiences(claims)
    if bound_audiences and not any(aud in audiences for aud in bound_audiences):
        raise _refuse(
            "invalid audience (aud) claim: audience claim does not match any expected audience"
        )


def check_unbound_audience(claims: Mapping[str, Any], *, bound_audiences: Sequence[str]) -> None:
    """A token meant for some audience must not log in through a role that binds none."""
    if not bound_audiences and _audiences(claims):
        raise InvalidRequestError("audience claim found in JWT but no audiences bound to the role")


def _audiences(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if aud is None:
        return []
    if isinstance(aud, str):
        return [aud] if aud else []
    if isinstance(aud, list) and all(isinstance(item, str) for item in aud):
        return [item for item in aud if item]
    raise _refuse("invalid audience (aud) claim: expected a string or a list of strings")


def _numeric_date(claims: Mapping[str, Any], name: str, label: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse(f"invalid {label} claim: expected a number")
    return float(value)


def check_times(claims: Mapping[str, Any], *, now: float, leeways: Leeways) -> None:
    """nbf, exp and iat, each with the clock skew; a missing exp or nbf is derived as
    OpenBao derives it (from iat/nbf plus, or exp minus, the expiration/not-before leeway)."""
    iat = _numeric_date(claims, "iat", "issued at (iat)")
    nbf = _numeric_date(claims, "nbf", "not before (nbf)")
    exp = _numeric_date(claims, "exp", "expiration time (exp)")
    if iat is None and nbf is None and exp is None:
        raise _refuse(
            "no issued at (iat), not before (nbf), or expiration time (exp) claims in token"
        )
    if exp is None:
        start = max(value for value in (iat, nbf) if value is not None)
        exp = start + _effective(leeways.expiration, DEFAULT_LEEWAY_SECONDS)
    if nbf is None:
        nbf = (
            iat if iat is not None else exp - _effective(leeways.not_before, DEFAULT_LEEWAY_SECONDS)
        )
    skew = _effective(leeways.clock_skew, DEFAULT_CLOCK_SKEW_SECONDS)
    if now + skew < nbf:
        raise _refuse("invalid not before (nbf) claim: token not yet valid")
    if now - skew > exp:
        raise _refuse("invalid expiration time (exp) claim: token is expired")
    if iat is not None and now + skew < iat:
        raise _refuse("invalid issued at (iat) claim: token issued in the future")


_MISSING: Final = object()


def claim_at(claims: Mapping[str, Any], name: str, *, pointer: bool = True) -> Any:
    """A claim by name, or by JSON pointer (RFC 6901) when `name` starts with '/'; else None."""
    if not (pointer and name.startswith("/")):
        return claims.get(name)
    value: Any = claims
    for raw in name[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, Mapping):
            value = value.get(token, _MISSING)
        elif isinstance(value, list) and token.isascii() and token.isdigit():
            index = int(token)
            value = value[index] if index < len(value) else _MISSING
        else:
            value = _MISSING
        if value is _MISSING:
            return None
    return value


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the token says logs in: the alias name, token metadata and group names."""

    name: str
    metadata: Mapping[str, str]
    groups: tuple[str, ...]


def identity(
    claims: Mapping[str, Any],
    *,
    role_name: str,
    user_claim: str,
    user_claim_json_pointer: bool,
    claim_mappings: Mapping[str, str],
    groups_claim: str,
) -> Identity:
    """The user claim, the claim mappings (plus `role`) and the groups claim, checked."""
    name = claim_at(claims, user_claim, pointer=user_claim_json_pointer)
    if name is None:
        raise InvalidRequestError(f"claim {_quote(user_claim)} not found in token")
    if not isinstance(name, str):
        raise InvalidRequestError(f"claim {_quote(user_claim)} could not be converted to string")
    metadata: dict[str, str] = {}
    for source, target in claim_mappings.items():
        value = claim_at(claims, source)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRequestError(f"error converting claim '{source}' to string")
        metadata[target] = value
    metadata["role"] = role_name
    return Identity(name, metadata, _groups(claims, groups_claim))


def _groups(claims: Mapping[str, Any], groups_claim: str) -> tuple[str, ...]:
    if not groups_claim:
        return ()
    raw = claim_at(claims, groups_claim)
    if raw is None:
        raise InvalidRequestError(
            f"failed to fetch groups: {_quote(groups_claim)} claim not found in token"
        )
    values = _as_list(raw)
    if values is None:
        raise InvalidRequestError(
            f"{_quote(groups_claim)} claim could not be converted to string list"
        )
    groups: list[str] = []
    for value in values:
        if not isinstance(value, str):
            # OpenBao prints the value here; a group entry that is not a string is not
            # a secret, but printing only its JSON type keeps claims out of errors entirely.
            raise InvalidRequestError(
                f"value of type {_json_type(value)} in groups claim could not be parsed as string"
            )
        if value:
            groups.append(value)
    return tuple(groups)


def _as_list(raw: Any) -> list[Any] | None:
    """OpenBao's normalizeList: a list as is, a string/bool/number as a list of one."""
    if isinstance(raw, list):
        return raw
    if isinstance(raw, str | bool | int | float):
        return [raw]
    return None


def _comparable(value: Any) -> tuple[str, Any] | None:
    """A scalar tagged with its kind, numbers as their integer (OpenBao's json.Number)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, int | float) and math.isfinite(value):
        return ("number", int(value))
    return None


def check_bound_claims(
    claims: Mapping[str, Any], bound_claims: Mapping[str, Any], *, glob: bool
) -> None:
    """Every bound claim present and matching one of its values (exact, or `*` globs)."""
    for name, expected in bound_claims.items():
        actual = claim_at(claims, name)
        if actual is None:
            raise _refuse_claims(f"claim {_quote(name)} is missing")
        actual_values = _as_list(actual)
        if actual_values is None:
            raise _refuse_claims("received claim is not a string, bool, int or list")
        expected_values = _as_list(expected)
        if expected_values is None:
            raise _refuse_claims("bound claim is not a string, bool, int or list")
        if not _match_found(expected_values, actual_values, glob=glob):
            raise _refuse_claims(
                f"claim {_quote(name)} does not match any associated bound claim values"
            )


def _refuse_claims(text: str) -> InvalidRequestError:
    return InvalidRequestError("error validating claims: " + text)


def _match_found(expected: list[Any], actual: list[Any], *, glob: bool) -> bool:
    for want in expected:
        for have in actual:
            if glob:
                if not isinstance(want, str):
                    raise _refuse_claims("received claim is not a glob string")
                if isinstance(have, str) and matches_glob(want, have):
                    return True
            else:
                key = _comparable(want)
                if key is not None and key == _comparable(have):
                    return True
    return False


def matches_glob(pattern: str, value: str) -> bool:
    """go-glob's match, as OpenBao uses it: `*` stands for any run of characters, nothing else
    is special."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == value
    first, *middle, last = parts
    if not value.startswith(first):
        return False
    position = len(first)
    for part in middle:
        found = value.find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return len(value) - position >= len(last) and value.endswith(last)


def _quote(text: str) -> str:
    """Go's %q of a claim name: a double-quoted string with escapes."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in escaped) + '"'


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string"
