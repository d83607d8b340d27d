"""Frozen server settings with `DEFAULT_*` constants and an explicit, opt-in `from_env()`.

Nothing here reads the environment at import time: `ServerSettings()` is built from code,
`ServerSettings.from_env()` reads `TENANTVAULT_*` only when called, and the default data
directory is resolved (from `XDG_DATA_HOME`) only when a setting needs it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tenantvault._exceptions import ConfigurationError
from tenantvault.crypto import KEY_SIZE, decode_master_key

__all__ = [
    "DEFAULT_BODY_TIMEOUT_SECONDS",
    "DEFAULT_LISTEN_HOST",
    "DEFAULT_LISTEN_PORT",
    "DEFAULT_MAX_JSON_DEPTH",
    "DEFAULT_MAX_JSON_ITEMS",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_SHUTDOWN_TIMEOUT_SECONDS",
    "ENV_PREFIX",
    "ServerSettings",
    "default_data_dir",
    "is_loopback",
    "parse_listen",
]

ENV_PREFIX = "TENANTVAULT_"
DEFAULT_LISTEN_HOST = "127.0.0.1"
DEFAULT_LISTEN_PORT = 8200
# Vault's default `max_request_size`: clients written for Vault never hit a lower wall here.
DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024
# Far beyond any real secret, far below what makes a parser or a walk over the result slow
# (10^5 keys or 10^4-deep arrays are refused in bounded time).
DEFAULT_MAX_JSON_DEPTH = 64
DEFAULT_MAX_JSON_ITEMS = 10_000
# How long a slow client may take to send its body before it gets 408: a client sending a
# byte a second (slowloris) must not hold a worker.
DEFAULT_BODY_TIMEOUT_SECONDS = 30.0
# How long shutdown waits for in-flight requests before closing the store under them.
DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 30.0


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_DATA_HOME/tenantvault`, else `~/.local/share/tenantvault` (XDG base dir spec)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME", "")
    # The spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    if base and os.path.isabs(base):
        return Path(base) / "tenantvault"
    return Path.home() / ".local" / "share" / "tenantvault"


def parse_listen(value: str) -> tuple[str, int]:
    """Split `HOST:PORT` (`[::1]:8200` for IPv6). HOST is an IP address or `localhost`."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not port_text.isascii():
        raise ConfigurationError("listen address must look like HOST:PORT, e.g. 127.0.0.1:8200")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ConfigurationError("listen port must be between 0 and 65535")
    if host == "localhost":
        # The server binds an IP address; resolving names would make the loopback check
        # depend on /etc/hosts and DNS.
        host = DEFAULT_LISTEN_HOST
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigurationError(
            "listen host must be an IP address (or 'localhost'), e.g. 127.0.0.1 or [::1]"
        ) from None
    return host, port


def is_loopback(host: str) -> bool:
    """True if `host` (an IP address) only accepts connections from this machine."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _decode_master_key(text: str) -> bytes:
    key = decode_master_key(text)
    if key is None:
        # Never echo the value: it may be a real key in the wrong format.
        raise ConfigurationError(
            f"{ENV_PREFIX}MASTER_KEY must be the base64 encoding of {KEY_SIZE} bytes"
        )
    return key


def _env_bool(env: Mapping[str, str], name: str) -> bool | None:
    raw = env.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return None
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{ENV_PREFIX}{name} must be true or false")


def _env_path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(ENV_PREFIX + name)
    return Path(raw).expanduser() if raw else None


def _env_positive(env: Mapping[str, str], name: str, kind: type[int] | type[float]) -> Any:
    raw = env.get(ENV_PREFIX + name)
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{ENV_PREFIX}{name} must be a positive number") from None
    if value <= 0:
        raise ConfigurationError(f"{ENV_PREFIX}{name} must be a positive number")
    return value


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything `tenantvault serve` and `create_app()` need, validated on construction.

    `data_dir=None` means the default data directory. `dev=True` serves the in-memory mock
    (nothing persisted) with `dev_root_token` as the root token, or a generated one. Secret
    fields (`dev_root_token`, `master_key`) are left out of `repr`. The store refuses to open
    if group or others can use its files, unless `allow_insecure_permissions` (a warning then).
    """

    data_dir: Path | None = None
    listen_host: str = DEFAULT_LISTEN_HOST
    listen_port: int = DEFAULT_LISTEN_PORT
    dev: bool = False
    dev_root_token: str | None = field(default=None, repr=False)
    root_token_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_listen: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH
    max_json_items: int = DEFAULT_MAX_JSON_ITEMS
    body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS
    shutdown_timeout_seconds: float = DEFAULT_SHUTDOWN_TIMEOUT_SECONDS
    master_key: bytes | None = field(default=None, repr=False)
    master_key_file: Path | None = None
    allow_insecure_permissions: bool = False
    access_log: bool = True
    # Audit: the queryable store (in the data directory; in memory in dev mode) is on unless
    # turned off; a JSON-lines file and stdout are opt-in. Every enabled sink fails closed.
    audit_store: bool = True
    audit_file: Path | None = None
    audit_stdout: bool = False
    audit_fsync: str = "always"
    # The directory where file (and store) audit devices created through `sys/audit/<name>`
    # may write; None: only these settings create them (as OpenBao 2.7: config only).
    audit_dir: Path | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.listen_port <= 65535:
            raise ConfigurationError("listen port must be between 0 and 65535")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigurationError("TLS needs both a certificate and a key")
        if self.dev_root_token is not None and not self.dev:
            raise ConfigurationError("a dev root token is only allowed in dev mode")
        if self.master_key is not None and self.master_key_file is not None:
            raise ConfigurationError("give either a master key or a master key file, not both")
        if self.master_key is not None and len(self.master_key) != KEY_SIZE:
            raise ConfigurationError(f"the master key must be {KEY_SIZE} bytes")
        if self.dev and (self.master_key is not None or self.master_key_file is not None):
            raise ConfigurationError("dev mode keeps everything in memory: it takes no master key")
        for name in ("max_request_bytes", "max_json_depth", "max_json_items"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive")
        if self.audit_fsync not in ("always", "never"):
            raise ConfigurationError("audit fsync must be 'always' or 'never'")
        for name in ("body_timeout_seconds", "shutdown_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive")

    @property
    def resolved_data_dir(self) -> Path:
        """The data directory in use: `data_dir`, else the default one."""
        return self.data_dir if self.data_dir is not None else default_data_dir()

    @property
    def backend_url(self) -> str:
        """`memory://` in dev mode, else the embedded store in the data directory."""
        if self.dev:
            return "memory://"
        # Quoted, so that '%', '?' or '#' in a directory name survive the URL round trip.
        return "sqlite://" + quote(str(self.resolved_data_dir.expanduser().absolute()))

    @property
    def is_tls(self) -> bool:
        """Whether the server serves HTTPS (a certificate is set)."""
        return self.tls_cert is not None

    def replace(self, **changes: Any) -> ServerSettings:
        """A copy with `changes` applied (and validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Settings from `TENANTVAULT_*` variables, then `overrides` (e.g. CLI flags) on top.

        Variables: DATA_DIR, LISTEN (HOST:PORT), DEV, DEV_ROOT_TOKEN, ROOT_TOKEN_FILE,
        TLS_CERT, TLS_KEY, INSECURE_LISTEN, MAX_REQUEST_BYTES, MASTER_KEY (base64 of 32
        bytes), MASTER_KEY_FILE, ALLOW_INSECURE_PERMISSIONS, ACCESS_LOG, AUDIT_STORE,
        AUDIT_FILE, AUDIT_STDOUT, AUDIT_DIR. An empty variable counts as unset.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if (data_dir := _env_path(env, "DATA_DIR")) is not None:
            values["data_dir"] = data_dir
        if listen := env.get(ENV_PREFIX + "LISTEN"):
            values["listen_host"], values["listen_port"] = parse_listen(listen)
        for name, key in (
            ("DEV", "dev"),
            ("INSECURE_LISTEN", "insecure_listen"),
            ("ALLOW_INSECURE_PERMISSIONS", "allow_insecure_permissions"),
            ("ACCESS_LOG", "access_log"),
            ("AUDIT_STORE", "audit_store"),
            ("AUDIT_STDOUT", "audit_stdout"),
        ):
            if (flag := _env_bool(env, name)) is not None:
                values[key] = flag
        if token := env.get(ENV_PREFIX + "DEV_ROOT_TOKEN"):
            values["dev_root_token"] = token
        for name, key in (
            ("ROOT_TOKEN_FILE", "root_token_file"),
            ("TLS_CERT", "tls_cert"),
            ("TLS_KEY", "tls_key"),
            ("MASTER_KEY_FILE", "master_key_file"),
            ("AUDIT_FILE", "audit_file"),
            ("AUDIT_DIR", "audit_dir"),
        ):
            if (path := _env_path(env, name)) is not None:
                values[key] = path
        if (size := _env_positive(env, "MAX_REQUEST_BYTES", int)) is not None:
            values["max_request_bytes"] = size
        if key_text := env.get(ENV_PREFIX + "MASTER_KEY"):
            values["master_key"] = _decode_master_key(key_text)
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)
