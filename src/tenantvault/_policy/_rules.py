"""Policy documents to rules: capabilities, path patterns, parameter lists and wrapping TTLs."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from tenantvault._durations import parse_timedelta
from tenantvault._paths import validate_name
from tenantvault._policy._parameters import Parameters, ParameterValue
from tenantvault._policy._syntax import (
    Object,
    Value,
    fail,
    parse_hcl,
    parse_json,
    shown,
)

__all__ = [
    "CAPABILITIES",
    "MAX_POLICY_BYTES",
    "Capability",
    "PathRule",
    "Policy",
    "has_segment_wildcards",
]

MAX_POLICY_BYTES: Final = 64 * 1024


class Capability(enum.StrEnum):
    """The capabilities a path rule can list; `deny` overrides every other one."""

    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    LIST = "list"
    SUDO = "sudo"
    DENY = "deny"


CAPABILITIES: Final[frozenset[str]] = frozenset(c.value for c in Capability)

# Vault's original `policy = "..."` shorthand, still accepted by Vault and mapped like this
# (vault/policy.go); it predates `patch`, so none of them grants it.
_LEGACY: Final[dict[str, frozenset[str]]] = {
    "deny": frozenset({"deny"}),
    "read": frozenset({"read", "list"}),
    "write": frozenset({"create", "read", "update", "delete", "list"}),
    "sudo": frozenset({"create", "read", "update", "delete", "list", "sudo"}),
}
# Keys Vault (or Vault Enterprise, or OpenBao) knows in a path block whose effect we cannot
# provide. Refusing them beats storing them: an ignored `expiration` or `control_group` would
# grant more than its author wrote.
_UNSUPPORTED_KEYS: Final = frozenset(
    {
        "control_group",
        "expiration",
        "list_scan_response_keys_filter_path",
        "mfa_methods",
        "pagination_limit",
        "subscribe_event_types",
    }
)


# -- path patterns -----------------------------------------------------------------------

# Controls and lone surrogates: no request path contains them, and they corrupt logs.
_BAD_PATTERN_CHARS: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _check_pattern(pattern: object) -> None:
    if not isinstance(pattern, str):
        fail("a path pattern must be a string")
    where = f"path {shown(pattern)}"
    if _BAD_PATTERN_CHARS.search(pattern):
        fail("a path pattern contains a control character")
    if pattern.startswith("/"):
        # Vault strips one leading '/'; a second could never match a request path.
        fail(f"{where}: a pattern may start with at most one '/'")
    if "{{" in pattern:
        # Identity templating is not implemented; matching the template literally would
        # silently drop a templated `deny`.
        fail(f"{where}: templated policy paths are not supported")
    if "+*" in pattern:
        fail(f"{where}: invalid use of wildcards ('+*' is forbidden)")
    body = pattern.removesuffix("*")
    if "*" in body:
        # Vault would match such a '*' literally, which is never what its author meant.
        fail(f"{where}: '*' is only allowed as the last character")
    if any("+" in segment and segment != "+" for segment in body.split("/")):
        # Vault reads '+' as a wildcard only as a whole segment; elsewhere it would be a
        # literal that no valid request path contains.
        fail(f"{where}: '+' must stand alone as a whole path segment")


def has_segment_wildcards(pattern: str) -> bool:
    # Vault's own test (vault/policy.go), so the same patterns take the segment-aware path.
    return pattern == "+" or "/+" in pattern or pattern.startswith("+/")


@dataclass(frozen=True, slots=True)
class PathRule:
    """One `path` block: a pattern and the capabilities it grants (only `deny` if it denies).

    `pattern` is stored without Vault's optional leading '/'. A trailing `*` makes it a prefix
    glob; a `+` segment matches exactly one path segment.

    `ACL` enforces the parameter constraints (see `_parameters`); allowed and denied names
    are lowercased, as Vault compares them case-insensitively. A rule with a wrapping TTL
    admits only response-wrapped requests; none is wrapped yet, so `ACL` refuses them all.
    """

    pattern: str
    capabilities: frozenset[str]
    allowed_parameters: Parameters | None = None
    denied_parameters: Parameters | None = None
    required_parameters: tuple[str, ...] = ()
    min_wrapping_ttl: timedelta | None = None
    max_wrapping_ttl: timedelta | None = None

    def __post_init__(self) -> None:
        _check_pattern(self.pattern)
        if not isinstance(self.capabilities, frozenset):
            fail(f"path {shown(self.pattern)}: capabilities must be a frozenset")
        for capability in self.capabilities:
            if capability not in CAPABILITIES:
                fail(f"path {shown(self.pattern)}: unknown capability {shown(capability)}")

    @property
    def is_glob(self) -> bool:
        """True when the pattern ends in `*` and so matches by prefix."""
        return self.pattern.endswith("*")

    @property
    def has_segment_wildcards(self) -> bool:
        """True when the pattern has a `+` segment."""
        return has_segment_wildcards(self.pattern)


# -- from syntax tree to rules -----------------------------------------------------------


def _at(line: int) -> str:
    return f" (line {line})" if line else ""


def _string_list(value: Value, where: str, key: str) -> list[str]:
    if not isinstance(value, list):
        fail(f"{where}: {key} must be a list of strings")
    strings: list[str] = []
    for element in value:
        if not isinstance(element, str):
            fail(f"{where}: {key} must be a list of strings")
        strings.append(element)
    return strings


def _parameters(value: Value, where: str, key: str) -> Parameters:
    if not isinstance(value, Object):
        fail(f"{where}: {key} must be an object")
    parameters: dict[str, tuple[ParameterValue, ...]] = {}
    for item in value.items:
        if len(item.keys) != 1 or not isinstance(item.value, list):
            fail(f"{where}: each {key} entry must be a list of values")
        name = item.keys[0].lower()
        if name in parameters:
            fail(f"{where}: {key} names parameter {shown(name)} twice")
        values: list[ParameterValue] = []
        for element in item.value:
            # A positive test, so JSON's null is refused too (as OpenBao refuses it).
            if not isinstance(element, str | int | float | bool):
                fail(f"{where}: {key} values must be strings, numbers or booleans")
            values.append(element)
        parameters[name] = tuple(values)
    return tuple(sorted(parameters.items()))


def _ttl(value: Value, where: str, key: str) -> timedelta:
    try:
        ttl = parse_timedelta(value)
    except OverflowError:
        fail(f"{where}: {key} is out of range")
    if ttl is None:
        fail(f'{where}: {key} must be a duration such as 300, "300s" or "1h"')
    return ttl


def _rule(label: str, body: Object, line: int) -> PathRule:
    where = f"path {shown(label)}{_at(line)}"
    seen: set[str] = set()
    capabilities: set[str] = set()
    legacy: str | None = None
    allowed: Parameters | None = None
    denied: Parameters | None = None
    required: tuple[str, ...] = ()
    min_ttl: timedelta | None = None
    max_ttl: timedelta | None = None
    for item in body.items:
        key = item.keys[0]
        if len(item.keys) != 1:
            fail(f"{where}: unexpected block inside a path block")
        if key in seen:
            fail(f"{where}: {shown(key)} is given twice")
        seen.add(key)
        value = item.value
        if key == "capabilities":
            for capability in _string_list(value, where, key):
                if capability not in CAPABILITIES:
                    named = shown(capability) if len(capability) <= 16 else "(not shown)"
                    fail(f"{where}: unknown capability {named}")
                capabilities.add(capability)
        elif key == "policy":
            if not isinstance(value, str) or value not in _LEGACY:
                fail(f'{where}: policy must be one of "deny", "read", "write", "sudo"')
            legacy = value
        elif key in ("allowed_parameters", "denied_parameters"):
            parsed = _parameters(value, where, key)
            if key == "allowed_parameters":
                allowed = parsed
            else:
                denied = parsed
        elif key == "required_parameters":
            required = tuple(_string_list(value, where, key))
        elif key == "min_wrapping_ttl":
            min_ttl = _ttl(value, where, key)
        elif key == "max_wrapping_ttl":
            max_ttl = _ttl(value, where, key)
        elif key == "comment":
            # Vault documents `comment` as an ignored, free-text field.
            if not isinstance(value, str):
                fail(f"{where}: comment must be a string")
        elif key in _UNSUPPORTED_KEYS:
            fail(f"{where}: {key} is not supported")
        else:
            fail(f"{where}: unknown key {shown(key)}")
    if legacy is not None:
        capabilities |= _LEGACY[legacy]
    if Capability.DENY in capabilities:
        capabilities = {Capability.DENY.value}
    if min_ttl and max_ttl and max_ttl < min_ttl:
        fail(f"{where}: max_wrapping_ttl cannot be less than min_wrapping_ttl")
    return PathRule(
        # Vault strips one leading '/', as request paths start after the API's '/v1/'.
        pattern=label.removeprefix("/"),
        capabilities=frozenset(capabilities),
        allowed_parameters=allowed,
        denied_parameters=denied,
        required_parameters=required,
        min_wrapping_ttl=min_ttl,
        max_wrapping_ttl=max_ttl,
    )


def _rules(document: Object, *, is_json: bool) -> tuple[PathRule, ...]:
    rules: list[PathRule] = []
    for item in document.items:
        head = item.keys[0]
        if head == "name":
            # Vault accepts a top-level `name` and ignores it: the API path names the policy.
            if len(item.keys) != 1 or not isinstance(item.value, str):
                fail(f"'name' must be a string{_at(item.line)}")
        elif head != "path":
            fail(f"unknown top-level key {shown(head)}{_at(item.line)}; expected path blocks")
        elif len(item.keys) == 2 and isinstance(item.value, Object):
            rules.append(_rule(item.keys[1], item.value, item.line))
        elif is_json and len(item.keys) == 1 and isinstance(item.value, Object):
            # JSON spells `path "p" {...}` as {"path": {"p": {...}}}.
            for block in item.value.items:
                if not isinstance(block.value, Object):
                    fail(f"path {shown(block.keys[0])}: the rule must be an object")
                rules.append(_rule(block.keys[0], block.value, 0))
        else:
            fail(f"a path block needs exactly one quoted pattern{_at(item.line)}")
    # Duplicate patterns stay separate here, as in Vault; ACL merges them like any overlap.
    return tuple(rules)


@dataclass(frozen=True, slots=True, repr=False)
class Policy:
    """A named ACL policy: its rules, and the document exactly as submitted."""

    name: str
    rules: tuple[PathRule, ...]
    raw: str

    def __repr__(self) -> str:
        # The document can be 64 KiB; a repr names it and counts, and never dumps it.
        return (
            f"Policy(name={shown(self.name)}, rules=<{len(self.rules)} rules>, "
            f"raw=<{len(self.raw)} characters>)"
        )

    @classmethod
    def parse(cls, name: str, text: str) -> Policy:
        """Parse an HCL or JSON policy document; raise `InvalidRequestError` if it is bad.

        A document whose first non-blank character is `{` is JSON, anything else HCL, as in
        Vault. An empty document is a valid policy that grants nothing. `raw` keeps `text`
        verbatim because Vault returns it unchanged on read.
        """
        validate_name(name, kind="policy name")
        if not isinstance(text, str):
            fail("the document must be a string")
        if len(text) > MAX_POLICY_BYTES:
            fail(f"the document is larger than {MAX_POLICY_BYTES} bytes")
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            fail("the document is not valid Unicode")
        if size > MAX_POLICY_BYTES:
            fail(f"the document is larger than {MAX_POLICY_BYTES} bytes")
        if text.lstrip().startswith("{"):
            rules = _rules(parse_json(text), is_json=True)
        else:
            rules = _rules(parse_hcl(text), is_json=False)
        return cls(name=name, rules=rules, raw=text)
