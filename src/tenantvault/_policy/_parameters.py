"""Vault's parameter constraints: merge them across rules, check a request's data against them.

The semantics are OpenBao's `AllowOperation` (internal/vault/policy/acl.go), confirmed against
a real `bao server -dev`: parameters are the request's top-level keys (for KV v2 that is
`data` and `options`, never the keys inside the secret), names compare case-insensitively,
and a value list holds strings (globbed), booleans and numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

__all__ = ["Constraints", "ParameterValue", "Parameters", "RuleParameters"]

ParameterValue: TypeAlias = str | int | float | bool
# (lowercased name, its values) sorted by name; an empty value list means "any value".
Parameters: TypeAlias = tuple[tuple[str, tuple[ParameterValue, ...]], ...]
# One rule's (allowed, denied, required) parameters, as `PathRule` holds them.
RuleParameters: TypeAlias = tuple[Parameters | None, Parameters | None, tuple[str, ...]]

_ANY: Final = "*"


def _globbed(pattern: str, value: str) -> bool:
    # go-secure-stdlib's GlobbedStringsMatch: one '*' at either end or both; a pattern of one
    # character, "*" included, matches only itself (so "*" is no wildcard in a value list).
    if len(pattern) < 2:
        return value == pattern
    if pattern[0] == "*" and pattern[-1] == "*":
        return pattern[1:-1] in value
    if pattern[0] == "*":
        return value.endswith(pattern[1:])
    if pattern[-1] == "*":
        return value.startswith(pattern[:-1])
    return value == pattern


def _number(value: object) -> float | None:
    """A request value read as a number, the way handlers read it (5, 5.0 or "5")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _value_matches(
    value: object, values: tuple[ParameterValue, ...], *, numbers: bool = False
) -> bool:
    """True if a request value is in a policy value list; an empty list holds every value.

    As in Vault, a string matches a string pattern (globs at either end), a boolean matches
    the same boolean, and nothing else matches: Vault decodes request numbers as
    `json.Number`, which equals no number a policy can hold, and a list or object never
    equals a listed scalar. `numbers=True` (denied lists) also matches a listed number
    against a request number or numeric string of the same value: there Vault's rule would
    let a denied value through, and a denial must never fail open.
    """
    if not values:
        return True
    if numbers:
        requested = _number(value)
        if requested is not None and any(
            not isinstance(item, bool | str) and float(item) == requested for item in values
        ):
            return True
    if isinstance(value, str):
        return any(isinstance(item, str) and _globbed(item, value) for item in values)
    if isinstance(value, bool):
        # `is`, not `==`: in Python True == 1, and a listed 1 must not admit true.
        return any(item is value for item in values)
    return False


def _merged_values(
    mine: dict[str, tuple[ParameterValue, ...]], theirs: Parameters
) -> dict[str, tuple[ParameterValue, ...]]:
    merged = dict(mine)
    for name, values in theirs:
        previous = merged.get(name)
        if previous is None:
            merged[name] = values
        elif not values or not previous:
            # An empty list (any value) on either side stays any value, as in Vault.
            merged[name] = ()
        else:
            merged[name] = values + previous
    return merged


@dataclass(frozen=True, slots=True)
class Constraints:
    """The parameter constraints of one path pattern, merged over all rules that name it.

    Empty mappings mean no constraint: Vault treats `allowed_parameters = {}` as absent.
    """

    allowed: Mapping[str, tuple[ParameterValue, ...]]
    denied: Mapping[str, tuple[ParameterValue, ...]]
    required: tuple[str, ...]

    @classmethod
    def merge(cls, rules: Iterable[RuleParameters]) -> Constraints | None:
        """The constraints of several rules' parameters merged; None when there are none.

        Vault's merge (acl.go NewACL): allowed and denied values of the same name are
        appended, an empty list on either side wins, and required names are united.
        """
        allowed: dict[str, tuple[ParameterValue, ...]] = {}
        denied: dict[str, tuple[ParameterValue, ...]] = {}
        required: list[str] = []
        for rule_allowed, rule_denied, rule_required in rules:
            allowed = _merged_values(allowed, rule_allowed or ())
            denied = _merged_values(denied, rule_denied or ())
            required.extend(name for name in rule_required if name not in required)
        if not (allowed or denied or required):
            return None
        return cls(allowed, denied, tuple(required))

    def permits(self, data: Mapping[str, object] | None) -> bool:
        """True if a request with these top-level parameters meets the constraints."""
        data = data or {}
        # Vault looks each required name up lowercased and as is: a request key must be
        # spelled in lower case to count, unlike allowed and denied names.
        if any(name.lower() not in data for name in self.required):
            return False
        if not data:
            return True
        if self.denied:
            if _ANY in self.denied:
                return False
            for name, value in data.items():
                values = self.denied.get(name.lower())
                if values is not None and _value_matches(value, values, numbers=True):
                    return False
        if not self.allowed:
            return True
        any_allowed = _ANY in self.allowed
        if any_allowed and len(self.allowed) == 1:
            return True
        for name, value in data.items():
            values = self.allowed.get(name.lower())
            if values is None:
                if not any_allowed:
                    return False
            elif not _value_matches(value, values):
                return False
        return True
