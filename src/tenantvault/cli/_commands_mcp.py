"""`tenantvault mcp check|import FILE`: the `tv://` references of an MCP client configuration.

`check` lists every reference per server and whether the current identity can read it (never
a value). `import` moves plaintext `env` values into tenantvault and rewrites the file with
references; the original is kept as `FILE.bak` (mode 0600: it holds the plaintext values),
and `--dry-run` only shows what would move.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tenantvault._exceptions import InvalidPathError
from tenantvault._paths import parse_path, validate_name, validate_tenant_id
from tenantvault._refs import Reference, is_reference
from tenantvault.cli._args import UsageError, add_flag
from tenantvault.cli._context import Context, Failure, RequestFailed
from tenantvault.cli._http import APIError, Client, ConnectError, join_path
from tenantvault.cli._mcp_config import ConfigError, load_servers, read_document, server_table
from tenantvault.cli._resolve import ResolveError, Resolver, find_references

__all__ = ["register"]

BACKUP_SUFFIX = ".bak"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add `mcp check` and `mcp import` to the command tree."""
    mcp = subparsers.add_parser("mcp", help="tv:// references in MCP client configurations")
    commands = mcp.add_subparsers(dest="mcp_command", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "check",
        parents=[common],
        help="list each server's references and whether they can be read",
        description="List every tv:// reference of each server of an MCP configuration "
        "(mcp.json, claude_desktop_config.json) and whether the current identity can read it. "
        "Values are never printed. Exit code 1 if any reference cannot be read.",
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(handler=_check)
    importer = commands.add_parser(
        "import",
        parents=[common],
        help="move plaintext env values into tenantvault and rewrite the file",
        description="Write every plaintext env value of each server to MOUNT/PREFIX<server> "
        "(one field per variable, in --tenant) and replace it in the file by its tv:// "
        "reference. The original is kept as FILE.bak with mode 0600.",
    )
    importer.add_argument("file", metavar="FILE")
    add_flag(importer, "tenant", metavar="TENANT", required=True, help="the tenant to write in")
    add_flag(importer, "prefix", metavar="PATH", default="mcp/", help="path prefix (default mcp/)")
    add_flag(importer, "mount", metavar="MOUNT", default="secret", help="KV v2 mount")
    add_flag(
        importer,
        "keep",
        metavar="NAME",
        action="append",
        default=[],
        help="leave this variable as it is (repeatable; e.g. settings that are not secrets)",
    )
    importer.add_argument(
        "-dry-run", "--dry-run", dest="dry_run", action="store_true", help="change nothing"
    )
    importer.set_defaults(handler=_import)


def _servers(path: Path) -> dict[str, Any]:
    try:
        return load_servers(path)
    except ConfigError as error:
        raise UsageError(str(error)) from None


def _check(ctx: Context) -> int:
    servers = _servers(Path(ctx.args.file))
    resolver = Resolver(ctx.client.settings)
    rows: list[dict[str, Any]] = []
    for name, entry in servers.items():
        try:
            refs = find_references(entry.env)
        except ResolveError as error:
            rows.append({"server": name, "variable": "", "reference": "", "status": str(error)})
            continue
        for variable, value in entry.env.items():
            if not is_reference(value):
                status = "plaintext value (not a reference)"
                rows.append(
                    {"server": name, "variable": variable, "reference": "", "status": status}
                )
                continue
            ref = refs[variable]
            try:
                resolved = resolver.resolve(ref)
                status = f"ok (version {resolved.version})"
            except ResolveError as error:
                status = str(error)
            row = {"server": name, "variable": variable, "reference": str(ref), "status": status}
            rows.append(row)
    if ctx.out.is_json:
        ctx.out.json(rows)
    else:
        header = {"server": "Server", "variable": "Variable", "reference": "Reference"}
        columns = ("server", "variable", "reference")
        widths = {c: max(len(str(r[c])) for r in [header, *rows]) for c in columns}
        for row in [{**header, "status": "Status"}, *rows]:
            cells = [str(row[c]).ljust(widths[c]) for c in columns]
            ctx.out.line("    ".join([*cells, row["status"]]))
    failed = [row for row in rows if row["reference"] and not row["status"].startswith("ok")]
    return 1 if failed else 0


def _import(ctx: Context) -> int:
    args = ctx.args
    path = Path(args.file)
    tenant, mount, prefix = _import_target(args)
    try:
        document = read_document(path)
        table = server_table(document, path)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    _servers(path)  # every entry must be well-formed before anything moves
    plan: dict[str, dict[str, str]] = {}
    for name, raw in table.items():
        env = raw.get("env") or {}
        moving = {
            variable: value
            for variable, value in env.items()
            if not is_reference(value) and variable not in args.keep
        }
        if moving:
            _check_segment(name, what=f"server name {name!r}")
            for variable in moving:
                _check_field(variable)
            plan[name] = moving
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    for name, moving in plan.items():
        for variable, value in moving.items():
            ctx.redact.add(value)
            ref = Reference(mount, f"{prefix}{name}", variable, namespace=tenant)
            verb = "would move" if args.dry_run else "moving"
            ctx.out.line(f"{verb} {name} {variable} -> {ref}")
    if args.dry_run or not plan:
        if not plan:
            ctx.out.line("no plaintext values to move")
        return 0
    if backup.exists():
        raise Failure(f"{backup} exists: move it away first (it may hold plaintext values)")
    for name, moving in plan.items():
        _write(ctx, tenant, join_path(mount, "data", f"{prefix}{name}"), moving)
        for variable in moving:
            ref = Reference(mount, f"{prefix}{name}", variable, namespace=tenant)
            table[name]["env"][variable] = str(ref)
    _write_backup(path, backup)
    _replace(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    ctx.out.line(f"rewrote {path}; the original is {backup} (0600): delete it once this works")
    return 0


def _import_target(args: argparse.Namespace) -> tuple[str, str, str]:
    try:
        tenant = validate_tenant_id(args.tenant)
    except InvalidPathError as error:
        raise UsageError(f"--tenant: {error}") from None
    _check_segment(args.mount, what="--mount")
    prefix = args.prefix
    if prefix:
        if not prefix.endswith("/"):
            prefix += "/"
        try:
            parse_path(prefix, allow_dir=True)
        except InvalidPathError as error:
            raise UsageError(f"--prefix: {error}") from None
    return tenant, args.mount, prefix


def _check_segment(name: str, *, what: str) -> None:
    try:
        parse_path(name)
    except InvalidPathError as error:
        raise UsageError(f"{what}: {error}") from None
    if "/" in name:
        raise UsageError(f"{what}: must be one path segment")


def _check_field(variable: str) -> None:
    try:
        validate_name(variable, kind="field")
    except InvalidPathError:
        raise UsageError(f"variable {variable!r} cannot be a field name: use --keep") from None


def _write(ctx: Context, tenant: str, path: str, data: dict[str, str]) -> None:
    """One new secret (cas=0: an existing secret is never overwritten)."""
    client = Client(dataclasses.replace(ctx.client.settings, namespace=tenant))
    body = {"data": data, "options": {"cas": 0}}
    try:
        client.request("POST", path, body=body)
    except (APIError, ConnectError) as error:
        raise RequestFailed(f"writing {path} in {tenant}", error) from None


def _write_backup(path: Path, backup: Path) -> None:
    """The original, byte for byte, readable by its owner only."""
    original = path.read_bytes()
    fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as sink:
        sink.write(original)
        sink.flush()
        os.fsync(sink.fileno())


def _replace(path: Path, text: str) -> None:
    """Write `text` to a new file beside `path` and rename it over: never half a config."""
    mode = path.stat().st_mode & 0o777
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as sink:
            sink.write(text)
            sink.flush()
            os.fsync(sink.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
