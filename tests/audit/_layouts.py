"""The audit store's layouts for tests: the partitioned one read whole, the single-table one
of earlier releases rebuilt from it (a store "built in the old layout", from real traffic)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tenantvault.audit import StoreSink

# The single-table layout, as releases before partitions created it (`tenant_uid` was added
# by ALTER TABLE to stores older still, hence its place at the end).
OLD_TABLE = (
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, time_ns INTEGER NOT NULL,"
    " type TEXT NOT NULL, request_id TEXT NOT NULL, tenant TEXT NOT NULL,"
    " operation TEXT NOT NULL, mount TEXT NOT NULL, path TEXT NOT NULL,"
    " outcome TEXT NOT NULL, status INTEGER NOT NULL, accessor TEXT NOT NULL,"
    " entry BLOB NOT NULL, tenant_uid TEXT NOT NULL DEFAULT '')"
)
OLD_INDEXES = (
    "CREATE INDEX events_tenant_time ON events (tenant, time_ns)",
    "CREATE INDEX events_tenant_uid_time ON events (tenant_uid, time_ns)",
    "CREATE INDEX events_request ON events (request_id)",
)
_COLUMNS = "id, seq, time_ns, type, request_id, operation, mount, path, outcome, status, accessor"


def catalog(store: StoreSink | sqlite3.Connection) -> dict[tuple[str, str], int]:
    """(tenant, tenant_uid) → partition number."""
    sql = "SELECT tenant, tenant_uid, id FROM audit_partitions"
    rows = store.query(sql, ()) if isinstance(store, StoreSink) else store.execute(sql)
    return {(str(t), str(u)): int(n) for t, u, n in rows}


def store_rows(store: StoreSink, columns: str = "id, entry") -> list[tuple[Any, ...]]:
    """Every row of every partition, in id order (the first column must be `id`)."""
    rows = [
        row
        for number in catalog(store).values()
        for row in store.query(f"SELECT {columns} FROM events_{number}", ())  # noqa: S608 -- test SQL
    ]
    return sorted(rows, key=lambda row: int(row[0]))


def to_single_table(db: Path, *, with_uid: bool = True) -> int:
    """Rewrite a closed partitioned store as the single-table layout; returns its rows.

    Without `with_uid`, as stores from before incarnation ids: no `tenant_uid` column.
    """
    with sqlite3.connect(db) as conn:
        conn.execute(OLD_TABLE)
        for statement in OLD_INDEXES:
            conn.execute(statement)
        for (tenant, uid), number in catalog(conn).items():
            conn.execute(
                f"INSERT INTO events ({_COLUMNS}, entry, tenant, tenant_uid)"  # noqa: S608 -- test SQL
                f" SELECT {_COLUMNS}, entry, ?, ? FROM events_{number}",
                (tenant, uid),
            )
            conn.execute(f"DROP TABLE events_{number}")
        conn.execute("DROP TABLE audit_partitions")
        conn.execute("DROP TABLE audit_head")
        if not with_uid:
            conn.execute("DROP INDEX events_tenant_uid_time")
            conn.execute("ALTER TABLE events DROP COLUMN tenant_uid")
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
    conn.close()
    return int(count)
