"""`kv metadata get/put/patch/delete`: per-key settings and the version list of a secret."""

from __future__ import annotations

import argparse
from typing import Any

from tenantvault.cli._args import add_bool_flag, add_flag, parse_key_values
from tenantvault.cli._commands_kv import KVPath, kv_options, resolve
from tenantvault.cli._context import MERGE_PATCH, Context, Failure, RequestFailed
from tenantvault.cli._output import Section, View, map_title, title

__all__ = ["register"]


def register(kv_commands: Any, common: argparse.ArgumentParser) -> None:
    metadata = kv_commands.add_parser("metadata", help="read and write a secret's metadata")
    commands = metadata.add_subparsers(dest="metadata_command", metavar="COMMAND", required=True)
    parents = [common, kv_options()]

    get = commands.add_parser("get", parents=parents, help="show settings and versions")
    get.add_argument("path", metavar="PATH")
    get.set_defaults(handler=_get)

    for name, helptext in (
        ("put", "set the settings (unset flags keep their defaults)"),
        ("patch", "change only the given settings"),
    ):
        sub = commands.add_parser(name, parents=parents, help=helptext)
        add_flag(
            sub,
            "max-versions",
            metavar="N",
            type=int,
            help="versions to keep (0: the mount's setting)",
        )
        add_bool_flag(sub, "cas-required", default=None, help="require -cas on every write")
        add_flag(
            sub,
            "delete-version-after",
            metavar="DURATION",
            help="soft-delete each version after this long (0s: never)",
        )
        add_flag(
            sub,
            "custom-metadata",
            metavar="K=V",
            action="append",
            help="custom metadata (repeatable)",
        )
        if name == "patch":
            add_flag(
                sub,
                "remove-custom-metadata",
                metavar="KEY",
                action="append",
                help="remove this custom metadata key (repeatable)",
            )
        sub.add_argument("path", metavar="PATH")
        sub.set_defaults(handler=_put if name == "put" else _patch)

    delete = commands.add_parser(
        "delete", parents=parents, help="delete the secret: every version and its metadata"
    )
    delete.add_argument("path", metavar="PATH")
    delete.set_defaults(handler=_delete)


def _get(ctx: Context) -> int:
    target = resolve(ctx.args.path, ctx.args.mount)
    shown = target.shown("metadata")
    try:
        reply = ctx.call("GET", target.api("metadata"), doing=f"reading {shown}")
    except RequestFailed as failed:
        if failed.status == 404:
            raise Failure(f"No value found at {shown}", exit_code=2) from None
        raise
    document = reply.body if isinstance(reply.body, dict) else {}
    raw = document.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    settings = {key: value for key, value in data.items() if key != "versions"}
    sections = [
        Section(heading=title("Metadata Path", len(shown)), lines=[shown]),
        Section(heading=map_title("Metadata", settings), rows=sorted(settings.items())),
    ]
    versions = data.get("versions")
    if isinstance(versions, dict):
        for number in sorted(versions, key=lambda key: int(key) if key.isdigit() else 0):
            entry = versions[number]
            if isinstance(entry, dict):
                sections.append(
                    Section(
                        heading=map_title(f"Version {number}", entry), rows=sorted(entry.items())
                    )
                )
    ctx.out.show(View(document=document, sections=sections, fields=data))
    return 0


def _settings(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    body: dict[str, Any] = {}
    if args.max_versions is not None:
        body["max_versions"] = args.max_versions
    if args.cas_required is not None:
        body["cas_required"] = args.cas_required
    if args.delete_version_after is not None:
        body["delete_version_after"] = args.delete_version_after
    custom: dict[str, Any] = dict(parse_key_values(args.custom_metadata, flag="custom-metadata"))
    for key in getattr(args, "remove_custom_metadata", None) or ():
        # JSON merge patch: null removes the key.
        custom[key] = None
    if custom:
        body["custom_metadata"] = custom
    return body


def _written(ctx: Context, target: KVPath) -> int:
    ctx.out.line(f"Success! Data written to: {target.shown('metadata')}")
    return 0


def _put(ctx: Context) -> int:
    target = resolve(ctx.args.path, ctx.args.mount)
    ctx.call(
        "POST",
        target.api("metadata"),
        body=_settings(ctx),
        doing=f"writing {target.shown('metadata')}",
    )
    return _written(ctx, target)


def _patch(ctx: Context) -> int:
    target = resolve(ctx.args.path, ctx.args.mount)
    try:
        ctx.call(
            "PATCH",
            target.api("metadata"),
            body=_settings(ctx),
            content_type=MERGE_PATCH,
            doing=f"patching {target.shown('metadata')}",
        )
    except RequestFailed as failed:
        if failed.status == 404:
            raise Failure(f"No value found at {target.shown('metadata')}", exit_code=2) from None
        raise
    return _written(ctx, target)


def _delete(ctx: Context) -> int:
    target = resolve(ctx.args.path, ctx.args.mount)
    ctx.call("DELETE", target.api("metadata"), doing=f"deleting {target.shown('metadata')}")
    ctx.out.line(f"Success! Data deleted (if it existed) at: {target.shown('metadata')}")
    return 0
