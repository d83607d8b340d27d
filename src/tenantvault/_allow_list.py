"""Operator allow-lists (rotation webhooks, JWKS URLs, database hosts): one parser, one
comparison.

A tenant admin names URLs the server will call; the operator allows prefixes. Entries and
candidates are compared as parsed URLs, never as strings, so that neither
`https://hooks.example.com.evil.net/` nor `https://hooks.example.com@evil/` passes for the
prefix `https://hooks.example.com`. Host allow-lists (`HOST[:PORT]`, for database
connections) are parsed the same way, so `DB.example.com`, `[0::1]` and `[::1]` compare as
the hosts they name.
"""

from __future__ import annotations

from yarl import URL

from tenantvault._exceptions import ConfigurationError

__all__ = ["check_allow_host", "check_allow_prefix", "is_allowed_host", "is_allowed_url"]


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


def _host_port(raw: str, default_port: int) -> tuple[str, int] | None:
    """`HOST[:PORT]` as (normalized host, port), or None if it is anything more."""
    try:
        url = URL(f"tcp://{raw}")
        port = url.explicit_port
    except ValueError:
        return None
    if (
        not url.host
        or url.user is not None
        or url.password is not None
        or url.raw_path not in ("", "/")
        or url.query_string
        or url.fragment
        or "/" in raw
    ):
        return None
    return url.host, port if port is not None else default_port


def check_allow_host(entry: str, *, flag: str, default_port: int) -> tuple[str, int]:
    """A host allow-list entry `HOST[:PORT]` (no port: `default_port`) as (host, port);
    `ConfigurationError` naming `flag` otherwise."""
    parsed = _host_port(entry, default_port)
    if parsed is None:
        raise ConfigurationError(f"{flag} entries must be HOST or HOST:PORT")
    return parsed


def is_allowed_host(host: str, port: int, allow: tuple[str, ...], *, default_port: int) -> bool:
    """Whether (`host`, `port`) is one of the `allow` entries (hosts compared as parsed)."""
    candidate = _host_port(f"[{host}]" if ":" in host else host, default_port)
    if candidate is None:
        return False
    wanted = (candidate[0], port)
    return any(_host_port(entry, default_port) == wanted for entry in allow)
