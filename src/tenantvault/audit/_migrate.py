"""Bring an audit store of the single-table layout to the partitioned one (`_layout`).

Earlier releases kept every tenant's entries in one `events` table with `tenant` and (later)
`tenant_uid` columns. The migration copies each (tenant, tenant_uid) pair's rows into a
partition of its own, keeping their row ids (so `next` cursors stay valid) and their sealed
entries byte for byte (so the chain still verifies), then drops the old table.

It runs inside the caller's write transaction: SQLite makes the whole of it atomic, so a
crash part way leaves the old layout as it was, and the next open migrates again.
"""

from __future__ import annotations

import sqlite3

import orjson

from tenantvault.audit._chain import GENESIS
from tenantvault.audit._layout import (
    PARTITION_COLUMNS,
    ROOT_PARTITION,
    create_layout,
    create_partition,
    table_of,
)

__all__ = ["has_single_table", "migrate_single_table"]


def has_single_table(conn: sqlite3.Connection) -> bool:
    """Whether the database holds the single-table layout's `events` table."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
    ).fetchone()
    return row is not None


def migrate_single_table(conn: sqlite3.Connection) -> int:
    """Move the `events` table's rows into partitions (in the caller's transaction).

    Returns how many partitions it made. Rows from before incarnation ids (no `tenant_uid`,
    or '') go to a partition of their tenant with an empty incarnation id: no tenant's view
    is ever bound to it, so, as before, only root's queries see them.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    uid = "tenant_uid" if "tenant_uid" in columns else "''"
    last = conn.execute("SELECT id, seq, entry FROM events ORDER BY id DESC LIMIT 1").fetchone()
    if last is None:
        create_layout(conn, last_id=0, seq=0, digest=GENESIS)
    else:
        digest = str(orjson.loads(last[2])["hash"])
        create_layout(conn, last_id=int(last[0]), seq=int(last[1]), digest=digest)
    pairs = conn.execute(
        f"SELECT tenant, {uid} FROM events GROUP BY tenant, {uid} ORDER BY min(id)"  # noqa: S608 -- a fixed column name or ''
    ).fetchall()
    names = ", ".join(PARTITION_COLUMNS)
    number = ROOT_PARTITION
    for tenant, tenant_uid in pairs:
        if tenant == "" and tenant_uid == "":
            table = table_of(ROOT_PARTITION)
        else:
            number += 1
            table = create_partition(conn, number, str(tenant), str(tenant_uid))
        conn.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM events"  # noqa: S608 -- fixed names
            f" WHERE tenant = ? AND {uid} = ?",
            (tenant, tenant_uid),
        )
    conn.execute("DROP TABLE events")
    return number
