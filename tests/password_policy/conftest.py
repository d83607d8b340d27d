"""Fixtures for the password policy tests: the in-process server of `tests/server`."""

from __future__ import annotations

from tests.server.conftest import (  # noqa: F401 -- fixtures, re-exported for these tests
    app,
    client,
    logs,
    root_token,
    settings,
    vault,
)
