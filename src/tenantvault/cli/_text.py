"""Text hygiene for everything the CLI prints: escape control characters, redact secrets."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["REDACTED", "Redactor", "printable"]

REDACTED = "<redacted>"
# Values shorter than this are not redacted inside messages: replacing every "a" or "on" would
# garble the text, and a value that short is no secret worth hiding.
_MIN_REDACT_LENGTH = 4


def printable(text: str) -> str:
    """Escape control and format characters (ANSI escapes, bidi overrides) so that text from
    the server or a file cannot drive the user's terminal; newlines and tabs stay."""
    out: list[str] = []
    for char in text:
        if char.isprintable() or char in "\n\t":
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


class Redactor:
    """The sensitive strings of one CLI run (the token, submitted values), removed from any
    error text before it is printed: defence in depth behind a server that never echoes them."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value is not None and len(value) >= _MIN_REDACT_LENGTH:
                self._values.add(value)

    def add_all(self, values: Iterable[str]) -> None:
        self.add(*values)

    def __call__(self, text: str) -> str:
        # Longest first, so a value that contains another is removed whole.
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text

    def __repr__(self) -> str:
        return f"<Redactor {len(self._values)} values>"
