"""Acceptance 6 end to end: a ciphertext moved to another tenant's or path's row never decrypts.

Secrets are written through the public API; the test then edits the SQLite file directly, as
an attacker with the disk would, and reads through the API again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import tenantvault
from tenantvault import IntegrityError
from tests.conftest import canary


def _rows(db: Path, tenant: str, prefix: str) -> dict[str, bytes]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT key, value FROM records"
            " WHERE tenant = ? AND mount LIKE 'mount/%' AND key LIKE ?",
            (tenant, prefix + "%"),
        ).fetchall()
    conn.close()
    return {key: value for key, value in rows}


def _set(db: Path, tenant: str, key: str, value: bytes) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE records SET value = ? WHERE tenant = ? AND mount LIKE 'mount/%' AND key = ?",
            (value, tenant, key),
        )
    conn.close()


@pytest.fixture
async def store(tmp_path: Path) -> Path:
    async with tenantvault.open(f"sqlite://{tmp_path / 'data'}") as tv:
        await tv.create_tenant("acme")
        await tv.create_tenant("beta")
        await tv.tenant("acme").kv.put("app/db", {"password": canary("acme-")})
        await tv.tenant("beta").kv.put("app/db", {"password": canary("beta-")})
        await tv.tenant("beta").kv.put("other", {"password": canary("beta-")})
    return tmp_path / "data"


async def test_a_row_copied_from_another_tenant_fails_to_decrypt(store: Path) -> None:
    db = store / "tenantvault.db"
    ((_acme_key, acme_value),) = _rows(db, "acme", "data/app/db|").items()
    ((beta_key, _),) = _rows(db, "beta", "data/app/db|").items()
    _set(db, "beta", beta_key, acme_value)
    async with tenantvault.open(f"sqlite://{store}") as tv:
        with pytest.raises(IntegrityError, match="failed authentication") as caught:
            await tv.tenant("beta").kv.get("app/db")
        assert "CANARY" not in str(caught.value)
        assert (await tv.tenant("acme").kv.get("app/db")).version == 1


async def test_a_row_copied_to_another_path_or_version_fails_to_decrypt(store: Path) -> None:
    db = store / "tenantvault.db"
    ((_db_key, db_value),) = _rows(db, "beta", "data/app/db|").items()
    ((other_key, _),) = _rows(db, "beta", "data/other|").items()
    _set(db, "beta", other_key, db_value)
    async with tenantvault.open(f"sqlite://{store}") as tv:
        with pytest.raises(IntegrityError):
            await tv.tenant("beta").kv.get("other")
        assert (await tv.tenant("beta").kv.get("app/db")).version == 1


async def test_metadata_moved_between_tenants_fails_too(store: Path) -> None:
    db = store / "tenantvault.db"
    acme_meta = _rows(db, "acme", "meta/app/db")["meta/app/db"]
    _set(db, "beta", "meta/app/db", acme_meta)
    async with tenantvault.open(f"sqlite://{store}") as tv:
        with pytest.raises(IntegrityError):
            await tv.tenant("beta").kv.get("app/db")
