"""The child of `tenantvault run`: spawned with its environment, signals forwarded, restarts.

The child inherits our stdin, stdout and stderr as they are (file descriptors 0, 1 and 2), so
bytes pass between it and whoever started us without us reading, buffering or writing any:
a stdio MCP server's JSON-RPC stream is byte-exact by construction. Its environment goes
straight to `posix_spawn` (never a file, never an argument).

Signals are taken synchronously (`sigtimedwait`) with the handled set blocked in every thread,
which gives one loop that sees signals, the child's exit (SIGCHLD) and the watcher's events
without races, and tells who sent a signal: a terminal's ^C (sent by the kernel to the whole
foreground process group, the child included) is not forwarded a second time.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["FORWARDED", "Launcher", "Restart", "Signal", "Stop", "exit_code"]

# What we pass on to the child. SIGTSTP/SIGTTIN/SIGTTOU keep their defaults (job control).
FORWARDED = frozenset(
    {
        signal.SIGHUP,
        signal.SIGINT,
        signal.SIGQUIT,
        signal.SIGTERM,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGWINCH,
    }
)
# Sent by a terminal to its foreground process group: the child has had it already.
_TERMINAL_SIGNALS = frozenset({signal.SIGINT, signal.SIGQUIT, signal.SIGWINCH})
_SI_KERNEL = 0x80
_TICK_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class Restart:
    """Stop the child and start it again with this environment."""

    env: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Signal:
    """Send the child this signal."""

    signum: int


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the child; the run ends with its exit code. `reason` goes to the log."""

    reason: str


Event = Restart | Signal | Stop


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128 + the signal number."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def block_signals() -> None:
    """Block the handled signals in this thread and every thread started after it."""
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED | {signal.SIGCHLD})


class Launcher:
    """Runs `argv` under our supervision until it exits for good; `run()` returns its code."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        events: queue.Queue[Event],
        log: Callable[[str], None],
        stop_timeout_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._argv = list(argv)
        self._env = dict(env)
        self._events = events
        self._log = log
        self._stop_timeout = stop_timeout_seconds
        self._clock = clock
        self._pid = 0
        self._restart_env: Mapping[str, str] | None = None
        self._stopping = False
        self._kill_at: float | None = None

    def spawn(self) -> None:
        """Start the child; raises OSError (as `FileNotFoundError` for an unknown command)."""
        executable = self._argv[0]
        if "/" not in executable:
            found = shutil.which(executable, path=self._env.get("PATH", os.defpath))
            if found is None:
                raise FileNotFoundError(executable)
            executable = found
        self._pid = os.posix_spawn(
            executable,
            self._argv,
            self._env,
            # Our blocked set must not be the child's: it expects the usual signals, and
            # Python's ignored SIGPIPE and SIGXFSZ back at their defaults (as subprocess does).
            setsigmask=(),
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
        self._log(f"started {os.path.basename(self._argv[0])} (pid {self._pid})")

    @property
    def pid(self) -> int:
        return self._pid

    def run(self) -> int:
        """Supervise until the child exits without a restart pending; its exit code."""
        watched = FORWARDED | {signal.SIGCHLD}
        while True:
            info = signal.sigtimedwait(watched, _TICK_SECONDS)
            if info is not None:
                if info.si_signo == signal.SIGCHLD:
                    code = self._reap()
                    if code is not None:
                        return code
                else:
                    self._forward(info.si_signo, info.si_code)
            self._drain_events()
            if self._kill_at is not None and self._clock() >= self._kill_at:
                self._log(f"the child did not stop within {self._stop_timeout:g}s: SIGKILL")
                self._send(signal.SIGKILL)
                self._kill_at = None

    def _reap(self) -> int | None:
        try:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
        except ChildProcessError:
            return 1
        if pid == 0:
            return None  # SIGCHLD for a stop or continue, or a stray one
        code = exit_code(status)
        self._kill_at = None
        if self._restart_env is not None and not self._stopping:
            self._env = dict(self._restart_env)
            self._restart_env = None
            self._log(f"the child exited with {code}; starting it again")
            try:
                self.spawn()
            except OSError as error:
                self._log(f"cannot start it again: {error.strerror or type(error).__name__}")
                return 127
            return None
        return code

    def _forward(self, signum: int, si_code: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            # We are being stopped: a pending restart must not start a new child.
            self._stopping = True
        if signum in _TERMINAL_SIGNALS and si_code == _SI_KERNEL:
            return  # the terminal sent it to the child too
        self._send(signum)

    def _drain_events(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            if isinstance(event, Signal):
                self._send(event.signum)
            elif isinstance(event, Restart):
                if self._stopping:
                    continue
                self._restart_env = event.env
                self._terminate()
            else:
                self._log(event.reason)
                self._stopping = True
                self._terminate()

    def _terminate(self) -> None:
        self._send(signal.SIGTERM)
        if self._kill_at is None:
            self._kill_at = self._clock() + self._stop_timeout

    def _send(self, signum: int) -> None:
        try:
            os.kill(self._pid, signum)
        except ProcessLookupError:
            pass  # exited already; its SIGCHLD is pending
