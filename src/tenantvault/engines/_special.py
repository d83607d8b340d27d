"""Paths an engine type serves without a token: Vault's `PathsSpecial.Unauthenticated`.

An engine type declares them once, as Vault's backends do, in Vault's pattern syntax: an exact
mount-relative path (`ca/pem`), a prefix ending in `*` (`cert/*`), or segments where `+`
stands for any one segment (`issuer/+/pem`). Only the Core reads the declaration: a request
whose token does not authenticate (none sent, or not valid) on such a path runs as no one, in
the namespace its header or path prefix names; a request with a valid token runs as its
holder, in its own tenant, and needs no capability there (Vault checks no ACL on these paths).
Every such request is audited like any other.
"""

from __future__ import annotations

from typing import Protocol, final, runtime_checkable

from tenantvault._request import Operation

__all__ = ["PathPatterns", "SpecialPaths", "is_unauthenticated"]


@final
class PathPatterns:
    """A set of Vault path patterns (exact, `*` prefix, `+` segment), matched as Vault's
    router matches `PathsSpecial` (`pathMatchesWildcardPath`)."""

    __slots__ = ("_exact", "_prefixes", "_wildcards")

    def __init__(self, patterns: tuple[str, ...]) -> None:
        exact: set[str] = set()
        prefixes: list[str] = []
        wildcards: list[tuple[tuple[str, ...], bool]] = []
        for pattern in patterns:
            is_prefix = pattern.endswith("*")
            body = pattern[:-1] if is_prefix else pattern
            if "+" in body.split("/"):
                wildcards.append((tuple(body.split("/")), is_prefix))
            elif is_prefix:
                prefixes.append(body)
            else:
                exact.add(body)
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        self._wildcards = tuple(wildcards)

    def matches(self, path: str) -> bool:
        """Whether the mount-relative `path` is one of the patterns."""
        if path in self._exact or path.startswith(self._prefixes):
            return True
        parts = path.split("/")
        return any(_segments_match(parts, *wildcard) for wildcard in self._wildcards)

    def __repr__(self) -> str:
        return f"PathPatterns(exact={sorted(self._exact)!r}, prefixes={self._prefixes!r})"


def _segments_match(parts: list[str], segments: tuple[str, ...], is_prefix: bool) -> bool:
    """Vault's wildcard match: `+` is any one segment; with a `*` pattern the last segment is
    a prefix and more segments may follow."""
    if len(parts) < len(segments) or (not is_prefix and len(parts) > len(segments)):
        return False
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if segment == "+":
            continue
        if is_prefix and index == last:
            if not parts[index].startswith(segment):
                return False
        elif parts[index] != segment:
            return False
    return True


@runtime_checkable
class SpecialPaths(Protocol):
    """An engine type with paths served without a token (most engines have none)."""

    @property
    def unauthenticated_paths(self) -> PathPatterns:
        """The mount-relative paths any caller may reach, with or without a token."""
        ...


def is_unauthenticated(engine: object, operation: Operation, path: str) -> bool:
    """Whether `engine` declares the mount-relative `path` unauthenticated.

    A LIST is matched with a trailing '/', as Vault appends one (`issuers/`).
    """
    # Not `isinstance(engine, SpecialPaths)`: a runtime protocol check walks the protocol's
    # attributes on every call, and this runs on every request to a mount.
    patterns: PathPatterns | None = getattr(engine, "unauthenticated_paths", None)
    if patterns is None:
        return False
    if operation is Operation.LIST and not path.endswith("/"):
        path += "/"
    return patterns.matches(path)
