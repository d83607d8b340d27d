"""HCL 1 and JSON policy documents to one small syntax tree, with the policy error helpers."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Final, NamedTuple, NoReturn, TypeAlias

from tenantvault._exceptions import InvalidRequestError

__all__ = ["MAX_SHOWN", "Item", "Object", "Value", "fail", "parse_hcl", "parse_json", "shown"]

# A policy needs four levels at most (document, path block, allowed_parameters, value list);
# the slack is for harmless style, the cap keeps the recursive parser's stack small.
_MAX_NESTING: Final = 10
# Longer or unprintable user text is never copied into an error message.
MAX_SHOWN: Final = 64


def shown(value: object) -> str:
    """`value` quoted for an error message when short and printable, else a placeholder."""
    if isinstance(value, str) and len(value) <= MAX_SHOWN and value.isprintable():
        return repr(value)
    return "(not shown)"


def fail(message: str) -> NoReturn:
    """Raise the one error a bad policy document gets."""
    raise InvalidRequestError(f"invalid policy: {message}")


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
    fail(f"line {line}, column {column}: {message}")


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
            named = shown(char) if char.isascii() else "(not shown)"
            _syntax(line, column, f"unexpected character {named}")
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
class Item:
    """One `key = value` or `key "label" { ... }` of an object."""

    keys: tuple[str, ...]  # `path "secret/*" { ... }` has keys ("path", "secret/*")
    value: Value
    line: int  # 0 when unknown (JSON)


@dataclass(slots=True)
class Object:
    """An HCL block or JSON object, its items in document order."""

    # A list, not a dict: duplicate keys must stay visible (merged or refused later).
    items: list[Item]


Value: TypeAlias = "str | int | float | bool | list[Value] | Object"


class _Parser:
    """Recursive descent over HCL 1's object grammar, limited to what policies use."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0

    def document(self) -> Object:
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

    def _body(self, depth: int, closing: str) -> Object:
        items: list[Item] = []
        while self._peek().kind != closing:
            items.append(self._item(depth))
            # HCL 1 allows a comma between the items of an object.
            if self._peek().kind == ",":
                self._next()
        self._next()
        return Object(items)

    def _item(self, depth: int) -> Item:
        first = self._peek()
        keys: list[str] = []
        while self._peek().kind in ("ident", "string"):
            keys.append(str(self._next().value))
        if not keys:
            self._unexpected(first, "a key")
        token = self._next()
        value: Value
        if token.kind == "=":
            if len(keys) > 1:
                _syntax(token.line, token.column, "a block with labels must open with '{'")
            value = self._value(depth)
        elif token.kind == "{":
            value = self._body(self._deeper(depth, token), "}")
        else:
            self._unexpected(token, "'=' or '{'")
        return Item(tuple(keys), value, first.line)

    def _value(self, depth: int) -> Value:
        token = self._next()
        if token.kind in ("string", "number"):
            return token.value
        if token.kind == "ident":
            if token.value in ("true", "false"):
                return token.value == "true"
            _syntax(token.line, token.column, "expected a value; strings must be quoted")
        if token.kind == "[":
            inner = self._deeper(depth, token)
            values: list[Value] = []
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
    fail(f"JSON constant {shown(name)} is not allowed")


def parse_json(text: str) -> Object:
    """The syntax tree of a JSON policy document; `InvalidRequestError` if malformed."""
    try:
        document = json.loads(
            text,
            object_pairs_hook=lambda pairs: Object([Item((k,), v, 0) for k, v in pairs]),
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as error:
        fail(f"malformed JSON at line {error.lineno}, column {error.colno}")
    except RecursionError:
        fail("JSON nested too deeply")
    except ValueError:  # e.g. an integer beyond Python's digit limit
        fail("malformed JSON")
    if not isinstance(document, Object):
        fail("a JSON policy must be an object")
    return document


def parse_hcl(text: str) -> Object:
    """The syntax tree of an HCL 1 policy document; `InvalidRequestError` if malformed."""
    return _Parser(_tokenize(text)).document()
