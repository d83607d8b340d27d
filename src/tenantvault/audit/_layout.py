"""The audit store's on-disk layout: one table per tenant incarnation, a catalog, a chain head.

- `audit_partitions` (the catalog) maps a (tenant, tenant_uid) pair to a partition number n;
  partition 0 is the root partition: entries that belong to no tenant (the root namespace's
  requests, HTTP-layer refusals, anonymous listings, checkpoints).
- `events_<n>` holds that partition's entries. The table name is built from the integer n
  only, never from a tenant's name, so no tenant-chosen text ever reaches SQL as a name.
- `audit_head` is the chain's head (last row id, seq and hash), written in every batch's
  transaction: the chain resumes from it without scanning every partition.
"""

from __future__ import annotations

import sqlite3

__all__ = [
    "PARTITION_COLUMNS",
    "ROOT_PARTITION",
    "create_layout",
    "create_partition",
    "has_layout",
    "table_of",
]

ROOT_PARTITION = 0

# The columns of a partition's rows, in insert order. The partition says whose they are, so
# no row carries a tenant: there is nothing to filter on, and nothing to filter wrongly.
PARTITION_COLUMNS = (
    "id",
    "seq",
    "time_ns",
    "type",
    "request_id",
    "operation",
    "mount",
    "path",
    "outcome",
    "status",
    "accessor",
    "entry",
)

_CATALOG = (
    "CREATE TABLE audit_partitions ("
    " id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, tenant_uid TEXT NOT NULL,"
    " UNIQUE (tenant, tenant_uid))"
)
_HEAD = (
    "CREATE TABLE audit_head ("
    " one INTEGER PRIMARY KEY CHECK (one = 1), last_id INTEGER NOT NULL,"
    " seq INTEGER NOT NULL, hash TEXT NOT NULL)"
)


def table_of(partition: int) -> str:
    """The table of partition `partition` (an integer: the name holds nothing else)."""
    return f"events_{int(partition)}"


def has_layout(conn: sqlite3.Connection) -> bool:
    """Whether the database already holds the partitioned layout."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_partitions'"
    ).fetchone()
    return row is not None


def create_partition(conn: sqlite3.Connection, partition: int, tenant: str, tenant_uid: str) -> str:
    """Create partition `partition` of (tenant, tenant_uid), in the caller's transaction."""
    table = table_of(partition)
    conn.execute(
        "INSERT INTO audit_partitions (id, tenant, tenant_uid) VALUES (?, ?, ?)",
        (partition, tenant, tenant_uid),
    )
    conn.execute(
        f"CREATE TABLE {table} ("
        " id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, time_ns INTEGER NOT NULL,"
        " type TEXT NOT NULL, request_id TEXT NOT NULL, operation TEXT NOT NULL,"
        " mount TEXT NOT NULL, path TEXT NOT NULL, outcome TEXT NOT NULL,"
        " status INTEGER NOT NULL, accessor TEXT NOT NULL, entry BLOB NOT NULL,"
        # One index (time: `since`, `until` and reports), not more: every index is paid on
        # every insert of the writer thread. It is the table's own constraint, not a CREATE
        # INDEX, because SQLite scans its whole schema table once per DDL statement (at 10,000
        # tenants ~10 ms each): one statement per partition, not two. (time_ns, id) is what
        # an index on time_ns holds anyway (every entry ends with the row id): same order,
        # same plans. Partitions made before this keep their `<table>_time` index; both
        # serve the same queries. The outcome filter scans only the tenant's own table.
        " UNIQUE (time_ns, id))"
    )
    return table


def create_layout(conn: sqlite3.Connection, *, last_id: int, seq: int, digest: str) -> None:
    """Create the catalog, the head and the root partition, in the caller's transaction."""
    conn.execute(_CATALOG)
    conn.execute(_HEAD)
    conn.execute(
        "INSERT INTO audit_head (one, last_id, seq, hash) VALUES (1, ?, ?, ?)",
        (last_id, seq, digest),
    )
    create_partition(conn, ROOT_PARTITION, "", "")
