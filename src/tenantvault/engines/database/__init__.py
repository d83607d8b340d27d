"""The database secrets engine: dynamic and static database credentials (PostgreSQL first).

`_engine` routes Vault's paths; `_records` holds configs and roles; `_static` rotates static
roles; `_credentials` generates usernames and passwords; `_plugin` is the interface a
database implements and `_postgres` the PostgreSQL implementation; `_service` the scheduled
rotation service; `_egress` the operator's allow-list of database hosts.
"""

from __future__ import annotations

from tenantvault.engines.database._egress import DatabaseAllowList
from tenantvault.engines.database._engine import DatabaseEngine
from tenantvault.engines.database._plugin import DatabaseError, DatabasePlugin
from tenantvault.engines.database._service import run_static_rotation
from tenantvault.engines.database._static import RotationBusyError

__all__ = [
    "DatabaseAllowList",
    "DatabaseEngine",
    "DatabaseError",
    "DatabasePlugin",
    "RotationBusyError",
    "run_static_rotation",
]
