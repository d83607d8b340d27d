"""`status` and `tenant create/list/read/delete` (tenants are Vault namespaces)."""

from __future__ import annotations

import argparse
from typing import Any

from tenantvault.cli._args import add_flag, parse_key_values, segment
from tenantvault.cli._context import Context, Failure, RequestFailed
from tenantvault.cli._output import Section, View

__all__ = ["register", "unwrap"]


def unwrap(body: Any) -> dict[str, Any]:
    """The payload of a reply: Vault answers sys/seal-status flat, most endpoints in `data`."""
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, dict):
            return data
        return body
    return {}


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    status = subparsers.add_parser(
        "status",
        parents=[common],
        help="show the server's seal status (no token needed)",
        description="Show the seal status. Exit code 0: unsealed, 2: sealed, 1: error.",
    )
    status.set_defaults(handler=_status)

    tenant = subparsers.add_parser(
        "tenant",
        help="manage tenants (Vault namespaces; needs a root token)",
        description="Tenants are Vault namespaces: select one with -namespace or VAULT_NAMESPACE.",
    )
    commands = tenant.add_subparsers(dest="tenant_command", metavar="COMMAND", required=True)
    create = commands.add_parser("create", parents=[common], help="create a tenant")
    create.add_argument("name", metavar="NAME")
    add_flag(
        create,
        "custom-metadata",
        metavar="K=V",
        action="append",
        help="custom metadata (repeatable)",
    )
    create.set_defaults(handler=_create)
    listing = commands.add_parser("list", parents=[common], help="list tenants")
    listing.set_defaults(handler=_list)
    for name, aliases in (("read", ["lookup"]), ("delete", [])):
        sub = commands.add_parser(name, aliases=aliases, parents=[common], help=f"{name} a tenant")
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(handler=_read if name == "read" else _delete)


def _status(ctx: Context) -> int:
    reply = ctx.call("GET", "sys/seal-status", doing="checking seal status", authenticated=False)
    data = unwrap(reply.body)
    rows = [
        ("Seal Type", data.get("type")),
        ("Initialized", data.get("initialized")),
        ("Sealed", data.get("sealed")),
        ("Total Shares", data.get("n")),
        ("Threshold", data.get("t")),
        ("Version", data.get("version")),
        ("Build Date", data.get("build_date")),
        ("Storage Type", data.get("storage_type")),
        ("Cluster Name", data.get("cluster_name")),
        ("Cluster ID", data.get("cluster_id")),
        ("HA Enabled", False),
    ]
    ctx.out.show(View(document=data, sections=[Section(rows=rows)], fields=data))
    # Like `vault status`: scripts tell sealed (2) from unreachable (1) by the exit code.
    return 2 if data.get("sealed") else 0


def _tenant_view(data: dict[str, Any], document: Any) -> View:
    rows = sorted(data.items())
    return View(document=document, sections=[Section(rows=rows)], fields=data)


def _create(ctx: Context) -> int:
    name = ctx.args.name
    metadata = parse_key_values(ctx.args.custom_metadata, flag="custom-metadata")
    body: dict[str, Any] = {"custom_metadata": metadata} if metadata else {}
    reply = ctx.call(
        "POST",
        f"sys/namespaces/{segment(name, what='tenant name')}",
        body=body,
        doing="creating tenant",
    )
    ctx.out.show(_tenant_view(unwrap(reply.body), reply.body))
    return 0


def _list(ctx: Context) -> int:
    try:
        reply = ctx.call("GET", "sys/namespaces", params={"list": "true"}, doing="listing tenants")
    except RequestFailed as failed:
        if failed.status == 404:
            raise Failure("No tenants found", exit_code=2) from None
        raise
    keys = unwrap(reply.body).get("keys") or []
    ctx.out.keys([str(key) for key in keys])
    return 0


def _read(ctx: Context) -> int:
    name = ctx.args.name
    try:
        reply = ctx.call(
            "GET", f"sys/namespaces/{segment(name, what='tenant name')}", doing="reading tenant"
        )
    except RequestFailed as failed:
        if failed.status == 404:
            raise Failure("Tenant not found", exit_code=2) from None
        raise
    ctx.out.show(_tenant_view(unwrap(reply.body), reply.body))
    return 0


def _delete(ctx: Context) -> int:
    name = ctx.args.name
    ctx.call(
        "DELETE", f"sys/namespaces/{segment(name, what='tenant name')}", doing="deleting tenant"
    )
    ctx.out.line(f"Success! Tenant deleted at: {name}/")
    return 0
