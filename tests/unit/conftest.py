"""Fixtures shared by the unit tests of the embedded store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tenantvault.backends._sqlite import SqliteBackend


@pytest.fixture
async def acme(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    """An embedded store in a fresh data directory, holding tenant `acme`."""
    opened = await SqliteBackend.open(tmp_path / "data")
    try:
        await opened.create_tenant("acme")
        yield opened
    finally:
        await opened.aclose()
