"""MCP client configuration files (`mcp.json`, `claude_desktop_config.json`, VS Code's
`.vscode/mcp.json`): the stdio server entries, with their `command`, `args` and `env`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "ServerEntry", "load_servers", "read_document", "server_table"]

# Claude Desktop, Cursor and most clients say `mcpServers`; VS Code says `servers`.
_SERVER_KEYS = ("mcpServers", "servers")


class ConfigError(Exception):
    """The configuration file is unusable; the message names the file and entry, no value."""


@dataclass(frozen=True, slots=True)
class ServerEntry:
    """One stdio server: how to start it and its environment (values may be references)."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)


def read_document(path: Path) -> dict[str, Any]:
    """The configuration as a JSON object."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read {path}: not UTF-8 text") from None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        # json's message quotes part of the file, which may be a plaintext key.
        raise ConfigError(f"{path} is not valid JSON") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return document


def server_table(document: dict[str, Any], path: Path) -> dict[str, Any]:
    """The object of server entries (`mcpServers` or `servers`)."""
    for key in _SERVER_KEYS:
        table = document.get(key)
        if isinstance(table, dict):
            return table
    raise ConfigError(f"{path} has no mcpServers (or servers) object")


def load_servers(path: Path) -> dict[str, ServerEntry]:
    """Every stdio server entry of the file, by name."""
    table = server_table(read_document(path), path)
    return {name: _entry(name, raw, path) for name, raw in table.items()}


def _entry(name: str, raw: Any, path: Path) -> ServerEntry:
    where = f"{path}: server {name!r}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} is not an object")
    command = raw.get("command")
    if not isinstance(command, str) or not command:
        kind = raw.get("type") or ("http" if "url" in raw else "")
        detail = f" (type {kind}: only stdio servers can be run)" if kind else ""
        raise ConfigError(f"{where} has no command{detail}")
    args = raw.get("args", [])
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise ConfigError(f"{where}: args must be a list of strings")
    env = raw.get("env", {})
    if not isinstance(env, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in env.items()
    ):
        raise ConfigError(f"{where}: env must be an object of strings")
    return ServerEntry(name, command, tuple(args), dict(env))
