"""The dashboard's files at /ui/: served from the package when enabled (as `serve` does),
each with the strict security headers; nothing outside the shipped table; off by default
for an embedding application's create_app()."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tenantvault._config import ServerSettings
from tenantvault.server import TenantVaultApp, create_app
from tests.server.conftest import raw_call


@pytest.fixture
async def with_dashboard(root_token: str) -> AsyncIterator[TenantVaultApp]:
    settings = ServerSettings(dev=True, dev_root_token=root_token, dashboard=True)
    async with create_app(settings) as app:
        yield app


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        (b"/ui/", b"text/html; charset=utf-8"),
        (b"/ui", b"text/html; charset=utf-8"),
        (b"/ui/app.js", b"text/javascript; charset=utf-8"),
        (b"/ui/app.css", b"text/css; charset=utf-8"),
        (b"/ui/vendor/uPlot.iife.min.js", b"text/javascript; charset=utf-8"),
    ],
)
async def test_files_are_served_with_strict_headers(
    with_dashboard: TenantVaultApp, path: bytes, content_type: bytes
) -> None:
    reply = await raw_call(with_dashboard, "GET", path)
    assert reply.status == 200
    assert reply.headers[b"content-type"] == content_type
    csp = reply.headers[b"content-security-policy"]
    assert b"default-src 'none'" in csp
    assert b"script-src 'self'" in csp
    assert b"unsafe-inline" not in csp
    assert reply.headers[b"x-frame-options"] == b"DENY"
    assert reply.headers[b"x-content-type-options"] == b"nosniff"
    assert reply.headers[b"cache-control"] == b"no-store"


@pytest.mark.parametrize(
    "path",
    [
        b"/ui/../v1/sys/health",
        b"/ui/%2e%2e/app.js",
        b"/ui/missing.js",
        b"/ui/vendor/",
        b"/ui//app.js",
    ],
)
async def test_anything_else_under_ui_is_404(with_dashboard: TenantVaultApp, path: bytes) -> None:
    reply = await raw_call(with_dashboard, "GET", path)
    assert reply.status == 404
    assert reply.headers[b"x-frame-options"] == b"DENY"


async def test_only_get_and_head(with_dashboard: TenantVaultApp) -> None:
    assert (await raw_call(with_dashboard, "POST", b"/ui/")).status == 405
    head = await raw_call(with_dashboard, "HEAD", b"/ui/")
    assert head.status == 200
    assert head.body == b""


async def test_off_unless_enabled(app: TenantVaultApp) -> None:
    reply = await raw_call(app, "GET", b"/ui/")
    assert (reply.status, reply.body) == (404, b'{"errors":[]}')
