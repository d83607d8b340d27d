"""`policy write/read/list/delete`: ACL policies of the current tenant (sys/policies/acl)."""

from __future__ import annotations

import argparse
from typing import Any

from tenantvault.cli._args import UsageError, read_source, segment
from tenantvault.cli._commands_sys import unwrap
from tenantvault.cli._context import Context, Failure, RequestFailed
from tenantvault.cli._output import Section, View

__all__ = ["register"]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    policy = subparsers.add_parser("policy", help="manage ACL policies of the current tenant")
    commands = policy.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    write = commands.add_parser("write", parents=[common], help="create or replace a policy")
    write.add_argument("name", metavar="NAME")
    write.add_argument("source", metavar="FILE", help="HCL or JSON policy file, or - for stdin")
    write.set_defaults(handler=_write)
    read = commands.add_parser("read", parents=[common], help="print a policy")
    read.add_argument("name", metavar="NAME")
    read.set_defaults(handler=_read)
    listing = commands.add_parser("list", parents=[common], help="list policy names")
    listing.set_defaults(handler=_list)
    delete = commands.add_parser("delete", parents=[common], help="delete a policy")
    delete.add_argument("name", metavar="NAME")
    delete.set_defaults(handler=_delete)


def _path(name: str) -> str:
    return f"sys/policies/acl/{segment(name, what='policy name')}"


def _write(ctx: Context) -> int:
    name = ctx.args.name
    text = read_source(ctx.args.source, ctx.stdin, what="the policy")
    if not text.strip():
        raise UsageError("the policy is empty")
    ctx.call("POST", _path(name), body={"policy": text}, doing="uploading policy")
    ctx.out.line(f"Success! Uploaded policy: {name}")
    return 0


def _read(ctx: Context) -> int:
    name = ctx.args.name
    try:
        reply = ctx.call("GET", _path(name), doing="reading policy")
    except RequestFailed as failed:
        if failed.status == 404:
            raise Failure(f"No policy named: {name}", exit_code=2) from None
        raise
    data = unwrap(reply.body)
    # Like `vault policy read`: the table form is the policy text itself.
    text = str(data.get("policy") or data.get("rules") or "").strip()
    ctx.out.show(View(document=reply.body, sections=[Section(lines=[text])], fields=data))
    return 0


def _list(ctx: Context) -> int:
    try:
        reply = ctx.call(
            "GET", "sys/policies/acl", params={"list": "true"}, doing="listing policies"
        )
        keys = [str(key) for key in unwrap(reply.body).get("keys") or []]
    except RequestFailed as failed:
        if failed.status != 404:
            raise
        keys = []
    if ctx.out.is_json:
        ctx.out.json(keys)
    else:
        for key in keys:
            ctx.out.line(key)
    return 0


def _delete(ctx: Context) -> int:
    name = ctx.args.name
    ctx.call("DELETE", _path(name), doing="deleting policy")
    ctx.out.line(f"Success! Deleted policy: {name}")
    return 0
