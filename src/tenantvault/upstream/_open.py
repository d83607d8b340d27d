"""Open gateway mode from a `vault+https://` URL: client, login, tenancy choice, record backend.

`open_upstream(url, options)` builds the one `UpstreamClient`, logs in (`UpstreamAuth`),
resolves the tenancy strategy (`auto`: `namespace` when the upstream answers
`LIST sys/namespaces` — OpenBao >= 2.3, Vault Enterprise — else `prefix`), and opens the
`UpstreamBackend` for tenantvault's own records:

- `namespace`: records in the namespace `<namespace>/<root>` (created if missing), KV v2
  mount `<kv_mount>`, under `_records/`; tenant `acme` is the namespace `<root>/acme`.
- `prefix`: records in `<kv_mount>` of the operator's namespace, under `<root>/_records/`
  (tenant ids contain no '_', so no tenant's `<root>/<tenant>/` prefix can reach them).

The resulting `UpstreamGateway` (`backend.gateway`) is what upstream-backed engines use:
the client, the auth (for tenantvault's own token) and the resolved layout.

For `tenantvault.open("vault+https://HOST:PORT?...")` the URL's query may carry the
non-secret options under the `UpstreamOptions` field names (`root`, `namespace`,
`kv_mount`, `tenancy`, `engines`, `token_file`, `role_id_file`, `secret_id_file`, `approle_mount`,
`ca_file`, `client_cert`, `client_key`, `timeout_seconds`, `connect_timeout_seconds`,
`pool_size`, `max_waiting`); a token is never accepted in a URL — without a file or
AppRole, it is read from `TENANTVAULT_UPSTREAM_TOKEN` when the backend opens.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from tenantvault._config import ENV_PREFIX, UpstreamOptions
from tenantvault._exceptions import ConfigurationError, TenantVaultError
from tenantvault.backends._permissions import check_private
from tenantvault.crypto import KEY_SIZE, decode_master_key
from tenantvault.services import Service
from tenantvault.upstream._auth import UpstreamAuth, UpstreamCredentials
from tenantvault.upstream._backend import UpstreamBackend, UpstreamRecordsLocation
from tenantvault.upstream._client import UpstreamClient, UpstreamSettings

__all__ = ["UpstreamGateway", "open_upstream", "parse_upstream_url"]

_RECORDS: Final = "_records"
_PATH_FIELDS: Final = frozenset(
    {"token_file", "role_id_file", "secret_id_file", "ca_file", "client_cert", "client_key"}
)
_FLOAT_FIELDS: Final = frozenset({"timeout_seconds", "connect_timeout_seconds"})
_INT_FIELDS: Final = frozenset({"pool_size", "max_waiting"})
_QUERY_FIELDS: Final = frozenset({f.name for f in dataclasses.fields(UpstreamOptions)} - {"token"})


@dataclass(frozen=True, slots=True)
class UpstreamGateway:
    """What gateway-mode engines need: the client, tenantvault's own auth, and the layout.

    `strategy` is the resolved tenancy ('namespace' or 'prefix'); `root` the namespace or
    path prefix tenantvault owns; `namespace` the operator's namespace above it (or None);
    `engines` who serves tenants' `secret/` and `transit/` ('upstream' or 'embedded').
    """

    client: UpstreamClient
    auth: UpstreamAuth
    strategy: str
    root: str
    namespace: str | None
    kv_mount: str
    engines: str = "upstream"

    def services(self) -> dict[str, tuple[Service, Any]]:
        """Background services to supervise: the upstream token renewal, with its report."""
        return {"upstream-auth": (self.auth.run, self.auth.report)}


def parse_upstream_url(url: str) -> tuple[str, UpstreamOptions | None]:
    """(`https://HOST:PORT`, options from the query or None) for a `vault+http(s)://` URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.removeprefix("vault+")
    if parts.scheme not in ("vault+http", "vault+https") or not parts.netloc:
        raise ConfigurationError("a vault backend URL looks like vault+https://HOST:PORT")
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigurationError("a vault backend URL takes no path: vault+https://HOST:PORT")
    address = f"{scheme}://{parts.netloc}"
    if not parts.query:
        return address, None
    values: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=False, strict_parsing=True):
        if name not in _QUERY_FIELDS:
            raise ConfigurationError(
                f"unknown vault backend URL option {name!r} (a token never goes in a URL)"
            )
        try:
            if name in _PATH_FIELDS:
                values[name] = Path(value).expanduser()
            elif name in _FLOAT_FIELDS:
                values[name] = float(value)
            elif name in _INT_FIELDS:
                values[name] = int(value)
            else:
                values[name] = value
        except ValueError:
            raise ConfigurationError(f"vault backend URL option {name} must be a number") from None
    return address, UpstreamOptions(**values)


def _master_key(
    master_key: bytes | None, master_key_file: Path | None, *, allow_insecure: bool
) -> bytes:
    if master_key is not None:
        if len(master_key) != KEY_SIZE:
            raise ConfigurationError(f"the master key must be {KEY_SIZE} bytes")
        return master_key
    if master_key_file is None:
        raise ConfigurationError(
            "the vault backend needs the master key that seals tenantvault's records, the "
            f"same on every instance: {ENV_PREFIX}MASTER_KEY or --master-key-file"
        )
    check_private(
        master_key_file, kind="master key file", is_dir=False, allow_insecure=allow_insecure
    )
    try:
        content = master_key_file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read master key file {master_key_file}") from exc
    key = decode_master_key(content)
    if key is None:
        # Never echo the content: it may be a real key in the wrong format.
        raise ConfigurationError(
            f"master key file {master_key_file} is malformed: "
            f"expected one line of base64 of {KEY_SIZE} bytes"
        )
    return key


def _credentials(options: UpstreamOptions, environ: Mapping[str, str]) -> UpstreamCredentials:
    token = options.token
    if (
        token is None
        and options.token_file is None
        and options.role_id_file is None
        and options.secret_id_file is None
    ):
        token = environ.get(ENV_PREFIX + "UPSTREAM_TOKEN") or None
    return UpstreamCredentials(
        token=token,
        token_file=options.token_file,
        role_id_file=options.role_id_file,
        secret_id_file=options.secret_id_file,
        approle_mount=options.approle_mount,
    )


def _join(*parts: str | None) -> str:
    return "/".join(part.strip("/") for part in parts if part)


async def _has_namespaces(client: UpstreamClient, token: str, namespace: str | None) -> bool:
    response = await client.request("LIST", "sys/namespaces", token=token, namespace=namespace)
    # OpenBao answers an empty namespace list with 404 and no errors; an upstream without
    # namespaces answers 404 "unsupported path" (or 405), with an error.
    return response.status == 200 or (response.status == 404 and not response.errors)


async def _ensure_namespace(
    client: UpstreamClient, token: str, parent: str | None, name: str
) -> None:
    path = f"sys/namespaces/{name}"
    found = await client.request("GET", path, token=token, namespace=parent)
    if found.ok:
        return
    created = await client.request("POST", path, token=token, namespace=parent, json={})
    if not created.ok:
        raise ConfigurationError(
            f"cannot create the upstream namespace {_join(parent, name)} ({created.status})"
        )


async def open_upstream(
    url: str,
    options: UpstreamOptions | None = None,
    *,
    master_key: bytes | None = None,
    master_key_file: Path | None = None,
    allow_insecure_permissions: bool = False,
    environ: Mapping[str, str] | None = None,
) -> UpstreamBackend:
    """Open gateway mode on the upstream at `url`; see the module docstring."""
    address, from_url = parse_upstream_url(url)
    if options is not None and from_url is not None:
        raise ConfigurationError("give upstream options in the URL or in the settings, not both")
    options = options or from_url or UpstreamOptions()
    key = _master_key(master_key, master_key_file, allow_insecure=allow_insecure_permissions)
    credentials = _credentials(options, os.environ if environ is None else environ)
    client = UpstreamClient(
        UpstreamSettings(
            address,
            ca_file=options.ca_file,
            client_cert=options.client_cert,
            client_key=options.client_key,
            timeout_seconds=options.timeout_seconds,
            connect_timeout_seconds=options.connect_timeout_seconds,
            pool_size=options.pool_size,
            max_waiting=options.max_waiting,
        )
    )
    try:
        auth = UpstreamAuth(client, credentials, namespace=options.namespace)
        try:
            await auth.login()
        except TenantVaultError as error:
            raise ConfigurationError(
                f"cannot authenticate to the upstream at {address}: "
                f"{error.message or type(error).__name__}"
            ) from error
        strategy = options.tenancy
        if strategy == "auto":
            has = await _has_namespaces(client, auth.token, options.namespace)
            strategy = "namespace" if has else "prefix"
        if strategy == "namespace":
            await _ensure_namespace(client, auth.token, options.namespace, options.root)
            location = UpstreamRecordsLocation(
                mount=options.kv_mount,
                root=_RECORDS,
                namespace=_join(options.namespace, options.root),
            )
        else:
            location = UpstreamRecordsLocation(
                mount=options.kv_mount,
                root=_join(options.root, _RECORDS),
                namespace=options.namespace,
            )
        backend = await UpstreamBackend.open(
            client,
            master_key=key,
            token=lambda: auth.token,
            location=location,
            on_refused=auth.refused,
            refresh=auth.ensure_fresh,
        )
    except BaseException:
        await client.aclose()
        raise
    backend.gateway = UpstreamGateway(
        client=client,
        auth=auth,
        strategy=strategy,
        root=options.root,
        namespace=options.namespace,
        kv_mount=options.kv_mount,
        engines=options.engines,
    )
    return backend
