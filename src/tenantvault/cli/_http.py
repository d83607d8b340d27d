"""The CLI's stdlib HTTP client: Vault's transport conventions, errors mapped once, no redirects."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tenantvault._durations import parse_duration
from tenantvault._exceptions import InvalidRequestError
from tenantvault.cli._text import printable as _printable

__all__ = [
    "DEFAULT_ADDRESS",
    "APIError",
    "Client",
    "ConnectError",
    "Reply",
    "Settings",
    "SettingsError",
    "join_path",
]

DEFAULT_ADDRESS = "http://127.0.0.1:8200"
DEFAULT_TIMEOUT_SECONDS = 60.0
MERGE_PATCH = "application/merge-patch+json"
# A response bigger than this is not a Vault answer we could print sensibly; refuse it rather
# than buffer without bound.
_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# Header values must be visible ASCII: anything else would let a value split the header block,
# and http.client's own refusal would quote the value (a token) in its exception message.
_HEADER_SAFE = frozenset(chr(code) for code in range(0x21, 0x7F))


class SettingsError(Exception):
    """The address, token file, CA file or namespace is unusable (a usage error, exit 2)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Where and as whom to connect, read from flags and the Vault environment variables."""

    address: str = DEFAULT_ADDRESS
    token: str | None = field(default=None, repr=False)
    namespace: str | None = None
    ca_cert: str | None = None
    ca_path: str | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        address: str | None = None,
        namespace: str | None = None,
        ca_cert: str | None = None,
        ca_path: str | None = None,
        home: Path | None = None,
    ) -> Settings:
        """Flags win over the environment, like the Vault CLI. The token comes only from
        VAULT_TOKEN or ~/.vault-token: a token on the command line would land in shell history
        and in every `ps` listing."""
        token = env.get("VAULT_TOKEN") or _read_token_file(home)
        if token is not None:
            token = token.strip()
            if not token:
                token = None
            elif not set(token) <= _HEADER_SAFE:
                raise SettingsError(
                    "the token (VAULT_TOKEN or ~/.vault-token) contains characters that are "
                    "not allowed in an HTTP header"
                )
        namespace = namespace if namespace is not None else env.get("VAULT_NAMESPACE") or None
        if namespace is not None and not set(namespace) <= _HEADER_SAFE:
            raise SettingsError("the namespace contains characters not allowed in an HTTP header")
        return cls(
            address=address or env.get("VAULT_ADDR") or DEFAULT_ADDRESS,
            token=token,
            namespace=namespace,
            ca_cert=ca_cert or env.get("VAULT_CACERT") or None,
            ca_path=ca_path or env.get("VAULT_CAPATH") or None,
            timeout_seconds=_timeout(env.get("VAULT_CLIENT_TIMEOUT")),
        )


def _read_token_file(home: Path | None) -> str | None:
    try:
        path = (home or Path.home()) / ".vault-token"
        return path.read_text(encoding="utf-8")
    except (OSError, RuntimeError, UnicodeDecodeError):
        # No file (or no home directory) simply means no token, as in the Vault CLI.
        return None


def _timeout(raw: str | None) -> float:
    if not raw:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = parse_duration(raw, field="VAULT_CLIENT_TIMEOUT")
    except InvalidRequestError:
        raise SettingsError("VAULT_CLIENT_TIMEOUT is not a duration (e.g. 60 or 30s)") from None
    return float(seconds) if seconds > 0 else DEFAULT_TIMEOUT_SECONDS


def join_path(*parts: str) -> str:
    """Percent-encode each segment of a Vault path, keeping '/' as the separator."""
    segments = [segment for part in parts for segment in part.split("/")]
    return "/".join(quote(segment, safe="") for segment in segments)


@dataclass(frozen=True, slots=True)
class Reply:
    """A response: its status and its parsed JSON body (None when the body was empty)."""

    status: int
    body: Any


class APIError(Exception):
    """The server answered with a status >= 400 (exit 1), or with something unreadable."""

    def __init__(
        self,
        *,
        status: int,
        errors: list[str],
        method: str,
        url: str,
        namespace: str | None,
        body: Any = None,
    ) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.errors = errors
        self.method = method
        self.url = url
        self.namespace = namespace
        # Kept for Vault's 404-with-envelope answers (deleted versions); never printed as is.
        self.body = body

    def render(self) -> str:
        """Vault's ResponseError text."""
        lines = ["Error making API request.", ""]
        if self.namespace:
            lines.append(f"Namespace: {self.namespace}")
        lines.append(f"URL: {self.method} {self.url}")
        if self.errors:
            lines.append(f"Code: {self.status}. Errors:")
            lines.append("")
            lines.extend(f"* {message}" for message in self.errors)
        else:
            lines.append(f"Code: {self.status}. The server returned no error message.")
        return "\n".join(lines)


class ConnectError(Exception):
    """No HTTP answer at all: refused, unresolvable, timed out, TLS failure (exit 1)."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(reason)
        self.address = address
        self.reason = reason

    def render(self) -> str:
        return f"cannot reach the server at {self.address}: {self.reason}"


class Client:
    """Sends one request per call over a fresh connection (a CLI run makes one or two)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        try:
            parts = urlsplit(settings.address)
        except ValueError:
            raise SettingsError("invalid address: expected http://HOST:PORT") from None
        if "@" in parts.netloc:
            # Credentials in VAULT_ADDR would be echoed in every error's URL line.
            raise SettingsError("the address must not contain a user name or password")
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise SettingsError(
                f"invalid address {_printable(settings.address)!r}: "
                "expected http://HOST:PORT or https://HOST:PORT"
            )
        try:
            self._port = parts.port
        except ValueError:
            raise SettingsError("invalid port in the address") from None
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._base = settings.address.rstrip("/")
        self._prefix = parts.path.rstrip("/")

    @property
    def has_token(self) -> bool:
        return self.settings.token is not None

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        authenticated: bool = True,
        wrap_ttl: str | None = None,
    ) -> Reply:
        """Send `method /v1/<path>`; return the reply, or raise APIError / ConnectError.

        `path` must already be encoded (see `join_path`). `wrap_ttl` asks for the response
        wrapped (X-Vault-Wrap-TTL).
        """
        target = f"{self._prefix}/v1/{path}"
        if params:
            target += "?" + urlencode(params)
        url = f"{self._base}/v1/{path}" + (f"?{urlencode(params)}" if params else "")
        headers = {"X-Vault-Request": "true", "Accept": "application/json"}
        settings = self.settings
        if authenticated and settings.token is not None:
            headers["X-Vault-Token"] = settings.token
        if settings.namespace:
            headers["X-Vault-Namespace"] = settings.namespace
        if wrap_ttl:
            if not set(wrap_ttl) <= _HEADER_SAFE:
                raise SettingsError("the wrap TTL contains characters not allowed in a header")
            headers["X-Vault-Wrap-TTL"] = wrap_ttl
        payload: bytes | None = None
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = content_type
        status, content_type_received, raw, location = self._send(method, target, payload, headers)
        parsed = _parse_json(raw)
        if status >= 300:
            errors: list[str] = []
            if isinstance(parsed, dict) and isinstance(parsed.get("errors"), list):
                errors = [_printable(str(message)) for message in parsed["errors"]]
            elif 300 <= status < 400:
                # Not followed: following would send the token to wherever Location points.
                errors = [
                    f"the server redirected to {_printable(location or '(nowhere)')}; "
                    "redirects are not followed, set VAULT_ADDR to the final address"
                ]
            elif raw and parsed is _INVALID:
                errors = [
                    f"the response was not JSON ({_printable(content_type_received or 'no type')}"
                    f", {len(raw)} bytes)"
                ]
            raise APIError(
                status=status,
                errors=errors,
                method=method,
                url=url,
                namespace=settings.namespace,
                body=parsed if isinstance(parsed, dict) else None,
            )
        if parsed is _INVALID:
            raise APIError(
                status=status,
                errors=[f"the response was not JSON ({len(raw)} bytes)"],
                method=method,
                url=url,
                namespace=settings.namespace,
            )
        return Reply(status, parsed)

    def _send(
        self, method: str, target: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, str | None, bytes, str | None]:
        timeout = self.settings.timeout_seconds
        connection: http.client.HTTPConnection
        try:
            if self._https:
                connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=self._tls_context()
                )
            else:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        except ValueError:
            raise SettingsError("invalid address") from None
        try:
            connection.request(method, target, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read(_MAX_RESPONSE_BYTES + 1)
            if len(raw) > _MAX_RESPONSE_BYTES:
                raise ConnectError(self._base, "the response is too large")
            return (
                response.status,
                response.getheader("Content-Type"),
                raw,
                response.getheader("Location"),
            )
        except ConnectionRefusedError:
            raise ConnectError(self._base, "connection refused (is the server running?)") from None
        except ssl.SSLCertVerificationError as error:
            raise ConnectError(
                self._base,
                "TLS certificate verification failed "
                f"({_printable(error.verify_message or 'unknown reason')}); "
                "set VAULT_CACERT to the CA that signed the server certificate",
            ) from None
        except ssl.SSLError as error:
            raise ConnectError(
                self._base, f"TLS error ({_printable(error.reason or '')})"
            ) from None
        except socket.gaierror:
            raise ConnectError(self._base, "the host name could not be resolved") from None
        except TimeoutError:
            raise ConnectError(
                self._base, f"no answer within {timeout:g}s (VAULT_CLIENT_TIMEOUT)"
            ) from None
        except http.client.HTTPException:
            # The exception text may quote what the peer sent; say only what happened.
            raise ConnectError(
                self._base, "the server closed the connection or did not speak HTTP"
            ) from None
        except OSError as error:
            raise ConnectError(
                self._base, _printable(error.strerror or type(error).__name__)
            ) from None
        finally:
            connection.close()

    def _tls_context(self) -> ssl.SSLContext:
        settings = self.settings
        try:
            return ssl.create_default_context(cafile=settings.ca_cert, capath=settings.ca_path)
        except (OSError, ssl.SSLError):
            raise SettingsError(
                "cannot load the CA certificate (VAULT_CACERT / VAULT_CAPATH / -ca-cert)"
            ) from None


_INVALID: Any = object()


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return _INVALID
