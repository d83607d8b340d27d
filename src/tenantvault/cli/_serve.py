"""`tenantvault serve`: run the Vault-compatible HTTP server on granian, in this process.

The ASGI app runs on granian's embedded server inside this process's event loop, so the
settings (and a master key from the environment) reach the app as Python objects — nothing
secret travels through a command line, an environment of a child process or a pickle. The
store is opened *before* the port is bound: a wrong master key or an unreadable data
directory fails fast with a clear message, and the initial root token is reported before
anyone can connect.

Settings come from three layers: a TOML config file (`--config tenantvault.toml`), then
`TENANTVAULT_*` environment variables, then flags — each layer overrides the one before.
Every flag has a config file key of the same name without the dashes in front
(`listen = "0.0.0.0:8200"`, `backend = "vault+https://vault.internal:8200"`,
`upstream-token-file = "/run/secrets/upstream-token"`, `dev = true`); a key the parser does
not know is refused. Secrets have no key: the master key and the upstream token come from
files or the environment only.

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 if the store or the listener could
not start, 2 for bad flags or settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

# granian is a base dependency (the server is the product); the CLI still imports this module
# only for `serve`, and turns a missing granian (a damaged install) into a usage error.
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.embed import Server

from tenantvault._collector import tuned_collector
from tenantvault._config import (
    DEFAULT_LISTEN_HOST,
    DEFAULT_LISTEN_PORT,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_MAX_INFLIGHT_PER_TENANT,
    ENV_PREFIX,
    EVENT_LOOPS,
    SEAL_TYPES,
    TENANCY_STRATEGIES,
    UPSTREAM_ENGINES,
    ServerSettings,
    is_loopback,
    parse_listen,
)
from tenantvault._durations import parse_duration
from tenantvault._exceptions import ConfigurationError, InvalidRequestError, TenantVaultError
from tenantvault.backends._lock import lock_data_dir
from tenantvault.engines.auth import DEFAULT_LOGIN_FAILURES, DEFAULT_LOGIN_WINDOW_SECONDS
from tenantvault.server import TenantVaultApp, create_app
from tenantvault.server._log_writer import LOG_FORMAT, LineHandler, LineWriter

__all__ = ["add_parser", "run"]

logger = logging.getLogger("tenantvault.serve")

# Slowloris: a client gets this long to send its request headers, then the connection closes.
_HEADER_READ_TIMEOUT_MS = 10_000
# hyper's read buffer bounds the request head: bigger header blocks get 431.
_MAX_HEADER_BUFFER_BYTES = 64 * 1024 + 8192
# How often the main thread wakes up to run pending signal handlers (see _StopOnSignals).
_SIGNAL_CHECK_SECONDS = 0.2
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
        help=(
            "do not keep the queryable audit store (DATA_DIR/audit.db; in memory with --dev, "
            "its newest 50,000 entries)"
        ),
    )
    flag(
        "audit-store-retention",
        metavar="DURATION",
        help="delete the audit store's entries older than this, e.g. 90d (default: keep "
        "every entry; the file then grows until the disk is full, when requests fail "
        f"closed); or {ENV_PREFIX}AUDIT_STORE_RETENTION",
    )
    flag(
        "audit-fsync",
        choices=("always", "never"),
        help="fsync the audit file after each group of entries (default always)",
    )
    flag(
        "config",
        metavar="PATH",
        type=Path,
        help="read settings from this TOML file first (keys: the flag names, e.g. "
        'listen = "127.0.0.1:8200"); environment variables and flags override it',
    )
    flag(
        "seal",
        choices=SEAL_TYPES,
        help="how the master key is kept: file (DATA_DIR/master.key or --master-key-file; "
        "the default and the weakest: a copy of the data directory with its key file opens "
        "it), shamir (in memory only, after a quorum of unseal key shares: `tenantvault "
        "operator init`, then `operator unseal`) or pkcs11 (wrapped by an HSM key, "
        f"unsealed by the HSM at every start: see --pkcs11-*); or {ENV_PREFIX}SEAL",
    )
    _add_pkcs11_flags(flag)
    flag(
        "key-retention",
        metavar="SECONDS",
        type=float,
        help="after `sys/rotate`, keep the old key terms this long, then destroy them: a "
        "backup from before the rotation stops opening with the current keys (default "
        f"604800, a week); or {ENV_PREFIX}KEY_RETENTION_SECONDS",
    )
    _add_upstream_flags(flag)
    flag(
        "rotation-webhook-allow",
        metavar="PREFIX",
        action="append",
        help="let webhook rotators (sys/rotation) call URLs under PREFIX, e.g. "
        "https://hooks.example.com/rotate/ (repeatable; default: no webhook rotator)",
    )
    flag(
        "database-allow",
        metavar="HOST[:PORT]",
        action="append",
        help="let database configs (connection_url) connect only to HOST[:PORT] (port "
        "5432 when left out; repeatable; default: any host the server can reach); or "
        f"{ENV_PREFIX}DATABASE_ALLOW (space-separated)",
    )
    flag(
        "login-failures",
        metavar="N",
        type=int,
        help="answer 429 to logins (approle, jwt) after N failures per role and client "
        f"address within the login window (default {DEFAULT_LOGIN_FAILURES}; counted per "
        f"server process); or {ENV_PREFIX}LOGIN_FAILURES",
    )
    flag(
        "lease-quota",
        metavar="N",
        type=int,
        help="refuse a tenant's new dynamic secrets (429) while it holds N leases "
        f"(default: no limit); or {ENV_PREFIX}LEASE_QUOTA",
    )
    flag(
        "max-inflight-per-tenant",
        metavar="N",
        type=int,
        help="answer 429 (with Retry-After) to a tenant's requests while N of them are in "
        f"flight (default {DEFAULT_MAX_INFLIGHT_PER_TENANT}; 0: no per-tenant bound)",
    )
    flag(
        "max-inflight",
        metavar="N",
        type=int,
        help="answer 429 (with Retry-After) while N requests are in flight on the server "
        f"(default {DEFAULT_MAX_INFLIGHT}; 0: no bound; both 0: no back-pressure)",
    )
    flag(
        "max-running",
        metavar="N",
        type=int,
        help="run at most N requests at once; admitted ones past it wait their turn, taken "
        "round robin across tenants (default: no limit; a few per core suits the embedded "
        "store, leave it off in front of a slow upstream)",
    )
    flag(
        "login-window",
        metavar="DURATION",
        help="the window failed logins are counted in, e.g. 15m (default "
        f"{DEFAULT_LOGIN_WINDOW_SECONDS // 60}m); or {ENV_PREFIX}LOGIN_WINDOW",
    )
    flag(
        "jwt-jwks-allow",
        metavar="PREFIX",
        action="append",
        help="let jwt auth mounts fetch keys (jwks_url) only from URLs under PREFIX, e.g. "
        "https://idp.example.com/ (repeatable; hosts under a prefix may be internal). "
        "Default: any URL, but only public addresses are connected to (no loopback, "
        f"private or link-local: no SSRF); or {ENV_PREFIX}JWT_JWKS_ALLOW (space-separated)",
    )
    flag(
        "no-observability",
        action="store_true",
        default=None,
        help="do not count requests for sys/metrics, the dashboard and anomaly alerts "
        "(the bench measures their cost with and without)",
    )
    flag(
        "no-read-cache",
        action="store_true",
        default=None,
        help="do not cache KV reads in memory (per mount: `-options=cache=off`)",
    )
    flag(
        "read-cache-ttl",
        metavar="SECONDS",
        type=float,
        help="keep a KV read this long: a write through another instance (or straight "
        "upstream) shows here after at most this (default 2)",
    )
    flag(
        "read-cache-stale-if-error",
        metavar="SECONDS",
        type=float,
        help="while the backend is unavailable, answer with the last good value for up to "
        "this long past its TTL, with a warning (default 30; 0: never)",
    )
    flag(
        "read-cache-max-entries",
        metavar="N",
        type=int,
        help="the most KV reads kept (default 50000)",
    )
    flag(
        "read-cache-max-bytes",
        metavar="N",
        type=int,
        help="the most bytes of sealed KV reads kept (default 33554432, 32 MiB)",
    )
    flag(
        "read-cache-tenant-share",
        metavar="FRACTION",
        type=float,
        help="the largest part of the read cache one tenant may hold (default 0.5)",
    )
    flag(
        "no-dashboard",
        action="store_true",
        default=None,
        help="do not serve the dashboard at /ui/",
    )
    flag(
        "metrics-unauthenticated",
        action="store_true",
        default=None,
        help="answer GET /v1/sys/metrics without a token (Vault's "
        "unauthenticated_metrics_access; not audited)",
    )
    flag(
        "metrics-top-tenants",
        metavar="N",
        type=int,
        help="name the N busiest tenants in the server's metrics, the rest as `other` (default 20)",
    )
    flag(
        "alert-webhook",
        metavar="URL",
        help="POST each anomaly alert as JSON to URL (https, or http to loopback)",
    )
    flag("log-level", choices=_LOG_LEVELS, default=None, help="log level (default info)")
    flag("no-access-log", action="store_true", default=None, help="do not log one line per request")
    flag(
        "event-loop",
        choices=EVENT_LOOPS,
        default=None,
        help="the event loop to serve on: uvloop (default where installed) or asyncio's own",
    )
    return parser


def _add_pkcs11_flags(flag: Callable[..., None]) -> None:
    """`--seal pkcs11`: the PKCS#11 module, token, PIN and wrapping key."""
    flag("pkcs11-library", metavar="PATH", type=Path, help="PKCS#11 module (.so) of the HSM")
    flag("pkcs11-token-label", metavar="LABEL", help="the HSM token, by label")
    flag("pkcs11-slot", metavar="N", type=int, help="the HSM token, by slot number")
    flag(
        "pkcs11-pin-file",
        metavar="PATH",
        type=Path,
        help=f"file holding the token's user PIN; or {ENV_PREFIX}PKCS11_PIN",
    )
    flag("pkcs11-key-label", metavar="LABEL", help="label of the wrapping key on the token")
    flag(
        "pkcs11-mechanism",
        choices=("CKM_AES_GCM", "CKM_RSA_PKCS_OAEP"),
        help="how the HSM key wraps the master key (default CKM_AES_GCM)",
    )


def _add_upstream_flags(flag: Callable[..., None]) -> None:
    """Gateway mode: `--backend vault+https://...` and how to reach and log in upstream."""
    flag(
        "backend",
        metavar="URL",
        help="where the data lives: vault+https://HOST:PORT (an upstream Vault/OpenBao; "
        "vault+http:// for loopback only), sqlite:///DIR or memory://; default the embedded "
        f"store in the data directory; or {ENV_PREFIX}BACKEND",
    )
    flag(
        "upstream-token-file",
        metavar="PATH",
        type=Path,
        help="file holding tenantvault's upstream token (read again when renewal fails); "
        f"or {ENV_PREFIX}UPSTREAM_TOKEN",
    )
    flag("upstream-role-id-file", metavar="PATH", type=Path, help="AppRole role_id file")
    flag("upstream-secret-id-file", metavar="PATH", type=Path, help="AppRole secret_id file")
    flag("upstream-approle-mount", metavar="PATH", help="AppRole mount path (default approle)")
    flag(
        "upstream-root",
        metavar="NAME",
        help="upstream namespace or path prefix tenantvault owns (default tenantvault)",
    )
    flag(
        "upstream-namespace",
        metavar="NAMESPACE",
        help="the operator's upstream namespace above the root (default: none)",
    )
    flag("upstream-kv-mount", metavar="PATH", help="upstream KV v2 mount (default secret)")
    flag(
        "upstream-tenancy",
        choices=TENANCY_STRATEGIES,
        help="namespace (one upstream namespace per tenant), prefix (shared mounts) or auto "
        "(namespace if the upstream has namespaces; the default)",
    )
    flag(
        "upstream-engines",
        choices=UPSTREAM_ENGINES,
        help="who serves tenants' secret/ and transit/: upstream (the upstream's own engines, "
        "readable there with Vault's tools; the default) or embedded (tenantvault's engines, "
        "every record sealed by tenantvault in the upstream KV)",
    )
    flag("upstream-ca-file", metavar="PATH", type=Path, help="CA bundle for the upstream's TLS")
    flag("upstream-client-cert", metavar="PATH", type=Path, help="TLS client certificate (PEM)")
    flag("upstream-client-key", metavar="PATH", type=Path, help="TLS client key (PEM)")
    flag(
        "upstream-timeout",
        metavar="SECONDS",
        type=float,
        help="timeout of each upstream call (default 10)",
    )
    flag(
        "upstream-connect-timeout",
        metavar="SECONDS",
        type=float,
        help="timeout of each upstream connection set-up (default 3)",
    )
    flag(
        "upstream-pool-size",
        metavar="N",
        type=int,
        help="upstream requests in flight at most (default 1024)",
    )
    flag(
        "upstream-max-waiting",
        metavar="N",
        type=int,
        help="upstream requests waiting for the pool at most; beyond, 503 (default 4096)",
    )


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """ServerSettings fields from parsed flags (None: not given)."""
    listen_host = listen_port = None
    if args.listen:
        listen_host, listen_port = parse_listen(args.listen)
    return dict(
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
        event_loop=args.event_loop,
        audit_file=args.audit_file,
        audit_stdout=args.audit_stdout,
        audit_store=False if args.no_audit_store else None,
        audit_store_retention_seconds=(
            _duration_flag(args.audit_store_retention, "--audit-store-retention")
            if args.audit_store_retention
            else None
        ),
        audit_fsync=args.audit_fsync,
        audit_dir=args.audit_dir,
        backend=args.backend,
        seal=args.seal,
        key_retention_seconds=args.key_retention,
        pkcs11_library=args.pkcs11_library,
        pkcs11_token_label=args.pkcs11_token_label,
        pkcs11_slot=args.pkcs11_slot,
        pkcs11_pin_file=args.pkcs11_pin_file,
        pkcs11_key_label=args.pkcs11_key_label,
        pkcs11_mechanism=args.pkcs11_mechanism,
        upstream_token_file=args.upstream_token_file,
        upstream_role_id_file=args.upstream_role_id_file,
        upstream_secret_id_file=args.upstream_secret_id_file,
        upstream_approle_mount=args.upstream_approle_mount,
        upstream_root=args.upstream_root,
        upstream_namespace=args.upstream_namespace,
        upstream_kv_mount=args.upstream_kv_mount,
        upstream_tenancy=args.upstream_tenancy,
        upstream_engines=args.upstream_engines,
        upstream_ca_file=args.upstream_ca_file,
        upstream_client_cert=args.upstream_client_cert,
        upstream_client_key=args.upstream_client_key,
        upstream_timeout_seconds=args.upstream_timeout,
        upstream_connect_timeout_seconds=args.upstream_connect_timeout,
        upstream_pool_size=args.upstream_pool_size,
        upstream_max_waiting=args.upstream_max_waiting,
        rotation_webhook_allow=tuple(args.rotation_webhook_allow or ()) or None,
        database_allow=tuple(args.database_allow or ()) or None,
        login_failures=args.login_failures,
        lease_quota=args.lease_quota,
        max_inflight_per_tenant=args.max_inflight_per_tenant,
        max_inflight=args.max_inflight,
        max_running=args.max_running,
        login_window_seconds=(
            _duration_flag(args.login_window, "--login-window") if args.login_window else None
        ),
        jwt_jwks_allow=tuple(args.jwt_jwks_allow or ()) or None,
        observability=False if args.no_observability else None,
        read_cache=False if args.no_read_cache else None,
        read_cache_ttl_seconds=args.read_cache_ttl,
        read_cache_stale_seconds=args.read_cache_stale_if_error,
        read_cache_max_entries=args.read_cache_max_entries,
        read_cache_max_bytes=args.read_cache_max_bytes,
        read_cache_tenant_share=args.read_cache_tenant_share,
        dashboard=False if args.no_dashboard else None,
        metrics_unauthenticated=args.metrics_unauthenticated,
        metrics_top_tenants=args.metrics_top_tenants,
        alert_webhook=args.alert_webhook,
    )


def _duration_flag(raw: str, name: str) -> int:
    """A duration flag ('15m', '900s', '900') in whole seconds."""
    try:
        return parse_duration(raw, field=name)
    except InvalidRequestError:
        raise ConfigurationError(f"{name} must be a duration like 15m") from None


def _file_args(path: Path) -> argparse.Namespace:
    """The config file's keys, parsed by the same parser as the flags (one set of rules)."""
    try:
        with path.expanduser().open("rb") as file:
            document = tomllib.load(file)
    except OSError as error:
        raise ConfigurationError(f"cannot read the config file {path}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"the config file {path} is not valid TOML: {error}") from error
    root = argparse.ArgumentParser(prog="tenantvault", add_help=False)
    parser = add_parser(root.add_subparsers())
    known = {
        action.option_strings[-1].removeprefix("--"): action
        for action in parser._actions  # argparse offers no public way to list them
        if action.option_strings and action.dest not in ("help", "config")
    }
    argv: list[str] = []
    for key, value in document.items():
        action = known.get(key)
        if action is None:
            raise ConfigurationError(f"unknown key {key!r} in the config file {path}")
        if action.nargs == 0:  # a switch: true turns it on, false leaves it off
            if not isinstance(value, bool):
                raise ConfigurationError(f"config file key {key!r} must be true or false")
            if value:
                argv.append(f"--{key}")
            continue
        # A repeatable flag takes a list: `rotation-webhook-allow = ["https://a/", ...]`.
        if isinstance(value, list) and not isinstance(action, argparse._AppendAction):
            raise ConfigurationError(f"config file key {key!r} takes one value, not a list")
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise ConfigurationError(f"config file key {key!r} must be a string or a number")
            argv.append(f"--{key}={item}")
    try:
        return root.parse_args(["serve", *argv])
    except SystemExit:
        # argparse already wrote its message (which names the key) to stderr.
        raise ConfigurationError(f"invalid value in the config file {path}") from None


def _settings(args: argparse.Namespace, environ: dict[str, str]) -> ServerSettings:
    # `serve` serves the dashboard unless told not to (create_app() alone does not).
    defaults: dict[str, Any] = {"dashboard": True}
    if args.config is not None:
        defaults.update(
            (key, value)
            for key, value in _overrides(_file_args(args.config)).items()
            if value is not None
        )
    return ServerSettings.from_env(environ, defaults=defaults, **_overrides(args))


def _log_level(args: argparse.Namespace) -> str:
    """--log-level, else the config file's, else info."""
    if args.log_level:
        return str(args.log_level)
    if args.config is not None:
        from_file = _file_args(args.config).log_level
        if from_file:
            return str(from_file)
    return "info"


def _configure_logging(level: str) -> LineWriter:
    """Log to stderr from a background thread: the event loop only queues each line, so a
    slow reader of stderr (one line per request with the access log) never stalls it. The
    access log skips `logging` altogether (`server._log_writer`: the line is formatted once
    and written in batches), in the same format and the same stream order."""
    # The logging HOWTO's "optimization" switches: nobody reads these fields in our format,
    # and computing them (a stack walk for the caller) costs more than the line itself.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    writer = LineWriter(sys.stderr)
    root = logging.getLogger("tenantvault")
    root.handlers[:] = [LineHandler(writer)]
    root.setLevel(level.upper())
    root.propagate = False
    writer.start()
    return writer


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
        "formatters": {"plain": {"format": LOG_FORMAT}},
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


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop for `uvloop` when it is installed (it is a dependency where it builds),
    else None: asyncio's own. Every request runs through the loop several times (granian's
    wake-ups, the audit writer's, each await), and libuv's loop does that in C."""
    if name != "uvloop":
        return None
    try:
        import uvloop  # optional: no wheel for Windows
    except ImportError:
        logger.info("uvloop is not installed: serving on asyncio's own event loop")
        return None
    return uvloop.new_event_loop


def _loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """`uvloop` or `asyncio`: which loop serves, for the start-up line."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


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
            "listening on %s (%s; %s event loop)",
            _url(settings),
            "dev mode, in-memory store" if settings.dev else settings.backend_url,
            _loop_name(asyncio.get_running_loop()),
        )
        # Collections that do not grow with the heap, hence with the tenants (`_collector`).
        with tuned_collector():
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
    try:
        # Held until the process ends: a second server on this data directory would corrupt
        # the store's record cache and the audit chain (`backends._lock`). A gateway keeps
        # nothing there but its audit store: without one, instances may share a config file.
        uses_data_dir = not settings.dev and (not settings.is_gateway or settings.audit_store)
        data_dir_lock = (
            lock_data_dir(settings.resolved_data_dir, role="server") if uses_data_dir else None
        )
    except ConfigurationError as error:
        err.write(f"error: cannot open the store: {error.message}\n")
        return 1
    log_writer = _configure_logging(_log_level(args))
    app = create_app(
        settings,
        on_root_token=_TokenReporter(settings, out),
        access_log=log_writer.access_log(logging.getLogger("tenantvault.server.access")),
    )
    try:
        with asyncio.Runner(loop_factory=_loop_factory(settings.event_loop)) as runner:
            return runner.run(_serve(settings, app, err))
    except KeyboardInterrupt:
        # A second Ctrl-C during shutdown: stop now.
        return 130
    finally:
        log_writer.stop()  # writes out every queued line
        if data_dir_lock is not None:
            data_dir_lock.release()
