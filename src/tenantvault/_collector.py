"""The cyclic garbage collector while serving: its cost per request does not grow with tenants.

CPython collects its youngest generation every 700 net new container objects (allocations
minus deallocations), and the whole heap after every tenth collection of the middle one. A
server with 64 requests in flight holds more than 700 such objects in those requests alone,
so under load a young collection runs every twenty requests or so, promoting whatever the
requests in flight hold at that moment, and every few seconds a full collection walks the
whole heap.
Its cost per request therefore grows with the heap, and the heap grows with the tenants
(their mount tables, data keys and cached records): measured on the embedded store under
64-connection reads, full collections cost 25-50 µs per read at 10,000 tenants (pauses of
~100 ms) against 10-25 µs at 10 tenants: most of the difference in CPU per read.

A request leaves no net garbage behind (its objects die by reference counting when it is
done), so with a young threshold well above what thousands of requests in flight hold at
once, collections are left to real growth of the heap (a cache filling, tenants being
created) and to cyclic garbage, which still is collected, after at most `YOUNG_THRESHOLD`
new objects (a few MiB). The full collections that growth triggers stay paced by CPython's
own rule (only once the long-lived objects have grown by a quarter). What start-up built
(modules, classes, functions, the store's open state) lives as long as the process: it is
frozen, so that no collection walks it again.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Final

__all__ = ["YOUNG_THRESHOLD", "tuned_collector"]

# Net new container objects before a young collection: ~70 times CPython's default, above
# what the requests of 1,000 connections hold at once. Measured under reads on the embedded
# store: no collection at all in 6 s at 64 connections, one in 6 s at 1,000 (at 10,000
# still ~40, and then each promotes what is in flight, as at the default).
YOUNG_THRESHOLD: Final = 50_000


@contextlib.contextmanager
def tuned_collector() -> Iterator[None]:
    """While serving: start-up's objects frozen and the young threshold raised; both undone
    on exit, so that a process that goes on (a test calling `serve` in-process) gets its
    collector back as it was and can collect what the server left behind."""
    previous = gc.get_threshold()
    gc.collect()  # start-up's garbage goes now, not into the frozen generation
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
