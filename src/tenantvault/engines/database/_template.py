"""`username_template`: the part of Go's text/template that Vault's username templates use.

Vault renders usernames with Go templates and its own functions (`sdk/helper/template`):
`{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20)
(unix_time) | truncate 63 }}` is the PostgreSQL default. Supported here: text and actions
(with `{{-`/`-}}` trimming and `{{/* comments */}}`), pipelines, parenthesized expressions,
string (interpreted and raw), integer and boolean literals, the fields `.DisplayName` and
`.RoleName`, `printf` (%s %d %v %q %x %%), and Vault's `random`, `truncate`,
`truncate_sha256`, `uppercase`, `lowercase`, `replace`, `sha256`, `base64`, `decode_base64`,
`hex`, `decode_hex`, `unix_time`, `unix_time_millis`, `timestamp` (a Go layout) and `uuid`.
Control structures (`if`, `range`, `with`, ...) are refused when the config is written. The
error texts are Go's and OpenBao's, so a bad template reads the same as there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import string
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, TypeAlias

from tenantvault._random_text import random_text

__all__ = ["TemplateError", "UsernameTemplate"]

Value: TypeAlias = "str | int | bool"

_KEYWORDS: Final = frozenset(
    {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
)
_FIELDS: Final = ("DisplayName", "RoleName")
_TOKEN: Final = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<pipe>\|)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<string>"(?:[^"\\\n]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<number>-?[0-9]+(?![A-Za-z0-9_.]))
    | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
    | (?P<dot>\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "a": "\a", "b": "\b"}
_BASE62: Final = string.ascii_letters + string.digits
# Go's reference-time layout elements, in the order Go's lexer tries them (longest first).
_GO_LAYOUT: Final[tuple[tuple[str, Callable[[datetime], str]], ...]] = (
    ("January", lambda t: t.strftime("%B")),
    ("Monday", lambda t: t.strftime("%A")),
    ("2006", lambda t: f"{t.year:04d}"),
    ("Z07:00", lambda t: "Z"),
    ("Z0700", lambda t: "Z"),
    ("-07:00", lambda t: "+00:00"),
    ("-0700", lambda t: "+0000"),
    ("-07", lambda t: "+00"),
    ("Jan", lambda t: t.strftime("%b")),
    ("Mon", lambda t: t.strftime("%a")),
    ("MST", lambda t: "UTC"),
    ("002", lambda t: f"{t.timetuple().tm_yday:03d}"),
    ("_2", lambda t: f"{t.day:2d}"),
    ("01", lambda t: f"{t.month:02d}"),
    ("02", lambda t: f"{t.day:02d}"),
    ("03", lambda t: f"{(t.hour % 12) or 12:02d}"),
    ("04", lambda t: f"{t.minute:02d}"),
    ("05", lambda t: f"{t.second:02d}"),
    ("06", lambda t: f"{t.year % 100:02d}"),
    ("15", lambda t: f"{t.hour:02d}"),
    (".000000", lambda t: f".{t.microsecond:06d}"),
    (".000", lambda t: f".{t.microsecond // 1000:03d}"),
    ("PM", lambda t: "PM" if t.hour >= 12 else "AM"),
    ("pm", lambda t: "pm" if t.hour >= 12 else "am"),
    ("1", lambda t: str(t.month)),
    ("2", lambda t: str(t.day)),
    ("3", lambda t: str((t.hour % 12) or 12)),
    ("4", lambda t: str(t.minute)),
    ("5", lambda t: str(t.second)),
)


class TemplateError(Exception):
    """A template that Go would refuse to parse, or that fails when applied; the text is
    Go's (`template: template:1: ...`), without the caller's prefix."""


class _ExecError(Exception):
    def __init__(self, position: int, node: str, message: str) -> None:
        super().__init__(message)
        self.position, self.node, self.message = position, node, message


# -- the syntax tree ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Value
    text: str
    position: int

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class _Field:
    names: tuple[str, ...]  # () is the dot itself
    position: int

    def __str__(self) -> str:
        return "".join("." + name for name in self.names) or "."


@dataclass(frozen=True, slots=True)
class _Function:
    name: str
    position: int

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class _Command:
    operands: tuple[_Operand, ...]
    position: int

    def __str__(self) -> str:
        return " ".join(str(operand) for operand in self.operands)


@dataclass(frozen=True, slots=True)
class _Pipeline:
    commands: tuple[_Command, ...]
    position: int
    parenthesized: bool = False

    def __str__(self) -> str:
        inner = " | ".join(str(command) for command in self.commands)
        return f"({inner})" if self.parenthesized else inner


_Operand: TypeAlias = "_Literal | _Field | _Function | _Pipeline"
_Part: TypeAlias = "str | _Pipeline"


def _line(text: str, position: int) -> int:
    return 1 + text.count("\n", 0, position)


# -- parsing --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Parser:
    source: str
    functions: frozenset[str]
    tokens: list[tuple[str, str, int]] = field(default_factory=list)
    index: int = 0

    def fail(self, position: int, message: str) -> TemplateError:
        return TemplateError(f"template: template:{_line(self.source, position)}: {message}")

    def lex(self, start: int, end: int) -> None:
        self.tokens, self.index = [], 0
        position = start
        while position < end:
            match = _TOKEN.match(self.source, position, end)
            if match is None:
                char = self.source[position]
                if char in '"`':
                    raise self.fail(position, "unterminated quoted string")
                raise self.fail(position, f"unexpected {char!r} in command")
            kind = match.lastgroup or ""
            if kind != "space":
                self.tokens.append((kind, match.group(), position))
            position = match.end()
        self.tokens.append(("eof", "", end))

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.index]

    def take(self) -> tuple[str, str, int]:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def pipeline(self, *, closing: str) -> _Pipeline:
        commands: list[_Command] = []
        start = self.peek()[2]
        while True:
            commands.append(self.command())
            kind = self.peek()[0]
            if kind == "pipe":
                self.take()
                continue
            if kind == closing:
                return _Pipeline(tuple(commands), start)
            _, text, position = self.peek()
            if kind == "eof":
                raise self.fail(position, "unclosed left paren")
            raise self.fail(position, f"unexpected {text!r} in operand")

    def command(self) -> _Command:
        operands: list[_Operand] = []
        start = self.peek()[2]
        while self.peek()[0] not in ("pipe", "close", "eof"):
            operands.append(self.operand())
        if not operands:
            raise self.fail(start, "missing value for command")
        return _Command(tuple(operands), start)

    def operand(self) -> _Operand:
        kind, text, position = self.take()
        if kind == "open":
            inner = self.pipeline(closing="close")
            self.take()
            return _Pipeline(inner.commands, position, parenthesized=True)
        if kind == "string":
            return _Literal(_unquote(text), text, position)
        if kind == "raw":
            return _Literal(text[1:-1], text, position)
        if kind == "number":
            return _Literal(int(text), text, position)
        if kind == "field":
            return _Field(tuple(text[1:].split(".")), position)
        if kind == "dot":
            return _Field((), position)
        if kind == "ident":
            if text in ("true", "false"):
                return _Literal(text == "true", text, position)
            if text in _KEYWORDS:
                raise self.fail(position, f"{text!r} is not supported in a username template")
            if text not in self.functions:
                raise self.fail(position, f'function "{text}" not defined')
            return _Function(text, position)
        raise self.fail(position, f"unexpected {text!r} in operand")

    def parse(self) -> list[_Part]:
        parts: list[_Part] = []
        source, position = self.source, 0
        trim_next = False
        while True:
            opening = source.find("{{", position)
            text = source[position:] if opening < 0 else source[position:opening]
            if trim_next:
                text = text.lstrip()
            if opening < 0:
                parts.append(text)
                return parts
            start = opening + 2
            if source.startswith("- ", start) or source.startswith("-\t", start):
                text, start = text.rstrip(), start + 1
            parts.append(text)
            closing = source.find("}}", start)
            body_start = start
            while body_start < len(source) and source[body_start] in " \t":
                body_start += 1
            if source.startswith("/*", body_start):
                comment_end = source.find("*/", body_start + 2)
                if comment_end < 0:
                    raise self.fail(opening, "unclosed comment")
                closing = source.find("}}", comment_end)
                if closing < 0:
                    raise self.fail(opening, "unclosed action")
                trim_next = source[comment_end + 2 : closing].strip() == "-"
                position = closing + 2
                continue
            if closing < 0:
                raise self.fail(opening, "unclosed action")
            end = closing
            trim_next = closing >= 2 and source[closing - 1] == "-" and source[closing - 2] in " \t"
            if trim_next:
                end -= 1
            self.lex(start, end)
            if self.peek()[0] == "eof":
                raise self.fail(opening, "missing value for command")
            parts.append(self.pipeline(closing="eof"))
            position = closing + 2


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


# -- the functions --------------------------------------------------------------------------


def _random(length: int) -> str:
    if length < 0:
        raise ValueError("runtime error: makeslice: cap out of range")
    return random_text(_BASE62, length)


def _truncate(max_length: int, text: str) -> str:
    if max_length <= 0:
        raise ValueError(f"max length must be > 0 but was {max_length}")
    return text[:max_length]


def _truncate_sha256(max_length: int, text: str) -> str:
    if max_length <= 8:
        raise ValueError(f"max length must be > 8 but was {max_length}")
    if len(text) <= max_length:
        return text
    cut = max_length - 8
    return text[:cut] + hashlib.sha256(text[cut:].encode()).hexdigest()[:8]


def _decode_base64(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode(errors="replace")
    except binascii.Error:
        raise ValueError("illegal base64 data at input byte 0") from None


def _decode_hex(text: str) -> str:
    try:
        return bytes.fromhex(text).decode(errors="replace")
    except ValueError:
        raise ValueError("encoding/hex: invalid byte") from None


def _go_time(layout: str, now: datetime) -> str:
    """`now` in a Go layout ("2006-01-02T15:04:05Z07:00"); the clock is UTC."""
    out: list[str] = []
    index = 0
    while index < len(layout):
        for element, show in _GO_LAYOUT:
            if layout.startswith(element, index):
                out.append(show(now))
                index += len(element)
                break
        else:
            out.append(layout[index])
            index += 1
    return "".join(out)


def _printf(format_text: str, *args: Value) -> str:
    values = list(args)
    out: list[str] = []

    def verb(match: re.Match[str]) -> str:
        letter = match.group(1)
        if letter == "%":
            return "%"
        if not values:
            return f"%!{letter}(MISSING)"
        value = values.pop(0)
        if letter in "sv":
            return str(value).lower() if isinstance(value, bool) else str(value)
        if letter == "d" and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if letter == "q" and isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if letter == "x" and isinstance(value, str):
            return value.encode().hex()
        if letter == "x" and isinstance(value, int) and not isinstance(value, bool):
            return format(value, "x")
        kind = "string" if isinstance(value, str) else type(value).__name__
        return f"%!{letter}({kind}={value})"

    out.append(re.sub(r"%([a-zA-Z%])", verb, format_text))
    if values:
        extra = ", ".join(
            f"{'string' if isinstance(v, str) else type(v).__name__}={v}" for v in values
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Signature:
    """A function's parameter types ('int', 'string') or None for printf's variadic."""

    params: tuple[str, ...] | None
    call: Callable[..., str]


def _functions(now: Callable[[], datetime]) -> dict[str, _Signature]:
    return {
        "printf": _Signature(None, _printf),
        "random": _Signature(("int",), _random),
        "truncate": _Signature(("int", "string"), _truncate),
        "truncate_sha256": _Signature(("int", "string"), _truncate_sha256),
        "uppercase": _Signature(("string",), str.upper),
        "lowercase": _Signature(("string",), str.lower),
        "replace": _Signature(
            ("string", "string", "string"), lambda find, new, text: text.replace(find, new)
        ),
        "sha256": _Signature(("string",), lambda text: hashlib.sha256(text.encode()).hexdigest()),
        "base64": _Signature(("string",), lambda text: base64.b64encode(text.encode()).decode()),
        "decode_base64": _Signature(("string",), _decode_base64),
        "hex": _Signature(("string",), lambda text: text.encode().hex()),
        "decode_hex": _Signature(("string",), _decode_hex),
        "unix_time": _Signature((), lambda: str(int(now().timestamp()))),
        "unix_time_millis": _Signature((), lambda: str(int(now().timestamp() * 1000))),
        "timestamp": _Signature(("string",), lambda layout: _go_time(layout, now())),
        "uuid": _Signature((), lambda: str(uuid.uuid4())),
    }


_NAMES: Final = frozenset(_functions(lambda: datetime.now(UTC)))


# -- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scope:
    display_name: str
    role_name: str
    functions: dict[str, _Signature]


def _type_name(value: Value) -> str:
    if isinstance(value, bool):
        return "bool"
    return "int" if isinstance(value, int) else "string"


def _argument(operand: _Operand, wanted: str, scope: _Scope) -> Value:
    """An argument of type `wanted`: a literal of another type is Go's "expected" error, a
    computed value of another type its "wrong type for value"."""
    if isinstance(operand, _Literal):
        if _type_name(operand.value) != wanted:
            expected = "integer" if wanted == "int" else wanted
            found = f"expected {expected}; found {operand}"
            raise _ExecError(operand.position, str(operand), found)
        return operand.value
    value = _operand(operand, scope)
    if _type_name(value) != wanted:
        raise _ExecError(
            operand.position,
            str(operand),
            f"wrong type for value; expected {wanted}; got {_type_name(value)}",
        )
    return value


def _operand(operand: _Operand, scope: _Scope) -> Value:
    if isinstance(operand, _Literal):
        return operand.value
    if isinstance(operand, _Field):
        if not operand.names:
            return f"{{{scope.display_name} {scope.role_name}}}"
        name = operand.names[0]
        if name not in _FIELDS or len(operand.names) > 1:
            bad = name if name not in _FIELDS else operand.names[1]
            owner = "dbplugin.UsernameMetadata" if name not in _FIELDS else "string"
            raise _ExecError(
                operand.position, str(operand), f"can't evaluate field {bad} in type {owner}"
            )
        return scope.display_name if name == "DisplayName" else scope.role_name
    if isinstance(operand, _Function):
        return _call(_Command((operand,), operand.position), None, scope)
    return _pipeline(operand, scope)


def _call(command: _Command, piped: Value | None, scope: _Scope) -> Value:
    head, *rest = command.operands
    if not isinstance(head, _Function):
        if rest or piped is not None:
            raise _ExecError(
                head.position, str(head), f"can't give argument to non-function {head}"
            )
        return _operand(head, scope)
    signature = scope.functions[head.name]
    given = len(rest) + (piped is not None)
    if signature.params is None:  # printf
        if given == 0:
            raise _ExecError(
                head.position, head.name, "wrong number of args for printf: want at least 1 got 0"
            )
        operands: Sequence[_Operand] = rest
        values: list[Value] = [_operand(operand, scope) for operand in operands]
        if piped is not None:
            values.append(piped)
        if not isinstance(values[0], str):
            raise _ExecError(head.position, str(command), "wrong type for value; expected string")
        return _printf(values[0], *values[1:])
    if given != len(signature.params):
        raise _ExecError(
            head.position,
            head.name,
            f"wrong number of args for {head.name}: want {len(signature.params)} got {given}",
        )
    # The piped value is the last parameter; the written arguments fill the others.
    written = signature.params[: len(rest)]
    args = [_argument(arg, wanted, scope) for arg, wanted in zip(rest, written, strict=True)]
    if piped is not None:
        wanted = signature.params[-1]
        if _type_name(piped) != wanted:
            raise _ExecError(
                command.position,
                str(command),
                f"wrong type for value; expected {wanted}; got {_type_name(piped)}",
            )
        args.append(piped)
    try:
        return signature.call(*args)
    except ValueError as error:
        raise _ExecError(
            command.position, str(command), f"error calling {head.name}: {error}"
        ) from None


def _pipeline(pipeline: _Pipeline, scope: _Scope) -> Value:
    value: Value | None = None
    for command in pipeline.commands:
        value = _call(command, value, scope)
    assert value is not None  # a pipeline has at least one command  # noqa: S101
    return value


def _text(value: Value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class UsernameTemplate:
    """A parsed `username_template`; `render` fills it in for one new user."""

    def __init__(
        self, source: str, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        """Parse `source`; `TemplateError` with Go's text if Go would refuse it."""
        if not source:
            raise TemplateError("missing template")
        self._source = source
        self._functions = _functions(now)
        self._parts = _Parser(source, _NAMES).parse()

    def render(self, *, display_name: str, role_name: str) -> str:
        """The username; `TemplateError` (Go's "executing" text) if a function fails."""
        scope = _Scope(display_name, role_name, self._functions)
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            try:
                out.append(_text(_pipeline(part, scope)))
            except _ExecError as error:
                line = _line(self._source, error.position)
                column = error.position - (self._source.rfind("\n", 0, error.position) + 1)
                raise TemplateError(
                    f'template: template:{line}:{column}: executing "template" at '
                    f"<{error.node}>: {error.message}"
                ) from None
        return "".join(out)
