"""Serves the dashboard's files from the package (`static/`), with strict security headers."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Final

__all__ = ["UI_HEADERS", "ui_reply"]

Reply = tuple[int, list[tuple[bytes, bytes]], bytes]

# No inline script or style, nothing from another origin, no framing, no referrer: the page
# handles tokens, so anything injected must find nothing to run and nowhere to send it.
CSP: Final = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    b"frame-ancestors 'none'"
)
UI_HEADERS: Final = (
    (b"content-security-policy", CSP),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_TYPES: Final = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".txt": b"text/plain; charset=utf-8",
}


@functools.cache
def _files() -> dict[bytes, tuple[bytes, bytes]]:
    """Every served file by its URL path: (content type, bytes), read once from the wheel.

    A fixed table, so a request path is only ever looked up, never joined onto a directory:
    no traversal is possible whatever it holds.
    """
    root = resources.files("tenantvault.ui") / "static"
    table: dict[bytes, tuple[bytes, bytes]] = {}

    def walk(node: resources.abc.Traversable, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
                continue
            suffix = "." + child.name.rpartition(".")[2]
            if suffix in _TYPES:
                table[f"/ui/{prefix}{child.name}".encode()] = (_TYPES[suffix], child.read_bytes())

    walk(root, "")
    table[b"/ui/"] = table[b"/ui"] = table[b"/ui/index.html"]
    return table


def ui_reply(method: str, path: bytes) -> Reply | None:
    """The answer to a `/ui` request: a file, 404, or 405; None if `path` is not under /ui."""
    if path != b"/ui" and not path.startswith(b"/ui/"):
        return None
    headers = list(UI_HEADERS)
    if method not in ("GET", "HEAD"):
        return 405, [*headers, (b"allow", b"GET, HEAD")], b""
    found = _files().get(path)
    if found is None:
        return 404, [*headers, (b"content-type", b"text/plain; charset=utf-8")], b"not found"
    content_type, body = found
    return 200, [*headers, (b"content-type", content_type)], body
