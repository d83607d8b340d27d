"""`tenantvault serve`: run the Vault-compatible HTTP server on granian, in this process.

The ASGI app runs on granian's embedded server inside this process's event loop, so the
settings (and a master key from the environment) reach the app as Python objects — nothing
secret travels through a command line, an environment of a child process or a pickle. The
store is opened *before* the port is bound: a wrong master key or an unreadable data
directory fails fast with a clear message, and the initial root token is reported before
anyone can connect.

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 if the store or the listener could
not start, 2 for bad flags or settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import logging.handlers
import os
import queue
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

# granian is a base dependency (the server is the product); the CLI still imports this module
# only for `serve`, and turns a missing granian (a damaged install) into a usage error.
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.embed import Server

from tenantvault._config import (
    DEFAULT_LISTEN_HOST,
    DEFAULT_LISTEN_PORT,
    ENV_PREFIX,
    ServerSettings,
    is_loopback,
    parse_listen,
)
from tenantvault._exceptions import ConfigurationError, TenantVaultError
from tenantvault.server import TenantVaultApp, create_app

__all__ = ["add_parser", "run"]

logger = logging.getLogger("tenantvault.serve")

# Slowloris: a client gets this long to send its request headers, then the connection closes.
_HEADER_READ_TIMEOUT_MS = 10_000
# hyper's read buffer bounds the request head: bigger header blocks get 431.
_MAX_HEADER_BUFFER_BYTES = 64 * 1024 + 8192
# How often the main thread wakes up to run pending signal handlers (see _StopOnSignals).
_SIGNAL_CHECK_SECONDS = 0.2
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_LOG_LEVELS = ("debug", "info", "warning", "error")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `serve` on the CLI's subparsers (`argparse._SubParsersAction`)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the server",
        description=(
            "Serve the Vault HTTP API. Without flags: the embedded encrypted store in the "
            "data directory, on 127.0.0.1:8200. On first start the initial root token is "
            "printed once to stdout (or written to --root-token-file). Settings may also come "
            f"from {ENV_PREFIX}* environment variables (DATA_DIR, LISTEN, MASTER_KEY, "
            "MASTER_KEY_FILE, ...); flags win."
        ),
    )

    def flag(name: str, **kwargs: Any) -> None:
        # Both spellings, like the rest of the CLI and like `bao server -dev`.
        parser.add_argument(f"-{name}", f"--{name}", dest=name.replace("-", "_"), **kwargs)

    flag(
        "listen",
        metavar="HOST:PORT",
        help=f"address to listen on (default {DEFAULT_LISTEN_HOST}:{DEFAULT_LISTEN_PORT})",
    )
    flag(
        "data-dir",
        metavar="DIR",
        type=Path,
        help="data directory of the embedded store "
        "(default $TENANTVAULT_DATA_DIR, else $XDG_DATA_HOME/tenantvault)",
    )
    flag(
        "dev",
        action="store_true",
        default=None,
        help="development mode: in-memory store, nothing is persisted",
    )
    flag(
        "dev-root-token",
        metavar="TOKEN",
        help="root token for --dev (default: generated and printed); "
        f"or {ENV_PREFIX}DEV_ROOT_TOKEN",
    )
    flag(
        "root-token-file",
        metavar="PATH",
        type=Path,
        help="write the initial root token to PATH (mode 0600) instead of printing it",
    )
    flag("tls-cert", metavar="PATH", type=Path, help="TLS certificate chain (PEM)")
    flag("tls-key", metavar="PATH", type=Path, help="TLS private key (PEM)")
    flag(
        "insecure-listen",
        action="store_true",
        default=None,
        help="allow a non-loopback address without TLS (e.g. behind a TLS-terminating proxy)",
    )
    flag(
        "max-request-bytes",
        metavar="N",
        type=int,
        help="largest accepted request body (default 33554432, as Vault)",
    )
    flag(
        "master-key-file",
        metavar="PATH",
        type=Path,
        help="file holding the master key (base64 of 32 bytes); or "
        f"{ENV_PREFIX}MASTER_KEY / {ENV_PREFIX}MASTER_KEY_FILE. Default: "
        "DATA_DIR/master.key, created on first start",
    )
    flag(
        "allow-insecure-permissions",
        action="store_true",
        default=None,
        help="start even if group or others can use the data directory (needs 0700), the "
        "master key file or the database files (need 0600): log a warning instead; or "
        f"{ENV_PREFIX}ALLOW_INSECURE_PERMISSIONS=1",
    )
    flag(
        "audit-file",
        metavar="PATH",
        type=Path,
        help="also audit to this JSON-lines file (hash-chained; reopened on SIGHUP)",
    )
    flag("audit-stdout", action="store_true", default=None, help="also audit to stdout")
    flag(
        "audit-dir",
        metavar="DIR",
        type=Path,
        help="let `sys/audit/<name>` (`bao audit enable file`) create audit files in DIR, "
        "and nowhere else (default: only these flags create them); or "
        f"{ENV_PREFIX}AUDIT_DIR",
    )
    flag(
        "no-audit-store",
        action="store_true",
        default=None,
        help="do not keep the queryable audit store (DATA_DIR/audit.db; memory in --dev)",
    )
    flag(
        "audit-fsync",
        choices=("always", "never"),
        help="fsync the audit file after each group of entries (default always)",
    )
    flag("log-level", choices=_LOG_LEVELS, default="info", help="log level (default info)")
    flag("no-access-log", action="store_true", default=None, help="do not log one line per request")
    return parser


def _settings(args: argparse.Namespace, environ: dict[str, str]) -> ServerSettings:
    listen_host = listen_port = None
    if args.listen:
        listen_host, listen_port = parse_listen(args.listen)
    return ServerSettings.from_env(
        environ,
        data_dir=args.data_dir,
        listen_host=listen_host,
        listen_port=listen_port,
        dev=args.dev,
        dev_root_token=args.dev_root_token,
        root_token_file=args.root_token_file,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        insecure_listen=args.insecure_listen,
        max_request_bytes=args.max_request_bytes,
        master_key_file=args.master_key_file,
        allow_insecure_permissions=args.allow_insecure_permissions,
        access_log=False if args.no_access_log else None,
        audit_file=args.audit_file,
        audit_stdout=args.audit_stdout,
        audit_store=False if args.no_audit_store else None,
        audit_fsync=args.audit_fsync,
        audit_dir=args.audit_dir,
    )


class _Formatter(logging.Formatter):
    """The standard format, with the timestamp's strftime done once per second instead of
    once per line (it is the costliest part of an access-log line)."""

    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
        return f"{self._stamp},{int(record.msecs):03d}"


def _configure_logging(level: str) -> logging.handlers.QueueListener:
    """Log to stderr from a background thread: the event loop only queues each record, so
    a slow reader of stderr (one line per request with the access log) never stalls it."""
    # The logging HOWTO's "optimization" switches: nobody reads these fields in our format,
    # and computing them (a stack walk for the caller) costs more than the line itself.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(_LOG_FORMAT))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler)
    root = logging.getLogger("tenantvault")
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(level.upper())
    root.propagate = False
    listener.start()
    return listener


class _HideEmbeddedWarning(logging.Filter):
    """granian calls its embedded server "experimental" on every start; we chose it on
    purpose (see the module docstring), so the line would only alarm operators."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "experimental" not in record.getMessage()


def _granian_logging() -> dict[str, Any]:
    # granian merges this over its own config: its logs go to stderr like ours; stdout is
    # kept for the root token alone, so that a script can capture it cleanly.
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"embedded": {"()": _HideEmbeddedWarning}},
        "formatters": {"plain": {"format": _LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "plain",
                "filters": ["embedded"],
            }
        },
        "loggers": {
            "_granian": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "granian.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }


def _check_token_file(path: Path) -> None:
    """Refuse before initializing the store if the token could not be written afterwards."""
    parent = path.expanduser().absolute().parent
    if not parent.is_dir():
        raise ConfigurationError(f"--root-token-file: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigurationError(f"--root-token-file: directory {parent} is not writable")


def _write_token_file(path: Path, token: str) -> None:
    """Write `token` to `path` with mode 0600, atomically (temporary file, fsync, rename)."""
    target = path.expanduser().absolute()
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            data = (token + "\n").encode("ascii")
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


class _TokenReporter:
    """Hands the initial root token to the operator exactly once: to a file, or to stdout."""

    def __init__(self, settings: ServerSettings, stdout: TextIO) -> None:
        self._settings = settings
        self._stdout = stdout

    def __call__(self, token: str) -> None:
        settings = self._settings
        if settings.root_token_file is not None:
            _write_token_file(settings.root_token_file, token)
            logger.info("initial root token written to %s", settings.root_token_file)
            return
        if settings.dev and settings.dev_root_token is not None:
            # The operator chose it: repeating it would only copy it into logs.
            self._stdout.write("Root token: (the one given with --dev-root-token)\n")
        else:
            label = "Root token" if settings.dev else "Initial root token"
            self._stdout.write(
                f"{label} (shown once; store it safely, it cannot be shown again):\n\n"
                f"    {token}\n\n"
            )
        self._stdout.flush()


def _listen_refusal(settings: ServerSettings) -> str | None:
    if settings.is_tls or settings.insecure_listen or is_loopback(settings.listen_host):
        return None
    return (
        f"refusing to listen on {settings.listen_host}:{settings.listen_port} without TLS: "
        "tokens and secrets would cross the network in cleartext. Give --tls-cert and "
        "--tls-key, or --insecure-listen if a TLS-terminating proxy sits in front."
    )


class _StopOnSignals:
    """SIGTERM and SIGINT ask for one graceful stop, reliably, also under load.

    Not `loop.add_signal_handler`: asyncio delivers the signal as a byte through the loop's
    self-pipe, which granian also fills with a `call_soon_threadsafe` wake-up per request;
    when that pipe is full the byte is dropped, and the signal with it (seen: a SIGTERM sent
    right after a 1000-connection load test never stopped the server). A plain handler is
    never dropped: CPython records the signal and runs the handler on the main thread the
    next time it runs Python code, which the heartbeat below guarantees within a fraction
    of a second even on an idle server.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
        self._loop = loop
        self._stop = stop
        self._stopping = False
        self._previous = {
            signum: signal.signal(signum, self._handle)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        self._heartbeat = loop.call_later(_SIGNAL_CHECK_SECONDS, self._beat)

    def _handle(self, signum: int, frame: object) -> None:
        if self._stopping:
            logger.warning("already stopping; waiting for in-flight requests")
            return
        self._stopping = True
        logger.info("%s received: stopping", signal.Signals(signum).name)
        self._loop.call_soon_threadsafe(self._stop)

    def _beat(self) -> None:
        # Doing nothing is the point: the loop wakes up and runs Python code.
        self._heartbeat = self._loop.call_later(_SIGNAL_CHECK_SECONDS, self._beat)

    def close(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._heartbeat.cancel()


def _url(settings: ServerSettings) -> str:
    host = settings.listen_host
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if settings.is_tls else 'http'}://{host}:{settings.listen_port}"


async def _serve(settings: ServerSettings, app: TenantVaultApp, stderr: TextIO) -> int:
    try:
        await app.startup()
    except TenantVaultError as error:
        stderr.write(f"error: cannot open the store: {error.message or type(error).__name__}\n")
        return 1
    except OSError as error:
        stderr.write(f"error: cannot open the store: {error.strerror or type(error).__name__}\n")
        return 1
    stop_signals: _StopOnSignals | None = None
    try:
        server = Server(
            app,
            address=settings.listen_host,
            port=settings.listen_port,
            interface=Interfaces.ASGI,
            http=HTTPModes.auto,
            websockets=False,
            backlog=1024,
            http1_settings=HTTP1Settings(
                header_read_timeout=_HEADER_READ_TIMEOUT_MS,
                max_buffer_size=_MAX_HEADER_BUFFER_BYTES,
            ),
            log_level=LogLevels.warning,
            log_dictconfig=_granian_logging(),
            ssl_cert=settings.tls_cert,
            ssl_key=settings.tls_key,
        )
        # Graceful: granian stops accepting, lets in-flight requests finish, then runs the
        # lifespan shutdown, which closes the store.
        stop_signals = _StopOnSignals(asyncio.get_running_loop(), server.stop)
        broker = app.core.audit_broker
        if broker is not None:
            # logrotate's convention: SIGHUP makes file sinks reopen their path.
            signal.signal(signal.SIGHUP, lambda signum, frame: broker.reopen())
        logger.info(
            "listening on %s (%s)",
            _url(settings),
            "dev mode, in-memory store" if settings.dev else settings.backend_url,
        )
        await server.serve()
    except Exception as error:  # noqa: BLE001 -- granian raises bare errors for bind failures
        reason = error.strerror if isinstance(error, OSError) else str(error)
        stderr.write(
            f"error: cannot listen on {_url(settings)}: {reason or type(error).__name__}\n"
        )
        return 1
    finally:
        try:
            await app.shutdown()
        finally:
            # Only now: a second signal while the store closes must not kill the process.
            if stop_signals is not None:
                stop_signals.close()
    if app.startup_error is not None:
        return 1
    logger.info("stopped")
    return 0


def run(
    args: argparse.Namespace,
    *,
    environ: dict[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run `tenantvault serve` until SIGTERM or SIGINT; returns the exit code."""
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    try:
        settings = _settings(args, dict(os.environ) if environ is None else environ)
        if settings.root_token_file is not None:
            _check_token_file(settings.root_token_file)
    except ConfigurationError as error:
        err.write(f"error: {error.message}\n")
        return 2
    refusal = _listen_refusal(settings)
    if refusal is not None:
        err.write(f"error: {refusal}\n")
        return 2
    listener = _configure_logging(args.log_level)
    app = create_app(settings, on_root_token=_TokenReporter(settings, out))
    try:
        return asyncio.run(_serve(settings, app, err))
    except KeyboardInterrupt:
        # A second Ctrl-C during shutdown: stop now.
        return 130
    finally:
        listener.stop()  # writes out every queued line
