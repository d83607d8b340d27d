"""The background of `tenantvault run`: keeps the token alive and watches referenced secrets
for new versions (polling their metadata), telling the launcher what to do through a queue."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping

from tenantvault._refs import Reference
from tenantvault.cli._launcher import Event, Restart, Signal, Stop
from tenantvault.cli._login import LoginError, Session
from tenantvault.cli._resolve import ResolveError, Resolver

__all__ = ["OnRotate", "Watcher", "resolve_all"]

OnRotate = str | int  # "restart", "exit", "none", or a signal number


def resolve_all(
    resolver: Resolver, refs: Mapping[str, Reference], env: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, int]]:
    """`env` with every reference replaced by its value, and the version each one came from."""
    resolved = dict(env)
    versions: dict[str, int] = {}
    for name, ref in refs.items():
        result = resolver.resolve(ref)
        resolved[name] = result.value
        versions[name] = result.version
    return resolved, versions


class Watcher:
    """A thread that renews the session's token and polls unpinned references' versions."""

    def __init__(
        self,
        session: Session,
        refs: Mapping[str, Reference],
        env: Mapping[str, str],
        versions: Mapping[str, int],
        *,
        on_rotate: OnRotate,
        poll_interval_seconds: float,
        events: queue.Queue[Event],
        log: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._refs = dict(refs)
        self._env = dict(env)
        self._versions = dict(versions)
        self._on_rotate = on_rotate
        self._interval = poll_interval_seconds
        self._events = events
        self._log = log
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tenantvault-run-watcher")
        # Pinned references never change version: nothing to watch.
        self._watched = {name: ref for name, ref in self._refs.items() if ref.version is None}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (an HTTP call in flight ends at its timeout)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        polling = self._on_rotate != "none" and bool(self._watched)
        next_poll = self._clock() + self._interval
        while not self._stop.is_set():
            waits = [next_poll - self._clock()] if polling else [self._interval]
            due = self._session.seconds_until_due()
            if due is not None:
                waits.append(due)
            if self._stop.wait(max(0.05, min(waits))):
                return
            try:
                self._maintain()
                if polling and self._clock() >= next_poll:
                    next_poll = self._clock() + self._interval
                    self._poll()
            except Exception as error:  # noqa: BLE001 -- logged by type, then the run stops
                # The thread must not die silently: the token would run out unnoticed.
                self._log(f"watcher stopped on an unexpected error ({type(error).__name__})")
                self._events.put(Stop("stopping: the token can no longer be kept alive"))
                return

    def _maintain(self) -> None:
        try:
            done = self._session.maintain()
        except LoginError as error:
            self._log(str(error))
            return
        if done:
            self._log(done)

    def _poll(self) -> None:
        resolver = Resolver(self._session.settings)
        try:
            changed = self._changed(resolver)
        except ResolveError as error:
            if not self._session.owns_token:
                self._log(str(error))
                return
            # Perhaps the token expired under us (a server restart, a revocation): log in
            # again and try once more, without touching the child.
            try:
                self._session.login()
            except LoginError as login_error:
                self._log(f"{error}; {login_error}")
                return
            self._log("logged in again after a failed check")
            resolver = Resolver(self._session.settings)
            try:
                changed = self._changed(resolver)
            except ResolveError as again:
                self._log(str(again))
                return
        if not changed:
            return
        try:
            env, versions = resolve_all(resolver, self._refs, self._env)
        except ResolveError as error:
            self._log(f"a new version was found but cannot be read: {error}")
            return
        names = ", ".join(sorted(changed))
        self._versions = versions
        if self._on_rotate == "restart":
            self._log(f"new secret version for {names}: restarting the child")
            self._events.put(Restart(env))
        elif self._on_rotate == "exit":
            self._events.put(Stop(f"new secret version for {names}: stopping"))
        elif isinstance(self._on_rotate, int):
            self._log(f"new secret version for {names}: signalling the child")
            self._events.put(Signal(self._on_rotate))

    def _changed(self, resolver: Resolver) -> list[str]:
        return [
            name
            for name, ref in self._watched.items()
            if resolver.current_version(ref) != self._versions.get(name)
        ]
