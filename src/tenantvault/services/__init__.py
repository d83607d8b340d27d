"""Background services and the one supervisor that owns them.

Every long-running task of the server is a service registered with the `Supervisor`, which
starts it in the one `asyncio.TaskGroup` it owns, restarts it with capped, jittered backoff
when it crashes, reports its state under `services` in `sys/health` (and turns health
failing while one crash-loops), and on exit stops them one at a time, last registered first.
The server lifespan owns the supervisor (`server/_app.py`), so the lifespan is the one owner
of background work.

The audit broker's workers (a writer thread per sink, the chain-head persister) are watched
by the `audit` service (`_audit`), registered first so it stops last: it restarts a dead
worker, which takes up its queued entries, rather than restarting the broker, whose own
invariants (one chain, heads written in order) the workers keep. The broker's sink probes
stay the broker's: they are its fail-closed logic, not background work.
"""

from __future__ import annotations

from tenantvault.services._audit import audit_detail, run_audit_workers
from tenantvault.services._supervisor import (
    DEFAULT_BASE_DELAY_SECONDS,
    DEFAULT_CRASH_LOOP_RECOVERY_SECONDS,
    DEFAULT_CRASH_LOOP_RESTARTS,
    DEFAULT_CRASH_LOOP_WINDOW_SECONDS,
    DEFAULT_MAX_DELAY_SECONDS,
    Service,
    ServiceState,
    Supervisor,
    SupervisorSettings,
)

__all__ = [
    "DEFAULT_BASE_DELAY_SECONDS",
    "DEFAULT_CRASH_LOOP_RECOVERY_SECONDS",
    "DEFAULT_CRASH_LOOP_RESTARTS",
    "DEFAULT_CRASH_LOOP_WINDOW_SECONDS",
    "DEFAULT_MAX_DELAY_SECONDS",
    "Service",
    "ServiceState",
    "Supervisor",
    "SupervisorSettings",
    "audit_detail",
    "run_audit_workers",
]
