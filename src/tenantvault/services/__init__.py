"""Background services and the one supervisor that owns them.

Every long-running task of the server is a service registered with the `Supervisor`, which
starts it in the one `asyncio.TaskGroup` it owns, restarts it with capped, jittered backoff
when it crashes, reports its state under `services` in `sys/health`, and cancels and awaits
it on exit. The server lifespan owns the supervisor (`server/_app.py`), so the lifespan is
the one owner of background work.

The audit broker's own tasks (the chain-head persister, the sink probes) are not services
here, and that is still one owner: they are internals of the broker, which the Core opens
and closes inside the same lifespan, and their lifetime is the broker's (its `aclose()`
cancels and awaits them). Restarting one of them alone would break the broker's own
invariants (a chain head written out of order), so the broker, not the supervisor, decides
what a failure of one means.
"""

from __future__ import annotations

from tenantvault.services._supervisor import (
    DEFAULT_BASE_DELAY_SECONDS,
    DEFAULT_MAX_DELAY_SECONDS,
    Service,
    ServiceState,
    Supervisor,
)

__all__ = [
    "DEFAULT_BASE_DELAY_SECONDS",
    "DEFAULT_MAX_DELAY_SECONDS",
    "Service",
    "ServiceState",
    "Supervisor",
]
