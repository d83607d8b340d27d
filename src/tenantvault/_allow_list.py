"""Operator URL allow-lists (rotation webhooks, JWKS URLs): one parser, one comparison.

A tenant admin names URLs the server will call; the operator allows prefixes. Entries and
candidates are compared as parsed URLs, never as strings, so that neither
`https://hooks.example.com.evil.net/` nor `https://hooks.example.com@evil/` passes for the
prefix `https://hooks.example.com`.
"""

from __future__ import annotations

from yarl import URL

from tenantvault._exceptions import ConfigurationError

__all__ = ["check_allow_prefix", "is_allowed_url"]


def check_allow_prefix(prefix: str, *, flag: str) -> URL:
    """An allow-list entry: an absolute http(s) URL with a host and nothing after the path;
    `ConfigurationError` naming `flag` otherwise (so a typo stops `serve` before it binds)."""
    try:
        url = URL(prefix)
    except ValueError:
        raise ConfigurationError(f"a {flag} entry is not a URL") from None
    if (
        url.scheme not in ("http", "https")
        or not url.host
        or url.user is not None
        or url.password is not None
        or url.query_string
        or url.fragment
    ):
        raise ConfigurationError(f"{flag} entries must be http(s)://host[:port][/path] URLs")
    return url


def is_allowed_url(raw: str, allow: tuple[str, ...]) -> bool:
    """Whether `raw` is under one of the `allow` prefixes: scheme, host and port equal, the
    path continuing the prefix's at a segment boundary, no credentials."""
    try:
        url = URL(raw)
    except ValueError:
        return False
    if (
        url.scheme not in ("http", "https")
        or not url.host
        or url.user is not None
        or url.password is not None
        or url.fragment
        or not url.is_absolute()
    ):
        return False
    for entry in allow:
        prefix = URL(entry)
        if (url.scheme, url.host, url.port) != (prefix.scheme, prefix.host, prefix.port):
            continue
        base = prefix.raw_path or "/"
        path = url.raw_path or "/"
        if base.endswith("/") and path.startswith(base):
            return True
        if path == base or path.startswith(base + "/"):
            return True
    return False
