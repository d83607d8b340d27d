"""Back-pressure: in-flight bounds per tenant and overall (429 past them), fair turns to run.

`Admission.admit(scope)` runs first thing for every HTTP request, before its body is read or
the Core does any work, and is a few dict operations. It takes a slot (given back by
`release` once the answer is sent), or says which bound refused the request, or — only when
`running` requests already run (`--max-running`) — puts the admitted request in its holder's
line (`Waiting`; `wait` returns its slot when its turn comes). The app answers a refusal 429
with `Retry-After: 1` and Vault's error body, after a pause of `REFUSAL_PAUSE_SECONDS` (so a
client that retries at once does not turn refusals into a CPU flood; at most `MAX_PAUSED`
pause at once), audited through `Core.refused` like any request the HTTP layer refuses, and
counted (`tenantvault_admission_events_total{event=tenant|server|shared}`).

Queueing is bounded by construction: the lines hold admitted requests only, so all of them
together never exceed the in-flight bounds. Lines are served round robin, one request per
holder per turn: a tenant with a long line costs another tenant's next request at most one
turn per other busy holder, where a plain FIFO (or the event loop running everything at
once) would make it wait behind the whole flood.

Who is charged — the choice, and its limits:

- A request is charged to the tenant whose token it carries: the incarnation id its suffix
  names (`tvs.<secret>.<uid>`, the space the Core will authenticate it in), and only if that
  id is one the Core has served a request of (learned from request outcomes: this class is a
  `RequestObserver`). The namespace header and the path prefix are claims anyone can make, so
  they charge nothing: tenant A cannot exhaust tenant B's share by naming B's namespace, and
  naming B's incarnation id needs one of B's tokens or accessors, or root's `sys/namespaces`.
- Everything else — no token, a root-namespace token (root with `X-Vault-Namespace` too), a
  token naming an unknown id (garbage, or a tenant this process has not served yet) — shares
  one bound, `shared`, as if it were one more tenant. So a stranger's flood of made-up tokens
  or namespaces holds at most that share, never a tenant's, and logins (tokenless), the root
  token and the first request of a tenant after a restart compete inside it.
- The overall bound keeps a reserve (`overall // 8`) that only quiet tenants — holding fewer
  than `QUIET_SLOTS` — may use, and the shared class never: when every slot a busy tenant
  could take is taken, a tenant sending a few requests is still admitted. With at most
  `overall * 7 // 8 // per_tenant` tenants at their bound the others keep every slot of the
  reserve and the rest; past that, busy tenants get the server's slots first come, first
  served, and quiet ones the reserve.
- The in-flight bounds bound concurrency, not CPU: requests admitted all run at once on the
  event loop, so a tenant at its bound still takes its share of every loop turn. The run
  limit is what gives the other tenants their turn promptly; it is off by default, because
  a request waiting on a slow upstream (gateway mode, a database engine) holds its run slot
  and a small limit would then idle the server (a waiting request has no deadline of its
  own); a small limit also makes the audit writer's batches smaller. A few per core suits
  the embedded store.
  Refused requests still cost their 429 and its audit entry. `bench/fairness.py` measures
  what the other tenants see.
- The defaults (`ServerSettings`: 1,024 per tenant, 4,096 overall, no run limit): one
  tenant's client fleet at the concurrency this project benchmarks (1,000 connections on one
  tenant token) stays under its bound, and four tenants at their bound fill the server. A
  slot costs memory (the request's scope, body and task), not CPU.
- `sys/health` and `sys/seal-status` (unauthenticated probes) are neither bounded nor
  counted, so a load balancer's health checks are answered under any flood.

`Admission(per_tenant=0, overall=0)` admits everything at once (`--max-inflight 0
--max-inflight-per-tenant 0`, and no `--max-running`); any one bound may be 0 (none).
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from tenantvault._observe import RequestOutcome
from tenantvault._tokens import TOKEN_PREFIX, named_space

__all__ = [
    "QUIET_SLOTS",
    "REFUSAL_PAUSE_SECONDS",
    "Admission",
    "Refused",
    "Slot",
    "Waiting",
]

# A tenant holding fewer requests than this is "quiet" and may use the overall reserve.
QUIET_SLOTS: Final = 8
# A refusal is answered after this pause (its Retry-After's second; slots free up in
# milliseconds, one second is the shortest whole-second answer): a client that retries at
# once anyway holds an idle connection instead of turning its refusals into a CPU flood. At
# most MAX_PAUSED refusals wait at once; past that they are answered at once.
REFUSAL_PAUSE_SECONDS: Final = 1.0
MAX_PAUSED: Final = 4096
# Incarnation ids remembered (10^4 tenants is the scale target); past it the memory starts
# again, and tenants are learned anew from their next request.
MAX_KNOWN_TENANTS: Final = 100_000

Slot = str  # what `admit` handed out: '' when nothing was taken
Bound = Literal["tenant", "server", "shared"]

_UNCOUNTED: Final = ""
_SHARED: Final = "/"  # never an incarnation id: those are [0-9A-Za-z_-]
_NO_BOUND: Final = sys.maxsize
_BEARER: Final = b"Bearer "
_SYS_PREFIX: Final = b"/v1/sys/"
_PROBES: Final = frozenset({b"health", b"seal-status"})
_ERRORS: Final[dict[Bound, str]] = {
    # OpenBao's quota refusals read "...: rate limit quota exceeded"; ours name the bound.
    "tenant": "in-flight request quota exceeded for this namespace",
    "server": "in-flight request quota exceeded for this server",
    "shared": "in-flight request quota exceeded for requests not charged to a namespace",
}


@dataclass(frozen=True, slots=True)
class Refused:
    """Which bound refused a request, the tenant charged (None: the shared class), the text."""

    bound: Bound
    tenant: str | None

    @property
    def error(self) -> str:
        """Vault's error text for the 429."""
        return _ERRORS[self.bound]


@dataclass(slots=True)
class Waiting:
    """An admitted request waiting for its turn to run (`Admission.wait`)."""

    key: str
    future: asyncio.Future[None]


def _bound(value: int) -> int:
    return value if value > 0 else _NO_BOUND


def _token_space(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The incarnation id a `tvs.` token's suffix names (X-Vault-Token, else Bearer); None
    without one. Read, not checked: only ids learned from served requests are charged."""
    token: bytes | None = None
    for name, value in headers:
        if name == b"x-vault-token":
            token = value
            break
        if name == b"authorization" and value.startswith(_BEARER):
            token = value[len(_BEARER) :]
    if token is None:
        return None
    # The token module's own reading of the suffix: one definition of the token format.
    return named_space(token.decode("latin-1"), prefix=TOKEN_PREFIX) or None


class Admission:
    """In-flight bounds per tenant and overall, fair turns to run; see the module."""

    __slots__ = (
        "_busy",
        "_held",
        "_names",
        "_overall",
        "_pause_seconds",
        "_paused",
        "_per_tenant",
        "_queues",
        "_run_limit",
        "_running",
        "_shared",
        "_total",
        "_turns",
        "on",
    )

    def __init__(
        self,
        *,
        per_tenant: int,
        overall: int,
        running: int = 0,
        shared: int | None = None,
        pause_seconds: float | None = None,
    ) -> None:
        if min(per_tenant, overall, running, shared or 0) < 0:
            raise ValueError("admission bounds must be 0 (no bound) or more")
        self.on = per_tenant > 0 or overall > 0 or running > 0
        self._per_tenant = _bound(per_tenant)
        self._overall = _bound(overall)
        # Busy tenants and the shared class stop short of the reserve.
        self._busy = self._overall - overall // 8 if overall > 0 else _NO_BOUND
        self._shared = _bound(per_tenant if shared is None else shared)
        self._run_limit = _bound(running)
        self._pause_seconds = REFUSAL_PAUSE_SECONDS if pause_seconds is None else pause_seconds
        self._held: dict[str, int] = {}
        self._total = 0
        self._running = 0
        self._paused = 0
        # Waiting requests by holder, and the holders with waiters in round-robin order.
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}
        self._turns: deque[str] = deque()
        # Incarnation id -> tenant name, of every tenant the Core served a request of.
        self._names: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return f"<Admission {self._total} in flight, {len(self._held)} holders>"

    @property
    def in_flight(self) -> int:
        """Requests holding a slot now (running or waiting for their turn)."""
        return self._total

    @property
    def running(self) -> int:
        """Requests running now (past their turn)."""
        return self._running

    @property
    def paused(self) -> int:
        """Refusals waiting out their pause now."""
        return self._paused

    def held(self, tenant_uid: str | None) -> int:
        """Slots the tenant with this incarnation id holds (None: the shared class)."""
        return self._held.get(_SHARED if tenant_uid is None else tenant_uid, 0)

    def admit(self, scope: MutableMapping[str, Any]) -> Slot | Refused | Waiting:
        """A slot for this ASGI request (give it back with `release`), a place in the line
        for one (`wait` for it), or why not."""
        if not self.on:
            return _UNCOUNTED
        raw: bytes = scope.get("raw_path") or b""
        if raw.startswith(_SYS_PREFIX) and raw[len(_SYS_PREFIX) :].partition(b"?")[0] in _PROBES:
            return _UNCOUNTED
        uid = _token_space(scope["headers"])
        key = uid if uid is not None and uid in self._names else _SHARED
        held = self._held.get(key, 0)
        total = self._total
        if key == _SHARED:
            if held >= self._shared:
                return Refused("shared", None)
            if total >= self._busy:
                return Refused("server", None)
        else:
            if held >= self._per_tenant:
                return Refused("tenant", self._names[key])
            if total >= (self._overall if held < QUIET_SLOTS else self._busy):
                return Refused("server", self._names[key])
        self._held[key] = held + 1
        self._total = total + 1
        if self._running < self._run_limit:
            self._running += 1
            return key
        # Every run slot is taken: wait in this holder's line (allocated only then).
        line = self._queues.get(key)
        if line is None:
            line = self._queues[key] = deque()
            self._turns.append(key)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line.append(future)
        return Waiting(key, future)

    async def wait(self, waiting: Waiting) -> Slot:
        """The slot of an admitted request once it is its turn to run (lines are served round
        robin, one request per holder per turn, so a flooding tenant's long line never delays
        another's next request by more than one turn)."""
        await waiting.future
        return waiting.key

    async def pause(self) -> None:
        """Wait `REFUSAL_PAUSE_SECONDS` before a refusal is answered (unless too many do)."""
        if self._pause_seconds <= 0 or self._paused >= MAX_PAUSED:
            return
        self._paused += 1
        try:
            await asyncio.sleep(self._pause_seconds)
        finally:
            self._paused -= 1

    def release(self, slot: Slot | Refused | Waiting) -> None:
        """Give back what `admit` handed out (nothing for a refusal or an uncounted probe);
        a `Waiting` whose request was cancelled leaves its line, or hands on its turn."""
        if isinstance(slot, Waiting):
            future = slot.future
            if future.done() and not future.cancelled():
                self._end_turn()  # its turn had come: pass it on
            else:
                future.cancel()  # skipped when its line comes up
            self._give_back(slot.key)
        elif isinstance(slot, str) and slot:
            self._give_back(slot)
            self._end_turn()

    def _give_back(self, key: str) -> None:
        held = self._held[key] - 1
        if held:
            self._held[key] = held
        else:
            del self._held[key]  # a holder with no slot costs no memory
        self._total -= 1

    def _end_turn(self) -> None:
        """A run slot came free: the next holder in the round wakes its first waiter."""
        turns = self._turns
        while turns:
            key = turns.popleft()
            line = self._queues[key]
            future = line.popleft()
            if line:
                turns.append(key)  # to the back of the round
            else:
                del self._queues[key]
            if not future.done():
                future.set_result(None)
                return  # the run slot passes to it
        self._running -= 1

    def observe(self, outcome: RequestOutcome) -> None:
        """Learn the incarnation ids the Core served (a `RequestObserver`)."""
        uid = outcome.tenant_uid
        if uid and uid not in self._names:
            if len(self._names) >= MAX_KNOWN_TENANTS:
                self._names.clear()
            self._names[uid] = outcome.tenant
