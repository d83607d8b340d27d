"""Vault's password policy documents: parse, check and generate (`internal/helper/random`).

A policy is HCL (or JSON) with a `length` and `rule "charset" { charset, min-chars }`
blocks; a password is `length` characters drawn uniformly from the union of the charsets,
drawn again until every rule's `min-chars` holds (Vault's rejection sampling, so every
valid password is equally likely). The texts of the errors are OpenBao's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from tenantvault._exceptions import InvalidRequestError, TenantVaultError
from tenantvault._go_text import multierror
from tenantvault._policy._syntax import Item, Object, Value, parse_hcl, parse_json
from tenantvault._random_text import random_text

__all__ = ["CharsetRule", "PasswordPolicy", "PolicyGenerationError", "parse_policy"]

# OpenBao's bounds on a policy's `length` (`minPasswordLength`, `maxPasswordLength`).
MIN_LENGTH: Final = 4
MAX_LENGTH: Final = 100
# Go's `math.MaxUint8`: a longer charset cannot be drawn from one random byte.
_MAX_CHARSET: Final = 255
# Vault gives up after one second; a count of draws is the same bound without a clock.
_MAX_DRAWS: Final = 10_000


class PolicyGenerationError(TenantVaultError):
    """The policy could not produce a password (a charset too long, rules too tight)."""

    status = 500


@dataclass(frozen=True, slots=True)
class CharsetRule:
    """At least `min_chars` of the password's characters come from `charset`."""

    charset: str
    min_chars: int = 0

    def passes(self, candidate: str) -> bool:
        if self.min_chars <= 0:
            return True
        return sum(1 for char in candidate if char in self.charset) >= self.min_chars


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """A parsed, checked policy; `charset` is the union of its rules' charsets."""

    length: int
    rules: tuple[CharsetRule, ...]
    charset: str = field(init=False)

    def __post_init__(self) -> None:
        union = dict.fromkeys(char for rule in self.rules for char in rule.charset)
        object.__setattr__(self, "charset", "".join(sorted(union)))

    def problems(self) -> list[str]:
        """Vault's `validateConfig` findings, in its order."""
        found = []
        needed = sum(rule.min_chars for rule in self.rules)
        if self.length <= 0:
            found.append("length must be > 0")
        elif self.length < needed:
            found.append(
                f"specified rules require at least {needed} characters but "
                f"{self.length} is specified"
            )
        if not self.charset:
            found.append("no charset specified")
        elif not self.charset.isprintable():
            found.append("non-printable character in charset")
        return found

    def allows(self, candidate: str) -> bool:
        """Whether `candidate` is a password this policy could have generated."""
        return (
            len(candidate) == self.length
            and all(char in self.charset for char in candidate)
            and all(rule.passes(candidate) for rule in self.rules)
        )

    def generate(self) -> str:
        """A fresh password under this policy; `PolicyGenerationError` if none comes."""
        if len(self.charset) > _MAX_CHARSET:
            raise PolicyGenerationError(
                "unable to generate random characters: charset is too long: limited to "
                f"{_MAX_CHARSET} characters"
            )
        for _ in range(_MAX_DRAWS):
            candidate = random_text(self.charset, self.length)
            if all(rule.passes(candidate) for rule in self.rules):
                return candidate
        raise PolicyGenerationError("timed out generating string")


def _invalid(message: str) -> InvalidRequestError:
    return InvalidRequestError(f"invalid password policy: {message}")


def _integer(value: Value, field_name: str, context: str) -> int:
    # mapstructure decodes a float into an int field (truncating) but not a string or bool.
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "string" if isinstance(value, str) else type(value).__name__
        raise _invalid(
            f"{context}: decoding failed due to the following error(s):\n\n"
            f"'{field_name}' expected type 'int', got unconvertible type '{kind}'"
        )
    return int(value)


def _charset_rule(body: Object) -> CharsetRule:
    charset, min_chars = "", 0
    context = (
        "unable to parse rules: unable to parse rule charset: failed to parse charset restriction"
    )
    for item in body.items:
        key = item.keys[0]
        if key == "charset":
            if not isinstance(item.value, str):
                raise _invalid(f"{context}: 'charset' expected a string")
            charset = item.value
        elif key == "min-chars":
            min_chars = _integer(item.value, "min-chars", context)
    return CharsetRule(charset, min_chars)


def _rule_bodies(item: Item) -> list[tuple[str, Object]]:
    """The (rule type, body) pairs of one `rule` item: `rule "charset" { ... }` in HCL,
    `"rule": [{"charset": [{...}]}]` or `"rule": {"charset": {...}}` in JSON."""
    if len(item.keys) > 1:
        if not isinstance(item.value, Object):
            raise _invalid("unable to parse rules: unable to get rule info: rule is empty")
        return [(item.keys[1], item.value)]
    value = item.value
    entries = value if isinstance(value, list) else [value]
    found: list[tuple[str, Object]] = []
    for entry in entries:
        if not isinstance(entry, Object):
            kind = "int" if isinstance(entry, int) else type(entry).__name__
            raise _invalid(
                f"unable to retrieve rules: '' source data must be an array or slice, got {kind}"
            )
        if not entry.items:
            raise _invalid("unable to parse rules: unable to get rule info: rule is empty")
        inner = entry.items[0]
        body = inner.value[0] if isinstance(inner.value, list) and inner.value else inner.value
        if not isinstance(body, Object):
            raise _invalid(
                "unable to parse rules: unable to get rule info: rule info cannot be empty"
            )
        found.append((inner.keys[0], body))
    return found


def parse_policy(text: str) -> PasswordPolicy:
    """The policy in `text` (HCL or JSON); `InvalidRequestError` with OpenBao's text if it
    does not parse or cannot produce a password."""
    try:
        document = parse_json(text) if text.lstrip().startswith("{") else parse_hcl(text)
    except InvalidRequestError as error:
        raise _invalid(
            f"unable to decode: {error.message.removeprefix('invalid policy: ')}"
        ) from None
    length = 0
    rules: list[CharsetRule] = []
    for item in document.items:
        key = item.keys[0]
        if key == "length":
            length = _integer(item.value, "length", "failed to decode configuration")
        elif key == "rule":
            for rule_type, body in _rule_bodies(item):
                if rule_type != "charset":
                    raise _invalid(
                        f"unable to parse rules: unable to parse rule {rule_type}: "
                        f"unrecognized rule type {rule_type}"
                    )
                rules.append(_charset_rule(body))
    policy = PasswordPolicy(length, tuple(rules))
    problems = policy.problems()
    if problems:
        raise _invalid(multierror(problems))
    return policy


def check_stored(policy: PasswordPolicy) -> None:
    """The extra checks of `sys/policies/password/<name>` writes (OpenBao's handler)."""
    if not MIN_LENGTH <= policy.length <= MAX_LENGTH:
        raise InvalidRequestError(
            f"passwords must be between {MIN_LENGTH} and {MAX_LENGTH} characters"
        )
