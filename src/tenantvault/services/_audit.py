"""The audit service: watches each sink's writer thread and the chain-head persister.

The audit broker's workers are a thread per sink (`audit._writer.BatchWriter`, group commit)
and a task that keeps the file sinks' chain heads in the sealed store. When one dies, this
service raises what killed it: the supervisor counts the crash and, after its backoff,
starts the service again, which starts the dead workers again first.

What a restart costs the requests: entries queued for a dead writer wait for the new thread
and are written then, in order, so their requests just take longer; the entries the dead
thread had taken but not written are taken up again, once (`BatchWriter` docs). A request
whose entry cannot be made durable still fails closed: when the restart takes longer than
the broker's sink timeout, the sink is marked unhealthy and a request no other sink records
fails, as it would for a sink that hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from tenantvault.audit._broker import AuditBroker

__all__ = ["DEFAULT_RESCAN_SECONDS", "audit_detail", "run_audit_workers"]

# How often the sinks are looked at again for one enabled since (`sys/audit/<name>`); a
# crash is noticed at once, whatever this is.
DEFAULT_RESCAN_SECONDS: Final = 1.0


async def run_audit_workers(
    broker: AuditBroker, *, rescan_seconds: float = DEFAULT_RESCAN_SECONDS
) -> None:
    """Start dead audit workers again, then wait; raise the next crash (a supervised service)."""
    loop = asyncio.get_running_loop()
    alarm = asyncio.Event()

    def wake() -> None:  # in a dying writer thread, or on the loop (the persister)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody left to wake
            loop.call_soon_threadsafe(alarm.set)

    broker.on_crash = wake
    try:
        for writer in broker.writers().values():
            if writer.crash is not None:
                # Off the loop: it waits (briefly) for the dead thread to be gone.
                await asyncio.to_thread(writer.restart)
        broker.restart_persister()
        while True:
            alarm.clear()
            # Hook first, look second: a death after the look rings the alarm.
            for writer in broker.writers().values():
                writer.on_crash = wake
            for writer in broker.writers().values():
                if writer.crash is not None:
                    raise writer.crash
            if broker.persister_crash is not None:
                raise broker.persister_crash
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(rescan_seconds):
                    await alarm.wait()
    finally:
        broker.on_crash = None
        for writer in broker.writers().values():
            writer.on_crash = None


def audit_detail(broker: AuditBroker) -> dict[str, Any]:
    """The service's fields in sys/health: the sinks whose writer is down (names only)."""
    writers = broker.writers()
    return {
        "writers": len(writers),
        "writers_down": sorted(name for name, writer in writers.items() if not writer.is_alive),
        "persister_crashed": broker.persister_crash is not None,
    }
