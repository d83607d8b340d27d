"""The audit broker: the Core's audit hook. Fans each entry out to every sink; fails closed.

A request entry must be recorded by at least one sink before the engine runs; otherwise the
request fails with `AuditError` (500) and nothing happens. A sink that fails or hangs beyond
the timeout is marked unhealthy: later entries skip it (a hung sink costs one timeout, not
one per request), a background probe retries it with backoff and restores it, and a `gap`
checkpoint in its log says what it missed meanwhile. Health reports all of it.

Each file sink's chain head (seq and hash of the last durable entry) is kept in the sealed
store, so that a log cut or replaced while the server was down is found when it opens.

A Core has exactly one broker, whatever audit hook it is given: a custom `AuditHook` is
attached to the broker (`hook=`), never put beside it, so the devices `sys/audit` manages,
the store `sys/audit/events` queries and `sys/health` all see the same entries the hook does.
The sinks record first, then the hook: a sink failure refuses the request before the hook
hears of it, and a hook that refuses (raises) refuses it too, as any `AuditHook` may.

Requests the HTTP layer refused before a `Request` existed (`refused`) get their request and
response entry too; nothing ran for them, so nothing fails closed, but a refusal that nothing
recorded is counted in health (`refusal_failures`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantvault._audit_hook import AuditHook, Refusal, RequestContext
from tenantvault._clock import Clock, format_time, system_clock
from tenantvault._exceptions import (
    AuditError,
    ConfigurationError,
    InvalidRequestError,
    NotFoundError,
    TenantVaultError,
)
from tenantvault._paths import validate_name
from tenantvault._records import decode_record, encode_record
from tenantvault._request import Response
from tenantvault.audit._chain import ChainHead
from tenantvault.audit._events import AuditEvent, Shared
from tenantvault.audit._partitions import MEMORY_STORE_ENTRIES
from tenantvault.audit._redact import Redactor
from tenantvault.audit._sinks import AuditSink, FileSink, StdoutSink, StoredHead, StoreSink
from tenantvault.audit._writer import BatchWriter
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend

__all__ = ["AuditBroker", "Incident"]

MOUNT = "audit"
DEFAULT_SINK_TIMEOUT_SECONDS = 5.0
DEFAULT_PROBE_SECONDS = 0.1
MAX_PROBE_SECONDS = 10.0
HEAD_PERSIST_SECONDS = 0.05
_INCIDENTS_KEPT = 100
# A store in memory holds at most this many entries (~15 GiB at ~1.5 KiB each).
_MAX_KEEP_NEWEST = 10_000_000

logger = logging.getLogger("tenantvault.audit")


@dataclass(frozen=True, slots=True)
class Incident:
    """A sink failure, for health output. Never carries entry content."""

    time: str
    sink: str
    phase: str
    error: str


@dataclass(slots=True)
class _Recorded:
    """The broker's bookkeeping of one request, kept in `RequestContext.audit_state`."""

    # The sinks that recorded the request entry: its response entry goes to exactly these.
    sinks: frozenset[str] = frozenset()
    # The attached hook's own `audit_state`, swapped in around each call to it.
    hook_state: object = None
    # The hook took the request and is owed its response (as the Core owes one to any hook).
    hook_owed: bool = False
    # Each sink's rendering of the request's `auth` block (and `request` block, see `Shared`),
    # which its response entry repeats (same token, same principal, same request): their
    # HMACs are computed once per request, not per entry.
    auth: dict[Redactor, Shared] = field(default_factory=dict)
    # A request entry built but not yet written (`AuditBroker.defer_request`): it goes to
    # the sinks together with the response entry, in one batch.
    deferred: AuditEvent | None = None


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    return str(getattr(error, "strerror", None) or type(error).__name__)


class AuditBroker:
    """Owns the sinks, their probes and chain heads; implements the Core's `AuditHook`."""

    def __init__(
        self,
        backend: Backend,
        *,
        clock: Clock = system_clock,
        timeout_seconds: float = DEFAULT_SINK_TIMEOUT_SECONDS,
        file_dir: Path | None = None,
        probe_seconds: float = DEFAULT_PROBE_SECONDS,
        hook: AuditHook | None = None,
    ) -> None:
        self._backend = backend
        # A custom audit hook rides on this broker (see the module docstring); the caller
        # owns it: the broker calls it and never closes it.
        self._hook = hook
        self._clock = clock
        self._timeout = timeout_seconds
        # Where devices created through the API may write (files and store databases);
        # None: only the server's settings create them (as OpenBao 2.7 does).
        self.file_dir = file_dir
        self._probe_seconds = probe_seconds
        self.sinks: dict[str, AuditSink] = {}
        self._persistent: set[str] = set()
        self.incidents: deque[Incident] = deque(maxlen=_INCIDENTS_KEPT)
        # Unhealthy sinks (name → why): entries skip them until their probe restores them.
        self.failing: dict[str, str] = {}
        self.response_failures = 0
        # HTTP-layer refusals that no sink (or the hook) could record: the refusal stands as
        # answered, so this is not `response_failures` (a request that ran and answered 500).
        self.refusal_failures = 0
        # Gaps found when a log opened or after a sink came back: for health, never cleared.
        self.gaps: deque[dict[str, Any]] = deque(maxlen=_INCIDENTS_KEPT)
        self._missed: dict[str, int] = {}
        self._failed_at: dict[str, str] = {}
        self._probes: dict[str, asyncio.Task[None]] = {}
        self._heads: dict[str, StoredHead] = {}
        self._dirty: set[str] = set()
        self._persister: asyncio.Task[None] | None = None
        # Why the chain-head persister crashed (a bug: a store error is only an incident), and
        # who to tell, on the loop: the supervisor's audit service (`services._audit`).
        self.persister_crash: Exception | None = None
        self.on_crash: Callable[[], None] | None = None
        # Told after each fan-out how many sinks recorded the entry and how many failed
        # (the Core's metrics counters); it must not raise.
        self.on_entry: Callable[[int, int], None] | None = None

    # -- configuration ---------------------------------------------------------------------

    async def _salt(self, name: str) -> bytes:
        """The sink's salt, created once and kept in the store so HMACs stay comparable."""
        key = f"salt/{name}"
        record = await self._backend.read(SYSTEM_TENANT, MOUNT, key)
        if record is not None:
            return record.value
        salt = secrets.token_bytes(32)
        await self._backend.write(SYSTEM_TENANT, MOUNT, key, salt, expected_revision=0)
        return salt

    def _confine(self, raw: str) -> Path:
        """The path an API-created device may use: inside `file_dir`, as named and resolved."""
        if self.file_dir is None:
            raise InvalidRequestError(
                "audit devices that write files are configured by the operator: start the "
                "server with --audit-file, or with --audit-dir DIR to allow paths in DIR"
            )
        base = Path(os.path.abspath(self.file_dir))
        # Relative paths are taken inside the directory; `..` is resolved before the check.
        lexical = Path(os.path.normpath(base / raw))
        # Where symlinks (of the file or any parent) lead must stay inside it too.
        real, real_base = Path(os.path.realpath(lexical)), Path(os.path.realpath(base))
        for candidate, root in ((lexical, base), (real, real_base)):
            if candidate == root or not candidate.is_relative_to(root):
                raise InvalidRequestError(
                    "the audit file must be inside the operator's audit directory "
                    "(symlinks out of it are refused)"
                )
        # The path as named: a rotation (SIGHUP) reopens it, as the operator's files say.
        return lexical

    async def _stored_head(self, name: str) -> StoredHead | None:
        record = await self._backend.read(SYSTEM_TENANT, MOUNT, f"chain/{name}")
        if record is None:
            return None
        data = decode_record(record.value)
        return StoredHead(
            int(data["seq"]), str(data["hash"]), str(data["reason"]), str(data["path"])
        )

    async def _build(
        self, name: str, sink_type: str, options: dict[str, str], *, confined: bool
    ) -> AuditSink:
        salt = await self._salt(name)
        if sink_type == "file":
            path = options.get("file_path") or options.get("path")
            if not path:
                raise InvalidRequestError("file_path is required")
            if path == "stdout":
                return StdoutSink(name, salt=salt)
            target = self._confine(path) if confined else Path(path)
            fsync = options.get("fsync", "always")
            stored = await self._stored_head(name)
            loop = asyncio.get_running_loop()

            def on_written(head: ChainHead, reason: str) -> None:  # in the writer thread
                record = StoredHead(head.seq, head.hash, reason, str(target))
                loop.call_soon_threadsafe(self._head_moved, name, record)

            try:
                sink = await asyncio.to_thread(
                    FileSink,
                    name,
                    target,
                    salt=salt,
                    fsync=fsync,
                    stored=stored,
                    on_written=on_written,
                )
            except OSError as error:
                raise InvalidRequestError(f"cannot open audit file: {error.strerror}") from None
            if sink.gap is not None:
                self._report_gap(name, str(sink.gap["detail"]))
            return sink
        if sink_type == "stdout":
            return StdoutSink(name, salt=salt)
        if sink_type == "store":
            raw = options.get("path")
            if raw in (None, "", ":memory:"):
                keep = _keep_newest(options.get("keep_newest"))
                return await asyncio.to_thread(StoreSink, name, None, salt=salt, keep_newest=keep)
            if options.get("keep_newest"):
                # A store on disk keeps every entry unless the operator sets a retention by
                # age (`--audit-store-retention`); no count-based trim, since several
                # processes may share the file and none may trim the others' entries.
                raise InvalidRequestError("keep_newest applies to a store in memory only")
            assert raw is not None  # noqa: S101 -- narrowed by the test above, for mypy
            db = self._confine(raw) if confined else Path(raw)
            return await asyncio.to_thread(StoreSink, name, db, salt=salt)
        raise InvalidRequestError("unsupported audit device type: use file, stdout or store")

    def _report_gap(self, name: str, detail: str) -> None:
        now = format_time(self._clock())
        self.gaps.append({"time": now, "sink": name, "detail": detail})
        self.incidents.append(Incident(now, name, "gap", detail))
        logger.error("audit device %r: gap in its log: %s", name, detail)

    async def enable(
        self,
        name: str,
        sink_type: str,
        options: dict[str, str],
        *,
        persist: bool = True,
        description: str = "",
    ) -> None:
        """Add a sink (`sys/audit/<name>`); persisted devices come back after a restart.

        Persisted devices come from the API, so their files are confined to `file_dir`;
        the others come from the server's settings.
        """
        validate_name(name, kind="audit device name")
        if name in self.sinks:
            raise InvalidRequestError(f"path already in use at {name}/")
        sink = await self._build(name, sink_type, dict(options), confined=persist)
        self.sinks[name] = sink
        if persist:
            config = {"type": sink_type, "options": dict(options), "description": description}
            await self._backend.write(
                SYSTEM_TENANT,
                MOUNT,
                f"device/{name}",
                encode_record(config),
                expected_revision=None,
            )
            self._persistent.add(name)

    async def disable(self, name: str) -> None:
        sink = self.sinks.pop(name, None)
        self.failing.pop(name, None)
        self._missed.pop(name, None)
        probe = self._probes.pop(name, None)
        if probe is not None:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
        if name in self._persistent:
            self._persistent.discard(name)
            await self._backend.delete(SYSTEM_TENANT, MOUNT, f"device/{name}")
        if sink is not None:
            await sink.aclose()
        # Forget its head last (after its close checkpoint): a device enabled again under
        # this name starts a new log instead of reporting this one's as missing.
        await self._flush_heads()
        self._heads.pop(name, None)
        await self._backend.delete(SYSTEM_TENANT, MOUNT, f"chain/{name}")

    async def load(self) -> None:
        """Re-enable the devices enabled through the API before the last restart."""
        for name in await self._backend.list(SYSTEM_TENANT, MOUNT, "device/"):
            if name in self.sinks:
                continue
            record = await self._backend.read(SYSTEM_TENANT, MOUNT, f"device/{name}")
            if record is None:
                continue
            config = decode_record(record.value)
            try:
                sink = await self._build(name, config["type"], config["options"], confined=True)
            except TenantVaultError as error:
                raise ConfigurationError(
                    f"audit device {name!r} cannot be opened: {error.message}"
                ) from None
            self.sinks[name] = sink
            self._persistent.add(name)

    def describe(self) -> dict[str, Any]:
        """Vault's `GET sys/audit` shape."""
        return {
            f"{name}/": {
                "type": sink.type,
                "description": "",
                "options": sink.options,
                "local": False,
                "path": f"{name}/",
            }
            for name, sink in self.sinks.items()
        }

    def head(self, name: str) -> dict[str, Any]:
        """A device's description plus, for a file, its chain head: `verify --anchor`'s input."""
        sink = self.sinks.get(name)
        if sink is None:
            raise NotFoundError("unknown audit device")
        info: dict[str, Any] = {"type": sink.type, "options": sink.options, "path": f"{name}/"}
        if isinstance(sink, FileSink):
            head = sink.head
            info["chain_head"] = {"seq": head.seq, "hash": head.hash}
        return info

    def hash(self, name: str, value: str) -> str:
        sink = self.sinks.get(name)
        if sink is None:
            raise NotFoundError("unknown audit device")
        return sink.redactor.hash(value)

    def stores(self) -> list[StoreSink]:
        """Every queryable store enabled now (what a retention prunes)."""
        return [sink for sink in self.sinks.values() if isinstance(sink, StoreSink)]

    def store(self) -> StoreSink | None:
        for sink in self.sinks.values():
            if isinstance(sink, StoreSink):
                return sink
        return None

    def reopen(self) -> None:
        for sink in self.sinks.values():
            sink.reopen()

    async def aclose(self) -> None:
        probes = list(self._probes.values())
        self._probes.clear()
        for probe in probes:
            probe.cancel()
        for probe in probes:
            with contextlib.suppress(asyncio.CancelledError):
                await probe
        for sink in list(self.sinks.values()):
            await sink.aclose()
        self.sinks.clear()
        # After the sinks' close checkpoints: the stored heads then name those checkpoints.
        await self._flush_heads()

    def health(self) -> dict[str, Any]:
        return {
            "enabled": bool(self.sinks),
            "healthy": not self.failing,
            "failing_sinks": sorted(self.failing),
            "response_failures": self.response_failures,
            "refusal_failures": self.refusal_failures,
            "chain_intact": not self.gaps,
            "gaps": list(self.gaps)[-10:],
            "recent_incidents": [
                {"time": i.time, "sink": i.sink, "phase": i.phase, "error": i.error}
                for i in list(self.incidents)[-10:]
            ],
        }

    # -- chain heads -----------------------------------------------------------------------

    def _head_moved(self, name: str, head: StoredHead) -> None:
        """On the loop, after a file sink's batch: persist the head soon, coalescing."""
        self._heads[name] = head
        self._dirty.add(name)
        if self._persister is None or self._persister.done():
            self._persister = asyncio.get_running_loop().create_task(self._persist_heads())

    async def _persist_heads(self) -> None:
        # One write per sink per round, however many batches landed meanwhile: the stored
        # head may lag the file by the batches of one round, never lead it. The pause between
        # rounds bounds the cost (a sealed, fsynced store write) when every request is its
        # own batch; a clean close flushes the final head, and a crash is reported anyway.
        try:
            while self._dirty:
                await self._persist_round()
                await asyncio.sleep(HEAD_PERSIST_SECONDS)
        except Exception as error:  # noqa: BLE001 -- a crash: kept for the supervisor to report
            logger.error("audit chain-head persister crashed (%s)", type(error).__name__)
            self.persister_crash = error
            if self.on_crash is not None:
                self.on_crash()

    def restart_persister(self) -> None:
        """After a crash: persist the heads still waiting (the next batch would, too)."""
        self.persister_crash = None
        self._start_persister()

    def _start_persister(self) -> None:
        if self._dirty and (self._persister is None or self._persister.done()):
            self._persister = asyncio.get_running_loop().create_task(self._persist_heads())

    def writers(self) -> dict[str, BatchWriter]:
        """Each sink's writer thread, by sink name, for the supervisor to watch and restart."""
        return {name: sink.writer for name, sink in self.sinks.items()}

    async def _persist_round(self) -> None:
        while self._dirty:
            name = self._dirty.pop()
            head = self._heads[name]
            record = {"seq": head.seq, "hash": head.hash, "reason": head.reason, "path": head.path}
            try:
                await self._backend.write(
                    SYSTEM_TENANT,
                    MOUNT,
                    f"chain/{name}",
                    encode_record(record),
                    expected_revision=None,
                )
            except TenantVaultError as error:
                self.incidents.append(
                    Incident(format_time(self._clock()), name, "head", type(error).__name__)
                )
            except BaseException:
                self._dirty.add(name)  # not written: the next round writes it
                raise

    async def _flush_heads(self) -> None:
        # Let callbacks the writer threads scheduled run first, then wait for the writes.
        await asyncio.sleep(0)
        self._start_persister()  # heads a crashed persister left are written too
        while self._persister is not None and not self._persister.done():
            await asyncio.shield(self._persister)

    # -- sink health -----------------------------------------------------------------------

    def _mark_failed(self, name: str, phase: str, error: BaseException) -> None:
        reason = _reason(error)
        self.incidents.append(Incident(format_time(self._clock()), name, phase, reason))
        if name in self.failing:
            return
        self.failing[name] = reason
        self._failed_at[name] = format_time(self._clock())
        self._missed.setdefault(name, 0)
        logger.warning("audit device %r is unhealthy (%s): probing it", name, reason)
        loop = asyncio.get_running_loop()
        self._probes[name] = loop.create_task(self._probe(name), name=f"audit-probe-{name}")

    def _gap_fields(self, name: str) -> dict[str, Any]:
        missed = self._missed.get(name, 0)
        return {
            "missed_entries": missed,
            "unhealthy_since": self._failed_at.get(name, ""),
            "detail": (
                f"the device was unhealthy from {self._failed_at.get(name, '?')}: up to "
                f"{missed} entries recorded by other devices are missing here"
            ),
        }

    async def _probe(self, name: str) -> None:
        """Retry an unhealthy sink with backoff; restore it once a checkpoint gets through."""
        delay = self._probe_seconds
        pending: asyncio.Task[None] | None = None
        missed_at_submit = 0
        submitted: dict[str, Any] = {}
        try:
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_PROBE_SECONDS)
                sink = self.sinks.get(name)
                if sink is None:
                    return
                if pending is None:
                    # The probe is the checkpoint that must be written anyway: a `gap` if
                    # other devices recorded entries meanwhile, else a plain `restored`.
                    missed_at_submit = self._missed.get(name, 0)
                    submitted = self._gap_fields(name)
                    if missed_at_submit:
                        checkpoint = sink.checkpoint("gap", **submitted)
                    else:
                        checkpoint = sink.checkpoint("restored")
                    pending = asyncio.ensure_future(checkpoint)
                # Not wait_for: a probe still stuck in a hung write is waited on again next
                # round, rather than cancelled and queued once more behind itself.
                done, _ = await asyncio.wait({pending}, timeout=self._timeout)
                if not done:
                    continue
                task, pending = pending, None
                if task.exception() is not None:
                    continue
                if missed_at_submit:
                    self._report_gap(name, submitted["detail"])
                extra = self._missed.get(name, 0) - missed_at_submit
                self._missed[name] = extra
                fields = self._gap_fields(name)
                # Healthy first, then the checkpoint in the same step: it is queued before any
                # entry that now goes to this sink (submission order is write order).
                self.failing.pop(name, None)
                self._missed.pop(name, None)
                self._failed_at.pop(name, None)
                logger.warning("audit device %r is healthy again", name)
                if extra:
                    # Entries skipped while the probe itself was in flight.
                    self._report_gap(name, fields["detail"])
                    with contextlib.suppress(Exception):  # a failure here shows on the next entry
                        async with asyncio.timeout(self._timeout):
                            await sink.checkpoint("gap", **fields)
                return
        finally:
            if pending is not None:
                pending.cancel()
            if self._probes.get(name) is asyncio.current_task():
                del self._probes[name]

    # -- the hook --------------------------------------------------------------------------

    def _event(
        self,
        context: RequestContext,
        kind: str,
        shared_auth: dict[Redactor, Shared] | None = None,
    ) -> AuditEvent:
        request = context.request
        record = context.principal.record if context.principal else None
        return AuditEvent(
            type="request" if kind == "request" else "response",
            time_ns=self._clock(),
            request_id=request.request_id,
            operation=str(request.operation),
            tenant=context.tenant,
            tenant_uid=context.tenant_uid,
            mount=context.mount,
            path=context.path,
            remote_address=request.client_address,
            token=request.token,
            accessor=record.accessor if record else "",
            policies=tuple(context.principal.policies) if context.principal else (),
            display_name=record.display_name
            if record
            else ("operator" if context.principal else ""),
            token_meta=record.meta if record else None,
            request_data=request.data,
            wrap_ttl=request.wrap_ttl_seconds or 0,
            shared_auth=shared_auth,
        )

    async def _fan_out(
        self, event: AuditEvent, phase: str, only: frozenset[str] | None = None
    ) -> frozenset[str]:
        """Write to every healthy sink (or those in `only`); return the names that recorded it."""
        sinks = self.sinks
        if len(sinks) == 1 and not self.failing:
            # The common case (one healthy sink), without the lists, sets and tasks of the
            # general one below; the sink keeps the deadline (one timer per loop, not per entry).
            name = next(iter(sinks))
            if only is None or name in only:
                try:
                    await sinks[name].write(event, timeout_seconds=self._timeout)
                except Exception as error:  # noqa: BLE001 -- judged as the general case does
                    return self._judge(phase, [name], [name], [error])
                if self.on_entry is not None:
                    self.on_entry(1, 0)
                return frozenset((name,))
        targets = [name for name in sinks if only is None or name in only]
        # Unhealthy sinks are skipped, not waited on: their probe brings them back.
        names = [name for name in targets if name not in self.failing]
        if not targets:
            return frozenset()
        results: list[BaseException | None]
        if not names:
            results = []
        elif len(names) == 1:
            try:
                await sinks[names[0]].write(event, timeout_seconds=self._timeout)
                results = [None]
            except Exception as error:  # noqa: BLE001 -- judged below, like gather's results
                results = [error]
        else:
            results = await asyncio.gather(
                *(self._write_to(sinks[n], event) for n in names), return_exceptions=True
            )
        return self._judge(phase, targets, names, results)

    async def _write_to(self, sink: AuditSink, event: AuditEvent) -> None:
        # A coroutine per sink for gather: an error rendering for one sink is its result, as
        # a failed write is, and never keeps the entry from the others.
        await sink.write(event, timeout_seconds=self._timeout)

    def _judge(
        self,
        phase: str,
        targets: list[str],
        names: list[str],
        results: list[BaseException | None],
    ) -> frozenset[str]:
        """Mark the sinks that failed; fail closed if none of `names` recorded the entry."""
        recorded: set[str] = set()
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                if name in self.sinks:
                    self._mark_failed(name, phase, result)
            else:
                recorded.add(name)
        self._count(targets, names, recorded)
        if not recorded:
            raise AuditError("audit: no sink could record the request")
        return frozenset(recorded)

    def _count(self, targets: list[str], names: list[str], recorded: set[str]) -> None:
        """Count one entry: recorded by `recorded`, failed in the rest of `names`, missed by
        the unhealthy ones of `targets` (the gap checkpoint at their return counts those)."""
        if self.on_entry is not None:
            self.on_entry(len(recorded), len(names) - len(recorded))
        if not recorded:
            return
        for name in targets:
            if name not in recorded and name in self.failing:
                self._missed[name] = self._missed.get(name, 0) + 1

    async def _pair_out(self, first: AuditEvent, second: AuditEvent) -> None:
        """Write a request entry and its response entry to every healthy sink at once, so
        that each sink makes them durable in one batch (one fsync, not two in a row), and
        return once both are recorded; fail closed (`AuditError`) if no sink recorded them.

        A sink's writer takes what one loop turn queued as one batch and fails or keeps a
        batch whole, so a sink holds both entries or neither (a log rotation landing between
        the two is the one exception: the rotation closes the old file's batch, and if the
        new file then fails the response entry, the request fails closed as it would in the
        strict order).
        """
        sinks = self.sinks
        if len(sinks) == 1 and not self.failing:
            # The common case, as in `_fan_out`.
            name, sink = next(iter(sinks.items()))
            try:
                await _write_pair(sink, first, second, self._timeout)
            except Exception as error:  # noqa: BLE001 -- judged as the general case does
                # Nothing recorded: `_judge` marks the sink failed and raises `AuditError`.
                self._judge("request", [name], [name], [error])
                return
            if self.on_entry is not None:
                self.on_entry(2, 0)
            return
        targets = list(sinks)
        if not targets:
            # Every sink was disabled since the request was taken: it must not go unrecorded.
            raise AuditError("audit: no sink could record the request")
        names = [name for name in targets if name not in self.failing]
        results: list[BaseException | None] = list(
            await asyncio.gather(
                *(_write_pair(sinks[n], first, second, self._timeout) for n in names),
                return_exceptions=True,
            )
        )
        recorded = self._judge("request", targets, names, results)
        self._count(targets, names, set(recorded))  # the response entries

    def defer_request(self, context: RequestContext) -> bool:
        """Keep the request entry and write it with the response entry (one batch, one wait
        for durability), for a request whose engine call changes nothing: False if that
        cannot be (an audit hook wants the request before the engine), and the Core calls
        `request` as usual. The answer still waits until both entries are recorded."""
        if self._hook is not None:
            return False
        if self.sinks:
            recorded = _Recorded()
            recorded.deferred = self._event(context, "request", recorded.auth)
            context.audit_state = recorded
        return True

    async def request(self, context: RequestContext) -> None:
        if not self.sinks and self._hook is None:
            return  # nothing enabled: nothing to build, nothing to wait for
        recorded = _Recorded()
        if self.sinks:
            recorded.sinks = await self._fan_out(
                self._event(context, "request", recorded.auth), "request"
            )
        context.audit_state = recorded
        if self._hook is None:
            return
        try:
            await self._hook_request(self._hook, context, recorded)
        except AuditError as error:
            # The hook refused after the sinks recorded the request entry; the Core writes no
            # response entry for a refusal of the audit hook, so close the sinks' pairs here.
            if recorded.sinks:
                await self._sink_response(context, None, error, recorded.sinks)
            raise

    @staticmethod
    async def _hook_request(hook: AuditHook, context: RequestContext, recorded: _Recorded) -> None:
        context.audit_state = None  # the hook's own bookkeeping slot, as if it were alone
        recorded.hook_owed = True
        try:
            await hook.request(context)
        except AuditError:
            recorded.hook_owed = False  # the Core's rule: a refused request entry, no response
            raise
        finally:
            recorded.hook_state, context.audit_state = context.audit_state, recorded

    def _response_event(
        self, context: RequestContext, response: Response | None, error: TenantVaultError | None
    ) -> AuditEvent:
        state = context.audit_state
        event = self._event(
            context, "response", state.auth if isinstance(state, _Recorded) else None
        )
        if response is not None:
            event.status = response.status
            event.response_data = response.data
            event.response_auth = response.auth
            event.warnings = response.warnings
            event.wrap_info = response.wrap_info
        elif error is not None:
            event.status = error.status
            body = getattr(error, "body", None)
            event.response_data = body.get("data") if isinstance(body, dict) else None
            event.error = "; ".join(error.errors) or type(error).__name__
        return event

    async def _sink_response(
        self,
        context: RequestContext,
        response: Response | None,
        error: TenantVaultError | None,
        recorded: frozenset[str],
    ) -> None:
        try:
            await self._fan_out(
                self._response_event(context, response, error), "response", only=recorded
            )
        except AuditError:
            self.response_failures += 1
            raise

    async def response(
        self, context: RequestContext, response: Response | None, error: TenantVaultError | None
    ) -> None:
        # The response entry goes where the request entry went, so every sink holds complete
        # pairs (a sink enabled mid-request, or one that missed the request, gets neither).
        recorded = context.audit_state
        if not isinstance(recorded, _Recorded):
            return
        if recorded.deferred is not None:
            request_event, recorded.deferred = recorded.deferred, None
            try:
                await self._pair_out(request_event, self._response_event(context, response, error))
            except AuditError:
                self.response_failures += 1
                raise
            return
        failure: AuditError | None = None
        if self.sinks and recorded.sinks:
            try:
                await self._sink_response(context, response, error, recorded.sinks)
            except AuditError as sink_error:
                failure = sink_error  # the hook still gets its response first
        if recorded.hook_owed and self._hook is not None:
            recorded.hook_owed = False
            context.audit_state = recorded.hook_state
            try:
                await self._hook.response(context, response, error)
            except Exception:
                self.response_failures += 1
                raise
            finally:
                context.audit_state = recorded
        if failure is not None:
            raise failure

    def _refusal_event(self, refusal: Refusal, kind: str) -> AuditEvent:
        event = AuditEvent(
            type="request" if kind == "request" else "response",
            time_ns=self._clock(),
            request_id=refusal.request_id,
            operation="",  # not known: the request was refused before it had one
            # No tenant, ever: nothing was authenticated, so the entry is root's alone and no
            # stranger can write into a tenant's trail by claiming its namespace.
            tenant=None,
            mount="",
            path="",
            remote_address=refusal.client_address,
            token=refusal.token,
            refused=True,
            method=refusal.method,
            raw_path=refusal.raw_path,
            claimed_namespace=refusal.claimed_namespace,
        )
        if kind == "response":
            event.status = refusal.status
            event.error = refusal.error
        return event

    async def refused(self, refusal: Refusal) -> None:
        """Record a request the HTTP layer refused: a request entry and a response entry in
        every sink that records, then the hook. `AuditError` (counted) if nothing recorded it."""
        failed = False
        if self.sinks:
            try:
                request = self._refusal_event(refusal, "request")
                await self._pair_out(request, self._refusal_event(refusal, "response"))
            except AuditError:
                failed = True
        if self._hook is not None:
            try:
                await self._hook.refused(refusal)
            except Exception as error:  # noqa: BLE001 -- the refusal stands; counted below
                logger.warning("audit hook failed to record a refusal (%s)", type(error).__name__)
                failed = True
        if failed:
            self.refusal_failures += 1
            raise AuditError("audit: no sink could record the refused request")


def _keep_newest(raw: str | None) -> int:
    """A store in memory's `keep_newest` option: how many of its newest entries it keeps."""
    if raw in (None, ""):
        return MEMORY_STORE_ENTRIES
    assert raw is not None  # noqa: S101 -- narrowed by the test above, for mypy
    text = raw.strip()
    if not text.isdigit() or not 1 <= int(text) <= _MAX_KEEP_NEWEST:
        raise InvalidRequestError(
            f"invalid value for keep_newest: expected a whole number from 1 to {_MAX_KEEP_NEWEST:,}"
        )
    return int(text)


async def _write_pair(
    sink: AuditSink, first: AuditEvent, second: AuditEvent, timeout_seconds: float | None
) -> None:
    """Queue both entries on `sink` before awaiting either (one loop turn: one batch)."""
    one = asyncio.ensure_future(sink.write(first, timeout_seconds=timeout_seconds))
    try:
        two = asyncio.ensure_future(sink.write(second, timeout_seconds=timeout_seconds))
    except BaseException:
        one.add_done_callback(_collect)  # queued: written, and its outcome collected
        raise
    try:
        await one
    except BaseException:
        # The second shares the first's batch and fate; its outcome is collected when it
        # settles, never reported as an exception nobody retrieved.
        two.add_done_callback(_collect)
        raise
    await two


def _collect(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
