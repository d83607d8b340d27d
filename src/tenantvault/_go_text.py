"""Go's spellings in Vault's error texts: hashicorp/go-multierror lists and `%q` quoting.

Clients and scripts match OpenBao's texts word for word; where OpenBao builds one with these
Go helpers, the same helper here gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["go_quote", "multierror"]

_ESCAPES = {
    "\a": r"\a",
    "\b": r"\b",
    "\f": r"\f",
    "\n": r"\n",
    "\r": r"\r",
    "\t": r"\t",
    "\v": r"\v",
    "\\": r"\\",
    '"': r"\"",
}


def multierror(messages: Sequence[str]) -> str:
    """go-multierror's `Error()`: "1 error occurred:\\n\\t* …\\n\\n" (or "N errors …")."""
    head = "1 error occurred" if len(messages) == 1 else f"{len(messages)} errors occurred"
    return f"{head}:\n" + "".join(f"\t* {message}\n" for message in messages) + "\n"


def go_quote(text: str) -> str:
    """Go's `strconv.Quote` (`%q`): printable characters kept, the others escaped."""
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)
