"""The audit broker: the Core's audit hook. Fans each entry out to every sink; fails closed.

A request entry must be recorded by at least one sink before the engine runs; otherwise the
request fails with `AuditError` (500) and nothing happens. A sink that fails or hangs beyond
the timeout is counted as failed (a hung sink can never hang requests), reported in health,
and retried on the next entry: recovery needs no restart.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenantvault._audit_hook import RequestContext
from tenantvault._clock import Clock, format_time, system_clock
from tenantvault._exceptions import (
    AuditError,
    ConfigurationError,
    InvalidRequestError,
    NotFoundError,
    TenantVaultError,
)
from tenantvault._paths import validate_name
from tenantvault._request import Response
from tenantvault.audit._events import AuditEvent
from tenantvault.audit._sinks import AuditSink, FileSink, StdoutSink, StoreSink
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.engines._common import decode_record, encode_record

__all__ = ["AuditBroker", "Incident"]

MOUNT = "audit"
DEFAULT_SINK_TIMEOUT_SECONDS = 5.0
_INCIDENTS_KEPT = 100


@dataclass(frozen=True, slots=True)
class Incident:
    """A sink failure, for health output. Never carries entry content."""

    time: str
    sink: str
    phase: str
    error: str


class AuditBroker:
    """Owns the sinks; implements the Core's `AuditHook`."""

    def __init__(
        self,
        backend: Backend,
        *,
        clock: Clock = system_clock,
        timeout_seconds: float = DEFAULT_SINK_TIMEOUT_SECONDS,
        data_dir: Path | None = None,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._timeout = timeout_seconds
        self._data_dir = data_dir
        self.sinks: dict[str, AuditSink] = {}
        self._persistent: set[str] = set()
        self.incidents: deque[Incident] = deque(maxlen=_INCIDENTS_KEPT)
        self.failing: dict[str, str] = {}
        self.response_failures = 0

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

    async def _build(self, name: str, sink_type: str, options: dict[str, str]) -> AuditSink:
        salt = await self._salt(name)
        if sink_type == "file":
            path = options.get("file_path") or options.get("path")
            if not path:
                raise InvalidRequestError("file_path is required")
            if path == "stdout":
                return StdoutSink(name, salt=salt)
            fsync = options.get("fsync", "always")
            try:
                return await asyncio.to_thread(FileSink, name, Path(path), salt=salt, fsync=fsync)
            except OSError as error:
                raise InvalidRequestError(f"cannot open audit file: {error.strerror}") from None
        if sink_type == "stdout":
            return StdoutSink(name, salt=salt)
        if sink_type == "store":
            db = (
                Path(options["path"]) if options.get("path") not in (None, "", ":memory:") else None
            )
            return await asyncio.to_thread(StoreSink, name, db, salt=salt)
        raise InvalidRequestError("unsupported audit device type: use file, stdout or store")

    async def enable(
        self,
        name: str,
        sink_type: str,
        options: dict[str, str],
        *,
        persist: bool = True,
        description: str = "",
    ) -> None:
        """Add a sink (`sys/audit/<name>`); persisted devices come back after a restart."""
        validate_name(name, kind="audit device name")
        if name in self.sinks:
            raise InvalidRequestError(f"path already in use at {name}/")
        sink = await self._build(name, sink_type, dict(options))
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
        if name in self._persistent:
            self._persistent.discard(name)
            await self._backend.delete(SYSTEM_TENANT, MOUNT, f"device/{name}")
        if sink is not None:
            await sink.aclose()

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
                sink = await self._build(name, config["type"], config["options"])
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

    def hash(self, name: str, value: str) -> str:
        sink = self.sinks.get(name)
        if sink is None:
            raise NotFoundError("unknown audit device")
        return sink.redactor.hash(value)

    def store(self) -> StoreSink | None:
        for sink in self.sinks.values():
            if isinstance(sink, StoreSink):
                return sink
        return None

    def reopen(self) -> None:
        for sink in self.sinks.values():
            sink.reopen()

    async def aclose(self) -> None:
        for sink in list(self.sinks.values()):
            await sink.aclose()
        self.sinks.clear()

    def health(self) -> dict[str, Any]:
        return {
            "enabled": bool(self.sinks),
            "healthy": not self.failing,
            "failing_sinks": sorted(self.failing),
            "response_failures": self.response_failures,
            "recent_incidents": [
                {"time": i.time, "sink": i.sink, "phase": i.phase, "error": i.error}
                for i in list(self.incidents)[-10:]
            ],
        }

    # -- the hook --------------------------------------------------------------------------

    def _event(self, context: RequestContext, kind: str) -> AuditEvent:
        request = context.request
        record = context.principal.record if context.principal else None
        return AuditEvent(
            type="request" if kind == "request" else "response",
            time_ns=self._clock(),
            request_id=request.request_id,
            operation=str(request.operation),
            tenant=context.tenant,
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
        )

    async def _fan_out(
        self, event: AuditEvent, phase: str, only: frozenset[str] | None = None
    ) -> frozenset[str]:
        """Write to every sink (or those in `only`); return the names that recorded it."""
        names = [name for name in self.sinks if only is None or name in only]
        if not names:
            return frozenset()
        results: list[BaseException | None]
        if len(names) == 1:
            # The common case, without the tasks that gather/wait_for would create per entry.
            try:
                async with asyncio.timeout(self._timeout):
                    await self.sinks[names[0]].write(event)
                results = [None]
            except Exception as error:  # noqa: BLE001 -- judged below, like gather's results
                results = [error]
        else:
            results = await asyncio.gather(
                *(asyncio.wait_for(self.sinks[n].write(event), self._timeout) for n in names),
                return_exceptions=True,
            )
        recorded: set[str] = set()
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                reason = (
                    "timed out"
                    if isinstance(result, TimeoutError)
                    else (getattr(result, "strerror", None) or type(result).__name__)
                )
                self.failing[name] = str(reason)
                self.incidents.append(
                    Incident(format_time(self._clock()), name, phase, str(reason))
                )
            else:
                recorded.add(name)
                self.failing.pop(name, None)
        if not recorded:
            raise AuditError("audit: no sink could record the request")
        return frozenset(recorded)

    async def request(self, context: RequestContext) -> None:
        if self.sinks:  # no sink enabled: nothing to build, nothing to wait for
            context.audit_state = await self._fan_out(self._event(context, "request"), "request")

    async def response(
        self, context: RequestContext, response: Response | None, error: TenantVaultError | None
    ) -> None:
        # The response entry goes where the request entry went, so every sink holds complete
        # pairs (a sink enabled mid-request, or one that missed the request, gets neither).
        recorded = context.audit_state
        if not self.sinks or not isinstance(recorded, frozenset) or not recorded:
            return
        event = self._event(context, "response")
        if response is not None:
            event.status = response.status
            event.response_data = response.data
            event.response_auth = response.auth
            event.warnings = response.warnings
        elif error is not None:
            event.status = error.status
            body = getattr(error, "body", None)
            event.response_data = body.get("data") if isinstance(body, dict) else None
            event.error = "; ".join(error.errors) or type(error).__name__
        try:
            await self._fan_out(event, "response", only=recorded)
        except AuditError:
            self.response_failures += 1
            raise
