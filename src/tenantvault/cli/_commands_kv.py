"""`kv put/get/patch/list/delete/undelete/destroy` on a KV v2 mount (`metadata` lives next door)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from tenantvault.cli._args import (
    Parser,
    UsageError,
    add_flag,
    parse_pairs,
    parse_versions,
)
from tenantvault.cli._context import MERGE_PATCH, Context, Failure, RequestFailed
from tenantvault.cli._http import join_path
from tenantvault.cli._output import Section, View, map_title, title

__all__ = ["KVPath", "register", "resolve"]


@dataclass(frozen=True, slots=True)
class KVPath:
    """A secret's mount and path inside it; `api(section)` is its encoded URL path."""

    mount: str
    path: str

    def api(self, section: str) -> str:
        parts = [self.mount, section] + ([self.path] if self.path else [])
        return join_path(*parts)

    def shown(self, section: str) -> str:
        return "/".join([self.mount, section] + ([self.path] if self.path else []))


def resolve(raw: str, mount: str | None, *, directory: bool = False) -> KVPath:
    """`secret/foo` or `-mount=secret foo`, as in `vault kv`. Dot and empty segments are
    refused here: a path must not be able to climb out of the mount, whatever the server does."""
    raw = raw.strip("/") if directory else raw.lstrip("/")
    if mount is not None:
        mount_name = mount.strip("/")
        path = raw
    else:
        mount_name, _, path = raw.partition("/")
    if not mount_name or any(part in ("", ".", "..") for part in mount_name.split("/")):
        raise UsageError("give the path as MOUNT/PATH (e.g. secret/app) or use -mount=secret")
    if path and any(part in ("", ".", "..") for part in path.split("/")):
        raise UsageError("invalid path: empty, '.' and '..' segments are not allowed")
    if not path and not directory:
        raise UsageError("missing the secret path after the mount (e.g. secret/app)")
    return KVPath(mount_name, path)


def kv_options() -> argparse.ArgumentParser:
    """The -mount flag every kv command takes."""
    options = Parser(add_help=False)
    add_flag(
        options,
        "mount",
        metavar="MOUNT",
        help="the KV v2 mount; the path is then relative to it (secret/x = -mount=secret x)",
    )
    return options


def register(subparsers: Any, common: argparse.ArgumentParser) -> Any:
    kv = subparsers.add_parser("kv", help="read and write secrets (KV v2)")
    commands = kv.add_subparsers(dest="kv_command", metavar="COMMAND", required=True)
    parents = [common, kv_options()]

    put = commands.add_parser(
        "put",
        parents=parents,
        help="write a new version of a secret",
        description="Data: KEY=VALUE, KEY=@FILE, KEY=- (stdin), or - / @FILE for a JSON object.",
    )
    add_flag(
        put,
        "cas",
        metavar="N",
        type=int,
        help="write only if the current version is N (0: only if absent)",
    )
    put.add_argument("path", metavar="PATH")
    put.add_argument("data", nargs="*", metavar="DATA")
    put.set_defaults(handler=_put)

    get = commands.add_parser("get", parents=parents, help="read a secret")
    add_flag(get, "version", metavar="N", type=int, help="read version N (default: latest)")
    get.add_argument("path", metavar="PATH")
    get.set_defaults(handler=_get)

    patch = commands.add_parser(
        "patch", parents=parents, help="change some keys of the latest version (JSON merge patch)"
    )
    add_flag(patch, "cas", metavar="N", type=int, help="patch only if the current version is N")
    patch.add_argument("path", metavar="PATH")
    patch.add_argument("data", nargs="*", metavar="DATA")
    patch.set_defaults(handler=_patch)

    listing = commands.add_parser("list", parents=parents, help="list keys under a path")
    listing.add_argument("path", metavar="PATH", nargs="?", default="")
    listing.set_defaults(handler=_list)

    delete = commands.add_parser(
        "delete", parents=parents, help="soft-delete the latest version, or -versions"
    )
    add_flag(delete, "versions", metavar="1,2", help="versions to delete")
    delete.add_argument("path", metavar="PATH")
    delete.set_defaults(handler=_delete)
    for name, verb in (
        ("undelete", "restore soft-deleted versions"),
        ("destroy", "permanently remove the data of versions"),
    ):
        sub = commands.add_parser(name, parents=parents, help=verb)
        add_flag(sub, "versions", metavar="1,2", required=True, help="versions (required)")
        sub.add_argument("path", metavar="PATH")
        sub.set_defaults(handler=_undelete if name == "undelete" else _destroy)
    return commands


def _write_view(target: KVPath, document: Any) -> View:
    """What put and patch show: the new version's metadata, never the data."""
    data = document.get("data") if isinstance(document, dict) else None
    metadata: dict[str, Any] = data if isinstance(data, dict) else {}
    full = target.shown("data")
    return View(
        document=document,
        sections=[
            Section(heading=title("Secret Path", len(full)), lines=[full]),
            Section(heading=map_title("Metadata", metadata), rows=sorted(metadata.items())),
        ],
        fields=metadata,
    )


def _body(ctx: Context) -> dict[str, Any]:
    data = parse_pairs(ctx.args.data, ctx.stdin, on_value=ctx.redact.add)
    if not data:
        raise UsageError("Must supply data")
    body: dict[str, Any] = {"data": data}
    if ctx.args.cas is not None:
        if ctx.args.cas < 0:
            raise UsageError("-cas must be 0 or more")
        body["options"] = {"cas": ctx.args.cas}
    return body


def _put(ctx: Context) -> int:
    target = resolve(ctx.args.path, ctx.args.mount)
    body = _body(ctx)
    reply = ctx.call(
        "POST", target.api("data"), body=body, doing=f"writing data to {target.shown('data')}"
    )
    ctx.out.show(_write_view(target, reply.body))
    return 0


def _patch(ctx: Context) -> int:
    target = resolve(ctx.args.path, ctx.args.mount)
    body = _body(ctx)
    try:
        reply = ctx.call(
            "PATCH",
            target.api("data"),
            body=body,
            content_type=MERGE_PATCH,
            doing=f"patching data at {target.shown('data')}",
        )
    except RequestFailed as failed:
        if failed.status == 404:
            raise Failure(f"No value found at {target.shown('data')}", exit_code=2) from None
        raise
    ctx.out.show(_write_view(target, reply.body))
    return 0


def _secret_view(target: KVPath, document: dict[str, Any]) -> View:
    """What `kv get` shows; a deleted or destroyed version has metadata and no Data section."""
    payload = document.get("data")
    payload = payload if isinstance(payload, dict) else {}
    raw_metadata = payload.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    raw_data = payload.get("data")
    full = target.shown("data")
    sections = [
        Section(heading=title("Secret Path", len(full)), lines=[full]),
        Section(heading=map_title("Metadata", metadata), rows=sorted(metadata.items())),
    ]
    if not isinstance(raw_data, dict):
        return View(document=document, sections=sections)
    sections.append(Section(heading=map_title("Data", raw_data), rows=sorted(raw_data.items())))
    # Like Vault, -field picks from the secret's data only.
    return View(document=document, sections=sections, fields=raw_data)


def _get(ctx: Context) -> int:
    target = resolve(ctx.args.path, ctx.args.mount)
    params = None
    if ctx.args.version is not None:
        if ctx.args.version < 0:
            raise UsageError("-version must be 0 or more")
        params = {"version": str(ctx.args.version)}
    try:
        reply = ctx.call(
            "GET", target.api("data"), params=params, doing=f"reading {target.shown('data')}"
        )
    except RequestFailed as failed:
        if failed.status != 404:
            raise
        body = failed.body
        if isinstance(body, dict) and isinstance(body.get("data"), dict):
            # A deleted or destroyed version: Vault answers 404 with its metadata.
            view = _secret_view(target, body)
            if ctx.out.field is None:
                ctx.out.show(view)
            raise Failure(
                f"The requested version of {target.shown('data')} is deleted or destroyed",
                exit_code=2,
            ) from None
        raise Failure(f"No value found at {target.shown('data')}", exit_code=2) from None
    document = reply.body if isinstance(reply.body, dict) else {}
    ctx.out.show(_secret_view(target, document))
    return 0


def _list(ctx: Context) -> int:
    target = resolve(ctx.args.path, ctx.args.mount, directory=True)
    api = target.api("metadata") + "/"
    shown = target.shown("metadata") + "/"
    try:
        reply = ctx.call("GET", api, params={"list": "true"}, doing=f"listing {shown}")
    except RequestFailed as failed:
        if failed.status == 404:
            raise Failure(f"No value found at {shown}", exit_code=2) from None
        raise
    data = reply.body.get("data") if isinstance(reply.body, dict) else None
    keys = data.get("keys") if isinstance(data, dict) else None
    ctx.out.keys([str(key) for key in keys or []])
    return 0


def _delete(ctx: Context) -> int:
    target = resolve(ctx.args.path, ctx.args.mount)
    versions = parse_versions(ctx.args.versions, required=False)
    if versions:
        ctx.call(
            "POST",
            target.api("delete"),
            body={"versions": versions},
            doing=f"deleting {target.shown('data')}",
        )
        shown = target.shown("delete")
    else:
        ctx.call("DELETE", target.api("data"), doing=f"deleting {target.shown('data')}")
        shown = target.shown("data")
    ctx.out.line(f"Success! Data deleted (if it existed) at: {shown}")
    return 0


def _versions_call(ctx: Context, section: str, method: str, doing: str) -> int:
    target = resolve(ctx.args.path, ctx.args.mount)
    versions = parse_versions(ctx.args.versions, required=True)
    ctx.call(
        method,
        target.api(section),
        body={"versions": versions},
        doing=f"{doing} {target.shown('data')}",
    )
    ctx.out.line(f"Success! Data written to: {target.shown(section)}")
    return 0


def _undelete(ctx: Context) -> int:
    return _versions_call(ctx, "undelete", "POST", "undeleting")


def _destroy(ctx: Context) -> int:
    return _versions_call(ctx, "destroy", "PUT", "destroying")
