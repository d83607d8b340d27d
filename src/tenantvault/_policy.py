"""Vault ACL policies: parse HCL and JSON policy documents, and evaluate them per request path."""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, NamedTuple, NoReturn, TypeAlias

from tenantvault._exceptions import InvalidRequestError
from tenantvault._paths import validate_name

__all__ = [
    "ACL",
    "CAPABILITIES",
    "MAX_POLICY_BYTES",
    "Capability",
    "ParameterValue",
    "PathRule",
    "Policy",
]

MAX_POLICY_BYTES: Final = 64 * 1024
# A policy needs four levels at most (document, path block, allowed_parameters, value list);
# the slack is for harmless style, the cap keeps the recursive parser's stack small.
_MAX_NESTING: Final = 10
# Longer or unprintable user text is never copied into an error message.
_MAX_SHOWN: Final = 64
_CACHE_SIZE: Final = 1024
# Longer paths are evaluated but not cached, so the cache stays small whatever callers send.
_MAX_CACHED_PATH: Final = 1024


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

_ROOT: Final = frozenset({"root"})
_DENIED: Final = frozenset({Capability.DENY.value})
_BITS: Final[dict[str, int]] = {c.value: 1 << i for i, c in enumerate(Capability)}
_DENY_BIT: Final = _BITS[Capability.DENY]
# Every bitmap's answer, built once, so evaluation returns shared frozensets.
_NAMES: Final[tuple[frozenset[str], ...]] = tuple(
    _DENIED
    if bits == 0 or bits & _DENY_BIT
    else frozenset(name for name, bit in _BITS.items() if bits & bit)
    for bits in range(1 << len(_BITS))
)

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

ParameterValue: TypeAlias = str | int | float | bool
_Parameters: TypeAlias = tuple[tuple[str, tuple[ParameterValue, ...]], ...]


def _shown(value: object) -> str:
    """`value` quoted for an error message when short and printable, else a placeholder."""
    if isinstance(value, str) and len(value) <= _MAX_SHOWN and value.isprintable():
        return repr(value)
    return "(not shown)"


def _fail(message: str) -> NoReturn:
    raise InvalidRequestError(f"invalid policy: {message}")


# -- path patterns -----------------------------------------------------------------------

# Controls and lone surrogates: no request path contains them, and they corrupt logs.
_BAD_PATTERN_CHARS: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _check_pattern(pattern: object) -> None:
    if not isinstance(pattern, str):
        _fail("a path pattern must be a string")
    where = f"path {_shown(pattern)}"
    if _BAD_PATTERN_CHARS.search(pattern):
        _fail("a path pattern contains a control character")
    if pattern.startswith("/"):
        # Vault strips one leading '/'; a second could never match a request path.
        _fail(f"{where}: a pattern may start with at most one '/'")
    if "{{" in pattern:
        # Identity templating is not implemented; matching the template literally would
        # silently drop a templated `deny`.
        _fail(f"{where}: templated policy paths are not supported")
    if "+*" in pattern:
        _fail(f"{where}: invalid use of wildcards ('+*' is forbidden)")
    body = pattern.removesuffix("*")
    if "*" in body:
        # Vault would match such a '*' literally, which is never what its author meant.
        _fail(f"{where}: '*' is only allowed as the last character")
    if any("+" in segment and segment != "+" for segment in body.split("/")):
        # Vault reads '+' as a wildcard only as a whole segment; elsewhere it would be a
        # literal that no valid request path contains.
        _fail(f"{where}: '+' must stand alone as a whole path segment")


def _has_segment_wildcards(pattern: str) -> bool:
    # Vault's own test (vault/policy.go), so the same patterns take the segment-aware path.
    return pattern == "+" or "/+" in pattern or pattern.startswith("+/")


@dataclass(frozen=True, slots=True)
class PathRule:
    """One `path` block: a pattern and the capabilities it grants (only `deny` if it denies).

    `pattern` is stored without Vault's optional leading '/'. A trailing `*` makes it a prefix
    glob; a `+` segment matches exactly one path segment.

    The parameter and wrapping-TTL constraints are parsed, validated and kept so that a
    policy round-trips, but `ACL` does NOT enforce them yet: a rule with `denied_parameters`
    grants its capabilities for any request body. Parameter names are lowercased, as Vault
    compares them case-insensitively.
    """

    pattern: str
    capabilities: frozenset[str]
    allowed_parameters: _Parameters | None = None
    denied_parameters: _Parameters | None = None
    required_parameters: tuple[str, ...] = ()
    min_wrapping_ttl: timedelta | None = None
    max_wrapping_ttl: timedelta | None = None

    def __post_init__(self) -> None:
        _check_pattern(self.pattern)
        if not isinstance(self.capabilities, frozenset):
            _fail(f"path {_shown(self.pattern)}: capabilities must be a frozenset")
        for capability in self.capabilities:
            if capability not in CAPABILITIES:
                _fail(f"path {_shown(self.pattern)}: unknown capability {_shown(capability)}")

    @property
    def is_glob(self) -> bool:
        """True when the pattern ends in `*` and so matches by prefix."""
        return self.pattern.endswith("*")

    @property
    def has_segment_wildcards(self) -> bool:
        """True when the pattern has a `+` segment."""
        return _has_segment_wildcards(self.pattern)


# -- HCL: tokens -------------------------------------------------------------------------


class _Token(NamedTuple):
    kind: str  # "ident", "string", "number", "eof", or the punctuation character itself
    value: str | int | float
    line: int
    column: int


_TOKEN_RE: Final = re.compile(
    r"""
      (?P<space>[ \t\r\n]+)
    | (?P<comment>(?:\#|//)[^\n]*)
    | (?P<block>/\*)
    | (?P<string>"(?:[^"\\\n]|\\[^\n])*")
    | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)(?![A-Za-z0-9_.])
    | (?P<ident>[A-Za-z_][A-Za-z0-9_.-]*)
    | (?P<punct>[{}\[\]=,])
    """,
    re.VERBOSE,
)
_ESCAPE_RE: Final = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))")
# HCL 1 takes Go's escapes; octal and \x (raw bytes) are left out as no policy needs them.
_SIMPLE_ESCAPES: Final = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}
# Longer numerals are not TTLs anyone means, and int() of huge numerals is slow.
_MAX_NUMBER_CHARS: Final = 32


def _syntax(line: int, column: int, message: str) -> NoReturn:
    _fail(f"line {line}, column {column}: {message}")


def _unescape(body: str, line: int, column: int) -> str:
    if "\\" not in body:
        return body

    def replace(match: re.Match[str]) -> str:
        hex_digits = match.group(1) or match.group(2)
        if hex_digits is not None:
            code = int(hex_digits, 16)
            if code > 0x10FFFF:
                _syntax(line, column, "invalid unicode escape in string")
            return chr(code)
        simple = _SIMPLE_ESCAPES.get(match.group(3))
        if simple is None:
            _syntax(line, column, "unsupported escape sequence in string")
        return simple

    return _ESCAPE_RE.sub(replace, body)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position, line, line_start, end = 0, 1, 0, len(text)
    while position < end:
        column = position - line_start + 1
        match = _TOKEN_RE.match(text, position)
        if match is None:
            char = text[position]
            if char == '"':
                _syntax(line, column, "unterminated string (a string cannot span lines)")
            if text.startswith("<<", position):
                _syntax(line, column, "heredoc strings are not supported")
            shown = _shown(char) if char.isascii() else "(not shown)"
            _syntax(line, column, f"unexpected character {shown}")
        kind = match.lastgroup
        stop = match.end()
        if kind == "block":
            close = text.find("*/", position + 2)
            if close < 0:
                _syntax(line, column, "unterminated /* comment")
            stop = close + 2
        if kind in ("space", "block"):
            newlines = text.count("\n", position, stop)
            if newlines:
                line += newlines
                line_start = text.rfind("\n", position, stop) + 1
        elif kind == "string":
            value = _unescape(match.group()[1:-1], line, column)
            tokens.append(_Token("string", value, line, column))
        elif kind == "number":
            numeral = match.group("number")
            if len(numeral) > _MAX_NUMBER_CHARS:
                _syntax(line, column, "number too long")
            if numeral.lstrip("-").isdigit():
                tokens.append(_Token("number", int(numeral), line, column))
            else:
                number = float(numeral)
                if not math.isfinite(number):
                    _syntax(line, column, "number out of range")
                tokens.append(_Token("number", number, line, column))
        elif kind == "ident":
            tokens.append(_Token("ident", match.group(), line, column))
        elif kind == "punct":
            tokens.append(_Token(match.group(), match.group(), line, column))
        position = stop
    tokens.append(_Token("eof", "", line, position - line_start + 1))
    return tokens


# -- HCL and JSON: one small syntax tree -------------------------------------------------


@dataclass(slots=True)
class _Item:
    keys: tuple[str, ...]  # `path "secret/*" { ... }` has keys ("path", "secret/*")
    value: _Value
    line: int  # 0 when unknown (JSON)


@dataclass(slots=True)
class _Object:
    # A list, not a dict: duplicate keys must stay visible (merged or refused later).
    items: list[_Item]


_Value: TypeAlias = "str | int | float | bool | list[_Value] | _Object"


class _Parser:
    """Recursive descent over HCL 1's object grammar, limited to what policies use."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0

    def document(self) -> _Object:
        return self._body(0, "eof")

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        if token.kind != "eof":
            self._index += 1
        return token

    @staticmethod
    def _unexpected(token: _Token, expected: str) -> NoReturn:
        if token.kind == "eof":
            found = "end of document"
        elif token.kind == "string":
            found = "a string"
        elif token.kind in ("ident", "number"):
            found = f"a {'word' if token.kind == 'ident' else 'number'}"
        else:
            found = repr(token.kind)
        _syntax(token.line, token.column, f"expected {expected}, found {found}")

    @staticmethod
    def _deeper(depth: int, token: _Token) -> int:
        if depth >= _MAX_NESTING:
            _syntax(token.line, token.column, "nested too deeply")
        return depth + 1

    def _body(self, depth: int, closing: str) -> _Object:
        items: list[_Item] = []
        while self._peek().kind != closing:
            items.append(self._item(depth))
            # HCL 1 allows a comma between the items of an object.
            if self._peek().kind == ",":
                self._next()
        self._next()
        return _Object(items)

    def _item(self, depth: int) -> _Item:
        first = self._peek()
        keys: list[str] = []
        while self._peek().kind in ("ident", "string"):
            keys.append(str(self._next().value))
        if not keys:
            self._unexpected(first, "a key")
        token = self._next()
        value: _Value
        if token.kind == "=":
            if len(keys) > 1:
                _syntax(token.line, token.column, "a block with labels must open with '{'")
            value = self._value(depth)
        elif token.kind == "{":
            value = self._body(self._deeper(depth, token), "}")
        else:
            self._unexpected(token, "'=' or '{'")
        return _Item(tuple(keys), value, first.line)

    def _value(self, depth: int) -> _Value:
        token = self._next()
        if token.kind in ("string", "number"):
            return token.value
        if token.kind == "ident":
            if token.value in ("true", "false"):
                return token.value == "true"
            _syntax(token.line, token.column, "expected a value; strings must be quoted")
        if token.kind == "[":
            inner = self._deeper(depth, token)
            values: list[_Value] = []
            while self._peek().kind != "]":
                values.append(self._value(inner))
                if self._peek().kind == ",":  # a trailing comma is valid HCL
                    self._next()
                elif self._peek().kind != "]":
                    self._unexpected(self._peek(), "',' or ']'")
            self._next()
            return values
        if token.kind == "{":
            return self._body(self._deeper(depth, token), "}")
        self._unexpected(token, "a value")


def _reject_constant(name: str) -> NoReturn:
    _fail(f"JSON constant {_shown(name)} is not allowed")


def _parse_json(text: str) -> _Object:
    try:
        document = json.loads(
            text,
            object_pairs_hook=lambda pairs: _Object([_Item((k,), v, 0) for k, v in pairs]),
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as error:
        _fail(f"malformed JSON at line {error.lineno}, column {error.colno}")
    except RecursionError:
        _fail("JSON nested too deeply")
    except ValueError:  # e.g. an integer beyond Python's digit limit
        _fail("malformed JSON")
    if not isinstance(document, _Object):
        _fail("a JSON policy must be an object")
    return document


# -- from syntax tree to rules -----------------------------------------------------------


def _at(line: int) -> str:
    return f" (line {line})" if line else ""


def _string_list(value: _Value, where: str, key: str) -> list[str]:
    if not isinstance(value, list):
        _fail(f"{where}: {key} must be a list of strings")
    strings: list[str] = []
    for element in value:
        if not isinstance(element, str):
            _fail(f"{where}: {key} must be a list of strings")
        strings.append(element)
    return strings


def _parameters(value: _Value, where: str, key: str) -> _Parameters:
    if not isinstance(value, _Object):
        _fail(f"{where}: {key} must be an object")
    parameters: dict[str, tuple[ParameterValue, ...]] = {}
    for item in value.items:
        if len(item.keys) != 1 or not isinstance(item.value, list):
            _fail(f"{where}: each {key} entry must be a list of values")
        name = item.keys[0].lower()
        if name in parameters:
            _fail(f"{where}: {key} names parameter {_shown(name)} twice")
        values: list[ParameterValue] = []
        for element in item.value:
            if isinstance(element, list | _Object):
                _fail(f"{where}: {key} values must be strings, numbers or booleans")
            values.append(element)
        parameters[name] = tuple(values)
    return tuple(sorted(parameters.items()))


_DURATION_PART: Final = re.compile(
    r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)"
)
_DURATION_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def _duration_seconds(text: str) -> float | None:
    """Seconds from Vault's ParseDurationSecond forms: "300", "72h", "1h30m", "7d"."""
    if not text or len(text) > _MAX_SHOWN:
        return None
    if re.fullmatch(r"[0-9]+", text):
        return float(text)
    days = re.fullmatch(r"([0-9]+)d", text)
    if days:
        return float(days.group(1)) * 86400
    total = 0.0
    position = 0
    while position < len(text):
        part = _DURATION_PART.match(text, position)
        if part is None:
            return None
        total += float(part.group(1)) * _DURATION_UNITS[part.group(2)]
        position = part.end()
    return total


def _ttl(value: _Value, where: str, key: str) -> timedelta:
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _duration_seconds(value)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        _fail(f'{where}: {key} must be a duration such as 300, "300s" or "1h"')
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        _fail(f"{where}: {key} is out of range")


def _rule(label: str, body: _Object, line: int) -> PathRule:
    where = f"path {_shown(label)}{_at(line)}"
    seen: set[str] = set()
    capabilities: set[str] = set()
    legacy: str | None = None
    allowed: _Parameters | None = None
    denied: _Parameters | None = None
    required: tuple[str, ...] = ()
    min_ttl: timedelta | None = None
    max_ttl: timedelta | None = None
    for item in body.items:
        key = item.keys[0]
        if len(item.keys) != 1:
            _fail(f"{where}: unexpected block inside a path block")
        if key in seen:
            _fail(f"{where}: {_shown(key)} is given twice")
        seen.add(key)
        value = item.value
        if key == "capabilities":
            for capability in _string_list(value, where, key):
                if capability not in CAPABILITIES:
                    shown = _shown(capability) if len(capability) <= 16 else "(not shown)"
                    _fail(f"{where}: unknown capability {shown}")
                capabilities.add(capability)
        elif key == "policy":
            if not isinstance(value, str) or value not in _LEGACY:
                _fail(f'{where}: policy must be one of "deny", "read", "write", "sudo"')
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
                _fail(f"{where}: comment must be a string")
        elif key in _UNSUPPORTED_KEYS:
            _fail(f"{where}: {key} is not supported")
        else:
            _fail(f"{where}: unknown key {_shown(key)}")
    if legacy is not None:
        capabilities |= _LEGACY[legacy]
    if Capability.DENY in capabilities:
        capabilities = {Capability.DENY.value}
    if min_ttl and max_ttl and max_ttl < min_ttl:
        _fail(f"{where}: max_wrapping_ttl cannot be less than min_wrapping_ttl")
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


def _rules(document: _Object, *, is_json: bool) -> tuple[PathRule, ...]:
    rules: list[PathRule] = []
    for item in document.items:
        head = item.keys[0]
        if head == "name":
            # Vault accepts a top-level `name` and ignores it: the API path names the policy.
            if len(item.keys) != 1 or not isinstance(item.value, str):
                _fail(f"'name' must be a string{_at(item.line)}")
        elif head != "path":
            _fail(f"unknown top-level key {_shown(head)}{_at(item.line)}; expected path blocks")
        elif len(item.keys) == 2 and isinstance(item.value, _Object):
            rules.append(_rule(item.keys[1], item.value, item.line))
        elif is_json and len(item.keys) == 1 and isinstance(item.value, _Object):
            # JSON spells `path "p" {...}` as {"path": {"p": {...}}}.
            for block in item.value.items:
                if not isinstance(block.value, _Object):
                    _fail(f"path {_shown(block.keys[0])}: the rule must be an object")
                rules.append(_rule(block.keys[0], block.value, 0))
        else:
            _fail(f"a path block needs exactly one quoted pattern{_at(item.line)}")
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
            f"Policy(name={_shown(self.name)}, rules=<{len(self.rules)} rules>, "
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
            _fail("the document must be a string")
        if len(text) > MAX_POLICY_BYTES:
            _fail(f"the document is larger than {MAX_POLICY_BYTES} bytes")
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            _fail("the document is not valid Unicode")
        if size > MAX_POLICY_BYTES:
            _fail(f"the document is larger than {MAX_POLICY_BYTES} bytes")
        if text.lstrip().startswith("{"):
            rules = _rules(_parse_json(text), is_json=True)
        else:
            rules = _rules(_Parser(_tokenize(text)).document(), is_json=False)
        return cls(name=name, rules=rules, raw=text)


# -- evaluation --------------------------------------------------------------------------

# Vault's priority order among matching non-exact patterns, as a sort key where the larger
# tuple wins: (position of the first wildcard or glob, not a glob, minus the number of '+'
# segments, length without the '*', the pattern itself).
_Rank: TypeAlias = tuple[int, bool, int, int, str]


@dataclass(frozen=True, slots=True)
class _SegmentRule:
    parts: tuple[str, ...]
    is_prefix: bool
    rank: _Rank
    bits: int

    def matches(self, path_parts: list[str]) -> bool:
        # As vault/acl.go: a '+' matches one segment, even an empty one; a trailing glob
        # matches by prefix within the last segment and anything after it.
        count = len(self.parts)
        if len(path_parts) < count or (not self.is_prefix and len(path_parts) != count):
            return False
        last = count - 1
        for index, part in enumerate(self.parts):
            segment = path_parts[index]
            if part == "+" or part == segment:
                continue
            if self.is_prefix and index == last and segment.startswith(part):
                continue
            return False
        return True

    def reaches(self, mount_parts: list[str]) -> bool:
        # vault/acl.go's "bareMount" walk: every segment of the mount (the parts before
        # its trailing '/') must be matched by this pattern's part at the same position.
        count = len(mount_parts) - 1
        if count < 1 or len(self.parts) < count:
            return False
        last = len(self.parts) - 1
        for index in range(count):
            part, segment = self.parts[index], mount_parts[index]
            if part == "+" or part == segment:
                continue
            if self.is_prefix and index == last and segment.startswith(part):
                continue
            return False
        return True


def _grants(bits: int) -> bool:
    return bits != 0 and not bits & _DENY_BIT


def _bits(capabilities: frozenset[str]) -> int:
    bits = 0
    for capability in capabilities:
        bits |= _BITS[capability]
    return bits


class ACL:
    """The effective permissions of a set of policies, compiled for fast lookups.

    Semantics are Vault's. Rules with the same pattern, across policies or within one, are
    merged: capabilities are united, and `deny` in any of them leaves only `deny`. Then one
    rule decides: an exact pattern first; otherwise the highest-priority matching glob or
    `+` pattern by Vault's documented order. Capabilities are never united across different
    patterns, and no matching rule means no access.

    `root=True` builds the root ACL, which grants everything; `policies` are then ignored.
    """

    __slots__ = ("_cache", "_exact", "_prefix", "_prefix_lengths", "_root", "_segment")

    def __init__(self, policies: Iterable[Policy], *, root: bool = False) -> None:
        self._root = root
        self._cache: dict[tuple[str, bool], frozenset[str]] = {}
        merged: dict[str, int] = {}
        if not root:
            for policy in policies:
                for rule in policy.rules:
                    bits = _bits(rule.capabilities)
                    previous = merged.get(rule.pattern)
                    if previous is not None:
                        bits |= previous
                    merged[rule.pattern] = _DENY_BIT if bits & _DENY_BIT else bits
        self._exact: dict[str, int] = {}
        self._prefix: dict[str, int] = {}
        segment: list[_SegmentRule] = []
        for pattern, bits in merged.items():
            if _has_segment_wildcards(pattern):
                is_prefix = pattern.endswith("*")
                body = pattern.removesuffix("*")
                parts = tuple(body.split("/"))
                rank = (pattern.index("+"), not is_prefix, -parts.count("+"), len(body), body)
                segment.append(_SegmentRule(parts, is_prefix, rank, bits))
            elif pattern.endswith("*"):
                self._prefix[pattern[:-1]] = bits
            else:
                self._exact[pattern] = bits
        # Best first, so the first segment rule that matches is the best one.
        segment.sort(key=lambda rule: rule.rank, reverse=True)
        self._segment = tuple(segment)
        # Longest first: the first stored prefix of a path is its longest-prefix glob.
        self._prefix_lengths = tuple(sorted({len(p) for p in self._prefix}, reverse=True))

    def __repr__(self) -> str:
        if self._root:
            return "ACL(root=True)"
        count = len(self._exact) + len(self._prefix) + len(self._segment)
        return f"ACL(<{count} patterns>)"

    @property
    def is_root(self) -> bool:
        """True for the root ACL, which grants everything."""
        return self._root

    def capabilities(self, path: str, *, listing: bool = False) -> frozenset[str]:
        """The capabilities granted at `path`: `{"deny"}` if none, `{"root"}` for root.

        `path` is the full request path (mount included); leading '/' are ignored. Vault
        authorizes a LIST of `secret/metadata/app` against `secret/metadata/app/`, so the
        caller appends the '/' for a LIST. `listing=True` adds Vault's fallback for list
        operations (and for its sys/capabilities endpoint): a rule for the path without
        its trailing '/' applies when nothing matches the path itself.
        """
        if self._root:
            return _ROOT
        key = (path, listing)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        bits = self._evaluate(path.lstrip("/"), listing)
        result = _NAMES[bits or 0]
        if len(path) <= _MAX_CACHED_PATH:
            if len(self._cache) >= _CACHE_SIZE:
                # Dropping everything is crude but cheap and never races with readers; a
                # busy token re-warms within a few requests.
                self._cache.clear()
            self._cache[key] = result
        return result

    def allows(self, path: str, capability: str) -> bool:
        """True if `capability` is granted at `path`; `list` uses the list fallback.

        `deny` is never "allowed". An unknown capability is a programming error.
        """
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {_shown(capability)}")
        if capability == Capability.DENY:
            return False
        if self._root:
            return True
        return capability in self.capabilities(path, listing=capability == Capability.LIST)

    def has_access_under(self, mount: str) -> bool:
        """True if some rule grants anything at `mount` (ending in '/') or below it.

        Vault's `hasMountAccess`, which guards sys/internal/ui/mounts/<mount>: the mount
        itself, then any exact or glob rule under it, then any `+` rule that can reach it;
        rules that deny or grant nothing do not count.
        """
        if self._root:
            return True
        mount = mount.lstrip("/")
        if Capability.DENY not in self.capabilities(mount, listing=True):
            return True
        for rules in (self._exact, self._prefix):
            for pattern, bits in rules.items():
                if pattern.startswith(mount) and _grants(bits):
                    return True
        parts = mount.split("/")
        return any(_grants(rule.bits) and rule.reaches(parts) for rule in self._segment)

    def _evaluate(self, path: str, listing: bool) -> int | None:
        # The order of vault/acl.go AllowOperation: exact rules win outright.
        trimmed = path[:-1] if listing and path.endswith("/") else None
        bits = self._exact.get(path)
        if bits is None and trimmed is not None:
            bits = self._exact.get(trimmed)
        if bits is None:
            bits = self._non_exact(path)
        if bits is None and trimmed is not None:
            bits = self._non_exact(trimmed)
        return bits

    def _non_exact(self, path: str) -> int | None:
        best_bits: int | None = None
        best_rank: _Rank | None = None
        size = len(path)
        for length in self._prefix_lengths:
            if length <= size:
                bits = self._prefix.get(path[:length])
                if bits is not None:
                    best_bits = bits
                    best_rank = (length, False, 0, length, path[:length])
                    break
        if self._segment:
            parts = path.split("/")
            for rule in self._segment:
                if best_rank is not None and rule.rank < best_rank:
                    break
                if rule.matches(parts):
                    return rule.bits
        return best_bits
