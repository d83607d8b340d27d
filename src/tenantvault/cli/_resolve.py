"""Resolving `tv://` references over the HTTP API: a field's value, and its secret's version."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tenantvault._refs import InvalidReferenceError, Reference, is_reference, parse_reference
from tenantvault.cli._http import APIError, Client, ConnectError, Settings, join_path

__all__ = [
    "ResolveError",
    "Resolved",
    "Resolver",
    "find_references",
    "read_env_file",
]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class ResolveError(Exception):
    """A reference cannot be used: its message names the reference (never a value)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """A field's value and the version it came from; the value never shows in a repr."""

    value: str = dataclasses.field(repr=False)
    version: int


def find_references(env: Mapping[str, str]) -> dict[str, Reference]:
    """The variables of `env` whose value is a `tv://` reference, parsed; any malformed one
    raises `ResolveError` naming the variable."""
    found: dict[str, Reference] = {}
    for name, value in env.items():
        if not is_reference(value):
            continue
        try:
            found[name] = parse_reference(value)
        except InvalidReferenceError as error:
            raise ResolveError(f"{name}: {error}") from None
    return found


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines (Docker's env-file: values taken literally, `#` comments, blanks)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ResolveError(f"cannot read the env file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ResolveError(f"cannot read the env file {path}: not UTF-8 text") from None
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if not equals or not _ENV_NAME.match(name):
            # Never quote the line: it may hold a plaintext value.
            raise ResolveError(f"{path}, line {number}: expected NAME=VALUE")
        result[name] = value
    return result


class Resolver:
    """Reads references as one identity (its settings' token) through the CLI's HTTP client."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._clients: dict[str | None, Client] = {}

    def _client(self, ref: Reference) -> Client:
        namespace = ref.namespace or self._settings.namespace
        client = self._clients.get(namespace)
        if client is None:
            client = Client(dataclasses.replace(self._settings, namespace=namespace))
            self._clients[namespace] = client
        return client

    def resolve(self, ref: Reference) -> Resolved:
        """The field's value (JSON text when it is not a string) and its version."""
        params = {"version": str(ref.version)} if ref.version is not None else None
        body = self._get(ref, join_path(ref.mount, "data", ref.path), params, "read")
        data = body.get("data") if isinstance(body, dict) else None
        secret = data.get("data") if isinstance(data, dict) else None
        metadata = data.get("metadata") if isinstance(data, dict) else None
        if not isinstance(secret, dict):
            # A deleted or destroyed version answers with no data.
            raise ResolveError(f"{ref}: the secret version has no data (deleted or destroyed)")
        if ref.field not in secret:
            raise ResolveError(f"{ref}: the secret has no field {ref.field!r}")
        value = secret[ref.field]
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if "\0" in text:
            raise ResolveError(f"{ref}: the value holds a NUL byte, which no environment can")
        version = metadata.get("version") if isinstance(metadata, dict) else None
        return Resolved(text, version if isinstance(version, int) else 0)

    def current_version(self, ref: Reference) -> int:
        """The latest version of the reference's secret, read from its metadata."""
        body = self._get(ref, join_path(ref.mount, "metadata", ref.path), None, "watch")
        data = body.get("data") if isinstance(body, dict) else None
        version = data.get("current_version") if isinstance(data, dict) else None
        if not isinstance(version, int):
            raise ResolveError(f"cannot watch {ref}: the metadata holds no current version")
        return version

    def _get(self, ref: Reference, path: str, params: dict[str, str] | None, doing: str) -> object:
        try:
            return self._client(ref).request("GET", path, params=params).body
        except APIError as error:
            raise ResolveError(f"cannot {doing} {ref}: {_why(error)}") from None
        except ConnectError as error:
            raise ResolveError(f"cannot {doing} {ref}: {error.render()}") from None


def _why(error: APIError) -> str:
    if error.status == 403:
        return "permission denied (HTTP 403)"
    if error.status == 404:
        return "no such secret or version (HTTP 404)"
    detail = "; ".join(error.errors)
    return f"HTTP {error.status}" + (f": {detail}" if detail else "")
