"""Output like the Vault CLI: `Key  Value` tables under `== Title ==` lines, JSON, raw fields."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from tenantvault._durations import format_duration
from tenantvault.cli._text import printable

__all__ = [
    "FORMATS",
    "FieldMissingError",
    "Output",
    "Section",
    "View",
    "go_value",
    "human_duration",
    "table",
    "title",
]

FORMATS = ("table", "json")
_GLUE = "    "  # Vault's columnize glue between columns


def human_duration(seconds: Any) -> str:
    """Vault's humanDuration: Go's Duration.String() without zero tails (3600 → '1h')."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return go_value(seconds)
    text = format_duration(int(seconds))
    if text.endswith("m0s"):
        text = text[:-2]
    index = text.find("h0m")
    if index > 0:
        text = text[: index + 1] + text[index + 3 :]
    return text


def go_value(value: Any) -> str:
    """A JSON value as Go's `%v` prints it in Vault tables (`<nil>`, `[a b]`, `map[k:v]`)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(go_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = " ".join(f"{key}:{go_value(value[key])}" for key in sorted(value))
        return f"map[{items}]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cell(key: str, value: Any) -> str:
    if key == "period" or key.endswith("_period") or key == "ttl" or key.endswith("_ttl"):
        # Vault prints fields that look like TTLs as durations.
        return human_duration(value)
    if value == "":
        return "n/a"
    return go_value(value)


def table(
    rows: Sequence[tuple[str, Any]], *, header: tuple[str, str] = ("Key", "Value")
) -> list[str]:
    """Two columns padded like Vault's columnize, with the `---  -----` rule under the header."""
    cells = [(key, _cell(key, value)) for key, value in rows]
    lines = [header, ("-" * len(header[0]), "-" * len(header[1])), *cells]
    width = max(len(left) for left, _ in lines)
    return [f"{left.ljust(width)}{_GLUE}{right}".rstrip() for left, right in lines]


def title(text: str, width: int) -> str:
    """Vault's padEqualSigns: `== text ==` centred over `width` columns, at least two signs."""
    signs = width - (len(text) + 2)
    if signs <= 0:
        signs = 4
    if signs % 2:
        signs += 1
    return f"{'=' * (signs // 2)} {text} {'=' * (signs // 2)}"


def map_title(text: str, data: Mapping[str, Any]) -> str:
    """Vault's getHeaderForMap: the title width follows the longest key plus 'Value'."""
    longest = max((len(key) for key in data), default=0)
    return title(text, longest + len(_GLUE) + len("Value"))


@dataclass(frozen=True, slots=True)
class Section:
    """One block of table output: an optional `== title ==` line, then rows or raw lines."""

    heading: str | None = None
    rows: Sequence[tuple[str, Any]] | None = None
    lines: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class View:
    """What a command shows: `document` for -format=json, `sections` for the table, and
    `fields` for -field (the only way to print a masked value such as a token's id)."""

    document: Any
    sections: Sequence[Section] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)


class FieldMissingError(Exception):
    """-field named a field the response does not have."""


class Output:
    """Writes to the streams of this run in the requested format."""

    def __init__(self, stdout: TextIO, stderr: TextIO, *, format: str, field: str | None) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.format = format
        self.field = field

    @property
    def is_json(self) -> bool:
        return self.format == "json"

    def show(self, view: View) -> None:
        if self.field is not None:
            if self.field not in view.fields:
                raise FieldMissingError(self.field)
            self.raw_field(view.fields[self.field])
        elif self.is_json:
            self.json(view.document)
        else:
            self.sections(view.sections)

    def json(self, document: Any) -> None:
        # Go's encoder keeps non-ASCII text as UTF-8 and escapes control characters; so does this.
        self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")

    def raw_field(self, value: Any) -> None:
        """One value, unformatted, for `$(tenantvault … -field=x)`; like Vault, a newline only
        when a person is looking (a TTY)."""
        if self.is_json:
            self.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
            return
        if isinstance(value, str):
            text = value
        elif isinstance(value, dict | list):
            # JSON rather than Go's `map[…]`: a raw field is for programs, and they parse JSON.
            text = json.dumps(value, ensure_ascii=False)
        else:
            text = go_value(value)
        self.stdout.write(text)
        if self.stdout.isatty():
            self.stdout.write("\n")

    def sections(self, sections: Sequence[Section]) -> None:
        blocks: list[str] = []
        for section in sections:
            block: list[str] = []
            if section.heading is not None:
                block.append(section.heading)
            if section.rows is not None:
                block.extend(table(section.rows))
            block.extend(section.lines)
            blocks.append("\n".join(printable(line) for line in block))
        if blocks:
            self.stdout.write("\n\n".join(blocks) + "\n")

    def line(self, text: str) -> None:
        self.stdout.write(printable(text) + "\n")

    def keys(self, keys: Sequence[str], *, header: str = "Keys") -> None:
        """A list result: Vault prints a one-column table, or the bare JSON array."""
        if self.is_json:
            self.json(list(keys))
            return
        self.stdout.write("\n".join(printable(line) for line in [header, "-" * len(header), *keys]))
        self.stdout.write("\n")

    def error(self, text: str) -> None:
        self.stderr.write(printable(text) + "\n")
