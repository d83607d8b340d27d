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
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tenantvault._durations import parse_duration
from tenantvault._exceptions import ConfigurationError, InvalidRequestError
from tenantvault.crypto import KEY_SIZE, decode_master_key

if TYPE_CHECKING:
    from tenantvault.cache import CacheSettings
    from tenantvault.seal._pkcs11 import Pkcs11Settings
from tenantvault.engines.auth._throttle import (
    DEFAULT_LOGIN_FAILURES,
    DEFAULT_LOGIN_WINDOW_SECONDS,
)

__all__ = [
    "DEFAULT_BODY_TIMEOUT_SECONDS",
    "DEFAULT_KEY_RETENTION_SECONDS",
    "DEFAULT_LISTEN_HOST",
    "DEFAULT_LISTEN_PORT",
    "DEFAULT_MAX_INFLIGHT",
    "DEFAULT_MAX_INFLIGHT_PER_TENANT",
    "DEFAULT_MAX_JSON_DEPTH",
    "DEFAULT_MAX_JSON_ITEMS",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_SHUTDOWN_TIMEOUT_SECONDS",
    "ENV_PREFIX",
    "EVENT_LOOPS",
    "SEAL_TYPES",
    "TENANCY_STRATEGIES",
    "UPSTREAM_ENGINES",
    "ServerSettings",
    "UpstreamOptions",
    "default_data_dir",
    "is_loopback",
    "parse_listen",
]

ENV_PREFIX = "TENANTVAULT_"
# `serve --event-loop`: uvloop where it is installed (Linux and macOS), or asyncio's own.
EVENT_LOOPS = ("uvloop", "asyncio")
DEFAULT_LISTEN_HOST = "127.0.0.1"
DEFAULT_LISTEN_PORT = 8200
# Vault's default `max_request_size`: clients written for Vault never hit a lower wall here.
DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024
# Far beyond any real secret, far below what makes a parser or a walk over the result slow
# (10^5 keys or 10^4-deep arrays are refused in bounded time).
DEFAULT_MAX_JSON_DEPTH = 64
DEFAULT_MAX_JSON_ITEMS = 10_000
# Requests in flight per tenant and on the server (the reasoning: `server/_admission.py`).
DEFAULT_MAX_INFLIGHT_PER_TENANT = 1024
DEFAULT_MAX_INFLIGHT = 4096
# How long a slow client may take to send its body before it gets 408: a client sending a
# byte a second (slowloris) must not hold a worker.
DEFAULT_BODY_TIMEOUT_SECONDS = 30.0
# How long shutdown waits for in-flight requests before closing the store under them.
DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 30.0
# Gateway mode: `namespace` (one upstream namespace per tenant), `prefix` (shared mounts,
# per-tenant paths) or `auto` (namespace when the upstream has namespaces).
TENANCY_STRATEGIES = ("auto", "namespace", "prefix")
# Who serves tenants' `secret/` and `transit/` in gateway mode: the upstream's own engines
# (the default: tenant secrets are real Vault secrets there), or tenantvault's embedded
# engines with every record sealed by tenantvault in the upstream's KV (upstream operators
# then see only ciphertext).
UPSTREAM_ENGINES = ("upstream", "embedded")
_VAULT_SCHEMES = ("vault+http", "vault+https")
# How the embedded store's master key is kept (`tenantvault.seal`): `file` (a key file or
# the environment; the weakest: a copy of the data directory with its key file opens it),
# `shamir` (in memory only, after a quorum of unseal key shares at `sys/unseal`) or `pkcs11`
# (wrapped by a key that never leaves an HSM, which unseals the store at every start).
SEAL_TYPES = ("file", "shamir", "pkcs11")
# A week: long enough to restore last night's backup after a rotation, short enough that a
# deleted tenant's key does not outlive a backup cycle by much.
DEFAULT_KEY_RETENTION_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class UpstreamOptions:
    """Gateway mode (`vault+https://`): how to reach, authenticate to and lay out the upstream.

    `root` is the upstream namespace (namespace strategy) or path prefix (prefix strategy)
    under which tenantvault owns everything; `namespace` is the operator's namespace above
    it, if any. Authentication is exactly one of `token` (from `TENANTVAULT_UPSTREAM_TOKEN`,
    never a flag or a file key), `token_file`, or AppRole (`role_id_file` + `secret_id_file`).
    Timeouts, pool and queue sizes: see `tenantvault.upstream.UpstreamClient`.
    """

    root: str = "tenantvault"
    namespace: str | None = None
    kv_mount: str = "secret"
    tenancy: str = "auto"
    engines: str = "upstream"
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    role_id_file: Path | None = None
    secret_id_file: Path | None = None
    approle_mount: str = "approle"
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    timeout_seconds: float = 10.0
    connect_timeout_seconds: float = 3.0
    pool_size: int = 1024
    max_waiting: int = 4096

    def __post_init__(self) -> None:
        if self.tenancy not in TENANCY_STRATEGIES:
            raise ConfigurationError("tenancy must be one of: auto, namespace, prefix")
        if self.engines not in UPSTREAM_ENGINES:
            raise ConfigurationError("upstream engines must be one of: upstream, embedded")
        if (self.client_cert is None) != (self.client_key is None):
            raise ConfigurationError("an upstream client certificate needs both cert and key")
        for name in ("timeout_seconds", "connect_timeout_seconds", "pool_size", "max_waiting"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"upstream {name} must be positive")


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


def _env_duration(raw: str, name: str) -> int:
    """A duration variable ('15m', '900s', '900') in whole seconds."""
    try:
        return parse_duration(raw, field=name)
    except InvalidRequestError:
        raise ConfigurationError(f"{ENV_PREFIX}{name} must be a duration like 15m") from None


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
    # The event loop `serve` runs on: uvloop (libuv, in C) where installed, else asyncio's own.
    # uvloop took 10-24 % of the server's CPU per request off (bench/RESULTS.md); `asyncio`
    # is the fallback for platforms without it and the comparison.
    event_loop: str = "uvloop"
    # Audit: the queryable store (in the data directory; in memory in dev mode) is on unless
    # turned off; a JSON-lines file and stdout are opt-in. Every enabled sink fails closed.
    audit_store: bool = True
    # Entries of the queryable store older than this are deleted (`services._audit_retention`);
    # 0: every entry is kept.
    audit_store_retention_seconds: int = 0
    audit_file: Path | None = None
    audit_stdout: bool = False
    audit_fsync: str = "always"
    # The directory where file (and store) audit devices created through `sys/audit/<name>`
    # may write; None: only these settings create them (as OpenBao 2.7: config only).
    audit_dir: Path | None = None
    # Gateway mode: the backend URL (`vault+https://HOST:PORT`; also `sqlite://...` or
    # `memory://`), None for the embedded store in the data directory; and the upstream's
    # settings when the URL is a vault one.
    backend: str | None = None
    upstream: UpstreamOptions = field(default_factory=UpstreamOptions)
    # The URL prefixes webhook rotators may call (`--rotation-webhook-allow`, repeatable).
    rotation_webhook_allow: tuple[str, ...] = ()
    # The `HOST[:PORT]`s database configs may connect to (`--database-allow`, repeatable;
    # none: any host the server can reach, as Vault).
    database_allow: tuple[str, ...] = ()
    # Logins (`engines/auth`): failed logins allowed per (mount, role, client address) within
    # the window, counted per process; and the URL prefixes a jwt mount's `jwks_url` may be
    # under (`--jwt-jwks-allow`; none: only URLs that reach public addresses).
    login_failures: int = DEFAULT_LOGIN_FAILURES
    login_window_seconds: int = DEFAULT_LOGIN_WINDOW_SECONDS
    jwt_jwks_allow: tuple[str, ...] = ()
    # The most leases one tenant may hold (`--lease-quota`; 0: no limit); past it a dynamic
    # secret is refused with 429 `lease count quota exceeded`.
    lease_quota: int = 0
    # Back-pressure (`server/_admission.py`): requests in flight per tenant and on the whole
    # server; past either, 429 with Retry-After. 0: no bound of that kind (both 0: off).
    max_inflight_per_tenant: int = DEFAULT_MAX_INFLIGHT_PER_TENANT
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    # Requests that run at once (0: no limit); admitted ones past it wait their turn, taken
    # round robin across tenants, so a flood costs others one turn, not a share of the CPU.
    max_running: int = 0
    # The embedded store's seal (see SEAL_TYPES), and how long after `sys/rotate` the old
    # key terms are kept (then destroyed: a backup from before the rotation stops opening
    # with the current keys).
    seal: str = "file"
    key_retention_seconds: float = DEFAULT_KEY_RETENTION_SECONDS
    # The pkcs11 seal: the PKCS#11 module, the token (label or slot), its PIN (from a file,
    # or TENANTVAULT_PKCS11_PIN), the wrapping key's label and mechanism.
    pkcs11_library: Path | None = None
    pkcs11_token_label: str | None = None
    pkcs11_slot: int | None = None
    pkcs11_pin: str | None = field(default=None, repr=False)
    pkcs11_pin_file: Path | None = None
    pkcs11_key_label: str | None = None
    pkcs11_mechanism: str = "CKM_AES_GCM"
    # Observability (`tenantvault.observability`): the metrics and anomaly observer is on
    # unless turned off (the bench measures its cost on/off); sys/metrics answers without a
    # token only if the operator says so (Vault's `unauthenticated_metrics_access`); the
    # server view names this many busiest tenants, the rest count as `other`; anomaly alerts
    # are POSTed to this URL if set (the one URL the operator allowed).
    observability: bool = True
    # The KV read cache (`tenantvault.cache`): on unless `--no-read-cache`; how long a read
    # is kept (the staleness bound across instances), how long past that the last good value
    # answers while the backend is unavailable, its bounds and one tenant's most share of them.
    read_cache: bool = True
    read_cache_ttl_seconds: float = 2.0
    read_cache_stale_seconds: float = 30.0
    read_cache_max_entries: int = 50_000
    read_cache_max_bytes: int = 32 * 1024 * 1024
    read_cache_tenant_share: float = 0.5
    # The dashboard at /ui/ (`tenantvault.ui`): `tenantvault serve` turns it on unless
    # --no-dashboard; an embedding application's create_app() gets it only if it asks.
    dashboard: bool = False
    metrics_unauthenticated: bool = False
    metrics_top_tenants: int = 20
    alert_webhook: str | None = None

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
        if self.metrics_top_tenants < 0:
            raise ConfigurationError("metrics_top_tenants must be 0 or more")
        if self.alert_webhook is not None:
            # Imported only when set: the check lives with the webhook it guards.
            from tenantvault.observability._webhook import check_url

            check_url(self.alert_webhook)
        for name in ("max_request_bytes", "max_json_depth", "max_json_items"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive")
        if self.audit_fsync not in ("always", "never"):
            raise ConfigurationError("audit fsync must be 'always' or 'never'")
        if self.event_loop not in EVENT_LOOPS:
            raise ConfigurationError("event loop must be 'uvloop' or 'asyncio'")
        for name in ("body_timeout_seconds", "shutdown_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive")
        if self.backend is not None:
            scheme = self.backend.partition("://")[0]
            if scheme not in ("memory", "sqlite", *_VAULT_SCHEMES):
                raise ConfigurationError(
                    "backend must be vault+https://HOST:PORT, vault+http://127.0.0.1:PORT, "
                    "sqlite:///path/to/data-dir or memory://"
                )
            if self.dev:
                raise ConfigurationError("dev mode is the in-memory store: it takes no backend")
        if self.key_retention_seconds < 0:
            raise ConfigurationError("key_retention_seconds must be 0 or more")
        if self.audit_store_retention_seconds < 0:
            raise ConfigurationError("audit_store_retention_seconds must be 0 or more")
        if self.seal not in SEAL_TYPES:
            raise ConfigurationError("seal must be one of: file, shamir, pkcs11")
        if self.seal != "file" and (
            self.dev or self.backend is not None or self.master_key or self.master_key_file
        ):
            raise ConfigurationError(
                f"the {self.seal} seal guards the embedded store in the data directory: it "
                "takes no dev mode, backend URL or master key"
            )
        if self.seal == "pkcs11":
            if self.pkcs11_library is None or not self.pkcs11_key_label:
                raise ConfigurationError("the pkcs11 seal needs a PKCS#11 library and a key label")
            if (self.pkcs11_pin is None) == (self.pkcs11_pin_file is None):
                raise ConfigurationError(
                    f"the pkcs11 seal needs its PIN from a file or {ENV_PREFIX}PKCS11_PIN (one)"
                )
        # Validated here, so a bad prefix stops `serve` before it binds (imported late: the
        # rotation package sits above the settings).
        from tenantvault.rotation import RotationSettings

        RotationSettings(webhook_allow=self.rotation_webhook_allow)
        from tenantvault.engines.database import DatabaseAllowList

        DatabaseAllowList(self.database_allow)
        if self.login_failures < 1 or self.login_window_seconds < 1:
            raise ConfigurationError("login failures and login window must be positive")
        if self.lease_quota < 0:
            raise ConfigurationError("the lease quota must be a positive number (0: no limit)")
        if min(self.max_inflight_per_tenant, self.max_inflight, self.max_running) < 0:
            raise ConfigurationError("in-flight bounds must be 0 (no bound) or more")
        if 0 < self.max_inflight < self.max_inflight_per_tenant:
            raise ConfigurationError("max_inflight_per_tenant must not exceed max_inflight")
        self.read_cache_settings()  # its own checks, before anything starts
        from tenantvault.engines.auth.jwt._egress import check_allow_prefix

        for prefix in self.jwt_jwks_allow:
            check_allow_prefix(prefix)

    def pkcs11_settings(self) -> Pkcs11Settings:
        """The pkcs11 seal's settings, with the PIN read from its file (at start)."""
        from tenantvault.seal._pkcs11 import Pkcs11Settings

        pin = self.pkcs11_pin
        if self.pkcs11_pin_file is not None:
            try:
                pin = self.pkcs11_pin_file.read_text().strip()
            except OSError:
                raise ConfigurationError(
                    f"cannot read the PKCS#11 PIN file {self.pkcs11_pin_file}"
                ) from None
        if self.pkcs11_library is None or not self.pkcs11_key_label or pin is None:
            raise ConfigurationError("the pkcs11 seal is not configured")
        return Pkcs11Settings(
            library=self.pkcs11_library,
            key_label=self.pkcs11_key_label,
            pin=pin,
            token_label=self.pkcs11_token_label,
            slot=self.pkcs11_slot,
            mechanism=self.pkcs11_mechanism,
        )

    def read_cache_settings(self) -> CacheSettings:
        """The read cache's settings (`tenantvault.cache`), validated."""
        from tenantvault.cache import CacheSettings

        return CacheSettings(
            enabled=self.read_cache,
            ttl_seconds=self.read_cache_ttl_seconds,
            stale_if_error_seconds=self.read_cache_stale_seconds,
            max_entries=self.read_cache_max_entries,
            max_bytes=self.read_cache_max_bytes,
            tenant_share=self.read_cache_tenant_share,
        )

    @property
    def is_gateway(self) -> bool:
        """Whether the backend is an upstream Vault/OpenBao (`vault+http(s)://`)."""
        return self.backend is not None and self.backend.partition("://")[0] in _VAULT_SCHEMES

    @property
    def resolved_data_dir(self) -> Path:
        """The data directory in use: `data_dir`, else the default one."""
        return self.data_dir if self.data_dir is not None else default_data_dir()

    @property
    def backend_url(self) -> str:
        """`memory://` in dev mode, else `backend`, else the embedded store in the data dir."""
        if self.dev:
            return "memory://"
        if self.backend is not None:
            return self.backend
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
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        defaults: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> ServerSettings:
        """Settings from `defaults` (a config file), then `TENANTVAULT_*` variables on top,
        then `overrides` (e.g. CLI flags) on top of those.

        Variables: DATA_DIR, LISTEN (HOST:PORT), DEV, DEV_ROOT_TOKEN, ROOT_TOKEN_FILE, TLS_CERT,
        TLS_KEY, INSECURE_LISTEN, MAX_REQUEST_BYTES, MASTER_KEY (base64 of 32 bytes),
        MASTER_KEY_FILE, ALLOW_INSECURE_PERMISSIONS, ACCESS_LOG, EVENT_LOOP, AUDIT_STORE,
        AUDIT_STORE_RETENTION (a duration), AUDIT_FILE, AUDIT_STDOUT, AUDIT_DIR, BACKEND, SEAL,
        KEY_RETENTION_SECONDS, PKCS11_LIBRARY,
        PKCS11_TOKEN_LABEL, PKCS11_SLOT, PKCS11_PIN, PKCS11_PIN_FILE, PKCS11_KEY_LABEL,
        PKCS11_MECHANISM, LOGIN_FAILURES, LOGIN_WINDOW (a duration), JWT_JWKS_ALLOW (prefixes
        separated by spaces), LEASE_QUOTA, and for gateway mode
        UPSTREAM_TOKEN, UPSTREAM_TOKEN_FILE, UPSTREAM_ROLE_ID_FILE, UPSTREAM_SECRET_ID_FILE,
        UPSTREAM_APPROLE_MOUNT, UPSTREAM_ROOT, UPSTREAM_NAMESPACE, UPSTREAM_KV_MOUNT,
        UPSTREAM_TENANCY, UPSTREAM_ENGINES, UPSTREAM_CA_FILE, UPSTREAM_CLIENT_CERT,
        UPSTREAM_CLIENT_KEY, UPSTREAM_TIMEOUT_SECONDS, UPSTREAM_CONNECT_TIMEOUT_SECONDS,
        UPSTREAM_POOL_SIZE, UPSTREAM_MAX_WAITING. Upstream keys in `defaults` and `overrides`
        are spelled `upstream_<field>` (e.g. `upstream_root`). An empty variable counts as unset.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            name: value for name, value in (defaults or {}).items() if value is not None
        }
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
        if loop := env.get(ENV_PREFIX + "EVENT_LOOP"):
            values["event_loop"] = loop
        if backend := env.get(ENV_PREFIX + "BACKEND"):
            values["backend"] = backend
        if seal := env.get(ENV_PREFIX + "SEAL"):
            values["seal"] = seal
        if pin := env.get(ENV_PREFIX + "PKCS11_PIN"):
            values["pkcs11_pin"] = pin
        for name in ("PKCS11_TOKEN_LABEL", "PKCS11_KEY_LABEL", "PKCS11_MECHANISM"):
            if text := env.get(ENV_PREFIX + name):
                values[name.lower()] = text
        for name in ("PKCS11_LIBRARY", "PKCS11_PIN_FILE"):
            if (path := _env_path(env, name)) is not None:
                values[name.lower()] = path
        if slot := env.get(ENV_PREFIX + "PKCS11_SLOT"):
            if not slot.isdigit():
                raise ConfigurationError(f"{ENV_PREFIX}PKCS11_SLOT must be a slot number")
            values["pkcs11_slot"] = int(slot)
        if retention := env.get(ENV_PREFIX + "KEY_RETENTION_SECONDS"):
            try:
                values["key_retention_seconds"] = float(retention)
            except ValueError:
                raise ConfigurationError(
                    f"{ENV_PREFIX}KEY_RETENTION_SECONDS must be a number of seconds"
                ) from None
        if retention := env.get(ENV_PREFIX + "AUDIT_STORE_RETENTION"):
            values["audit_store_retention_seconds"] = _env_duration(
                retention, "AUDIT_STORE_RETENTION"
            )
        if (failures := _env_positive(env, "LOGIN_FAILURES", int)) is not None:
            values["login_failures"] = failures
        if window := env.get(ENV_PREFIX + "LOGIN_WINDOW"):
            values["login_window_seconds"] = _env_duration(window, "LOGIN_WINDOW")
        if allow := env.get(ENV_PREFIX + "JWT_JWKS_ALLOW", "").split():
            values["jwt_jwks_allow"] = tuple(allow)
        if allow := env.get(ENV_PREFIX + "DATABASE_ALLOW", "").split():
            values["database_allow"] = tuple(allow)
        if (quota := _env_positive(env, "LEASE_QUOTA", int)) is not None:
            values["lease_quota"] = quota
        upstream_env = _upstream_env(env)
        flags = {name: value for name, value in overrides.items() if value is not None}
        # One way to authenticate upstream: the highest layer that names one decides, so a
        # --upstream-token-file flag replaces a token from the environment, not joins it.
        for layer in (flags, upstream_env):
            if _UPSTREAM_AUTH & layer.keys():
                for lower in (values, upstream_env):
                    if lower is not layer:
                        for name in _UPSTREAM_AUTH:
                            lower.pop(name, None)
                break
        values.update(upstream_env)
        values.update(flags)
        upstream = {
            name.removeprefix("upstream_"): values.pop(name)
            for name in list(values)
            if name.startswith("upstream_")
        }
        if upstream:
            values["upstream"] = UpstreamOptions(**upstream)
        return cls(**values)


_UPSTREAM_AUTH = frozenset(
    {"upstream_token", "upstream_token_file", "upstream_role_id_file", "upstream_secret_id_file"}
)


def _upstream_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The `TENANTVAULT_UPSTREAM_*` variables, as `upstream_<field>` keys."""
    values: dict[str, Any] = {}
    for name in ("ROOT", "NAMESPACE", "KV_MOUNT", "TENANCY", "ENGINES", "APPROLE_MOUNT"):
        if text := env.get(f"{ENV_PREFIX}UPSTREAM_{name}"):
            values[f"upstream_{name.lower()}"] = text
    if token := env.get(ENV_PREFIX + "UPSTREAM_TOKEN"):
        values["upstream_token"] = token
    for name in (
        "TOKEN_FILE",
        "ROLE_ID_FILE",
        "SECRET_ID_FILE",
        "CA_FILE",
        "CLIENT_CERT",
        "CLIENT_KEY",
    ):
        if (path := _env_path(env, f"UPSTREAM_{name}")) is not None:
            values[f"upstream_{name.lower()}"] = path
    for name, kind in (
        ("TIMEOUT_SECONDS", float),
        ("CONNECT_TIMEOUT_SECONDS", float),
        ("POOL_SIZE", int),
        ("MAX_WAITING", int),
    ):
        if (number := _env_positive(env, f"UPSTREAM_{name}", kind)) is not None:
            values[f"upstream_{name.lower()}"] = number
    return values
