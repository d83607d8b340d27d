"""Tenant ids and secret paths: decode once, validate once, one canonical form used everywhere.

Invalid input is rejected with `InvalidPathError`, never repaired: nothing here trims,
case-folds, normalizes or resolves `..`. A string either already is canonical or is refused,
so two spellings can never alias one stored object or one policy rule.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from tenantvault._exceptions import InvalidPathError

__all__ = [
    "MAX_PATH_BYTES",
    "MAX_PATH_SEGMENTS",
    "MAX_SEGMENT_BYTES",
    "RESERVED_TENANT_IDS",
    "SecretPath",
    "check_request_path",
    "decode_raw_path",
    "parse_path",
    "validate_name",
    "validate_tenant_id",
]

MAX_PATH_BYTES = 512
MAX_PATH_SEGMENTS = 32
MAX_SEGMENT_BYTES = 255

_TENANT_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")
# Names a tenant can never take: Vault's protected prefixes (sys, auth, audit, identity,
# cubbyhole: served or reserved in every namespace, so a path-prefix namespace could never be
# told from them), and names that read like the root or operator scope in logs, URLs and
# policies. Mount paths are not listed: the root namespace's mount table is checked instead
# (a tenant id never equals a root mount's first segment, nor a mount a tenant id).
RESERVED_TENANT_IDS = frozenset(
    {
        "root",
        "sys",
        "auth",
        "audit",
        "identity",
        "cubbyhole",
        "default",
        "health",
        "metrics",
        "internal",
        "system",
        "admin",
        "v1",
        "ui",
    }
)

# ASCII punctuation allowed inside a path segment. Everything with a meaning somewhere —
# policy globs (* +), URL syntax (% ? #), separators (/ \\ ; ,), templates ({ } [ ]),
# quoting and whitespace — stays out, so a path can never smuggle syntax.
_SEGMENT_PUNCTUATION = frozenset("-_.@=:~")
# Unicode categories allowed beyond ASCII: letters, marks (combining accents in NFC text)
# and numbers. Excludes controls (Cc), format characters such as bidi overrides and
# zero-width spaces (Cf), separators (Z*) and symbols.
_SEGMENT_CATEGORIES = ("L", "M", "N")
# Names of policies, keys and other objects: ASCII only, like Vault's, so that a name in
# a URL, a policy and a log line is the same string.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@=:~-]{0,127}\Z")


def validate_tenant_id(tenant: str) -> str:
    """Return `tenant` unchanged if it is a valid tenant id, else raise `InvalidPathError`."""
    if not isinstance(tenant, str) or not _TENANT_RE.match(tenant):
        raise InvalidPathError(
            "invalid tenant id: use 1-63 lowercase ASCII letters, digits and '-', "
            "starting with a letter or digit"
        )
    if tenant in RESERVED_TENANT_IDS:
        raise InvalidPathError("invalid tenant id: the name is reserved")
    return tenant


def validate_name(name: str, *, kind: str = "name") -> str:
    """Validate an object name (policy, transit key): ASCII, 1-128 characters, no syntax."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise InvalidPathError(
            f"invalid {kind}: use 1-128 ASCII letters, digits and '-_.@=:~', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class SecretPath:
    """A validated, canonical path relative to a mount; `is_dir` when it ended with '/'."""

    segments: tuple[str, ...]
    is_dir: bool = False

    @property
    def key(self) -> str:
        """The canonical form without the directory marker: 'a/b/c'."""
        return "/".join(self.segments)

    def __str__(self) -> str:
        return self.key + ("/" if self.is_dir and self.segments else "")


def _check_segment(segment: str) -> None:
    if segment == "":
        raise InvalidPathError("invalid path: empty segment")
    if segment in (".", ".."):
        raise InvalidPathError("invalid path: '.' and '..' segments are not allowed")
    if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
        raise InvalidPathError(f"invalid path: segment longer than {MAX_SEGMENT_BYTES} bytes")
    for char in segment:
        if char.isascii():
            if not (char.isalnum() or char in _SEGMENT_PUNCTUATION):
                raise InvalidPathError("invalid path: character not allowed in a path")
        elif not unicodedata.category(char).startswith(_SEGMENT_CATEGORIES):
            raise InvalidPathError("invalid path: character not allowed in a path")


def parse_path(path: str, *, allow_dir: bool = False, allow_empty: bool = False) -> SecretPath:
    """Validate a mount-relative path and return its canonical form.

    `allow_dir` accepts one trailing '/' (a directory, for LIST); `allow_empty` accepts ''
    (the mount root, for LIST). Everything else outside the grammar raises `InvalidPathError`.
    """
    if not isinstance(path, str):
        raise InvalidPathError("invalid path: not a string")
    if path == "" or (allow_dir and path == "/"):
        if allow_empty:
            return SecretPath((), is_dir=True)
        raise InvalidPathError("invalid path: empty path")
    if len(path) > MAX_PATH_BYTES or len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidPathError(f"invalid path: longer than {MAX_PATH_BYTES} bytes")
    # Lone surrogates cannot be stored or compared reliably; NFC is checked on valid text only.
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPathError("invalid path: not valid Unicode") from None
    if not unicodedata.is_normalized("NFC", path):
        raise InvalidPathError("invalid path: not in Unicode normalization form NFC")
    is_dir = False
    body = path
    if allow_dir and body.endswith("/"):
        is_dir = True
        body = body[:-1]
    segments = body.split("/")
    if len(segments) > MAX_PATH_SEGMENTS:
        raise InvalidPathError(f"invalid path: more than {MAX_PATH_SEGMENTS} segments")
    for segment in segments:
        _check_segment(segment)
    return SecretPath(tuple(segments), is_dir=is_dir)


# Characters a request path may never hold, whatever an engine's grammar for the route says:
# escape syntax that would mean a second decoding, and separators of other systems.
_FORBIDDEN_IN_REQUEST_PATH = frozenset("\\%?#")
# The common case, checked in one pass: segments of plain ASCII name characters, none of
# them '.' or '..', no empty one, an optional trailing '/'. Anything else takes the slow path.
_PLAIN_REQUEST_PATH = re.compile(
    r"(?:(?!\.\.?(?:/|\Z))[A-Za-z0-9_.@=:~-]+/)*(?:(?!\.\.?\Z)[A-Za-z0-9_.@=:~-]+)?\Z"
)


def check_request_path(path: str) -> str:
    """Return a whole request path ('acme/secret/data/app', decoded) unchanged if no route
    could misread it, else raise `InvalidPathError`.

    The Core checks every request with it before anything else (every surface alike); each
    engine then parses its mount-relative part with `parse_path`. Refused: control and
    format characters, whitespace, `\\ % ? #`, '.' or '..' segments and empty segments; a
    trailing '/' is kept (a directory, for LIST).
    """
    if _PLAIN_REQUEST_PATH.match(path):
        return path
    if not path.isprintable() or " " in path or not _FORBIDDEN_IN_REQUEST_PATH.isdisjoint(path):
        raise InvalidPathError("invalid path: character not allowed in a path")
    segments = path.split("/")
    if segments[-1] == "":
        segments.pop()  # a trailing '/' marks a directory
    for segment in segments:
        if segment in ("", ".", ".."):
            # Rejected, never resolved: 'a/../b' is not 'b', and 'a//b' names no key; a
            # path repaired here would be authorized in one form and stored in another.
            raise InvalidPathError("invalid path: empty, '.' and '..' segments are not allowed")
    return path


_HEX = frozenset("0123456789abcdefABCDEF")


def decode_raw_path(raw: bytes) -> str:
    """Percent-decode a raw URL path exactly once, refusing what decoding would hide.

    Encoded separators (`%2F`, `%5C`), encoded NUL and malformed escapes are refused here,
    because after decoding they could no longer be told from the real thing; the decoded
    string then goes through `parse_path` like any other.
    """
    if b"?" in raw or b"#" in raw:
        raise InvalidPathError("invalid path: unexpected '?' or '#'")
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        byte = raw[i]
        if byte == 0x25:  # '%'
            if i + 2 >= n:
                raise InvalidPathError("invalid path: malformed percent-escape")
            hi, lo = chr(raw[i + 1]), chr(raw[i + 2])
            if hi not in _HEX or lo not in _HEX:
                raise InvalidPathError("invalid path: malformed percent-escape")
            value = int(hi + lo, 16)
            if value in (0x2F, 0x5C):
                raise InvalidPathError("invalid path: encoded '/' or '\\' is not allowed")
            if value < 0x20 or value == 0x7F:
                raise InvalidPathError("invalid path: encoded control characters are not allowed")
            out.append(value)
            i += 3
        else:
            out.append(byte)
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPathError("invalid path: not valid UTF-8") from None
