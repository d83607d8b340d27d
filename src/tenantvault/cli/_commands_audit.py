"""`audit verify/query/report/list/enable/disable/hash`: the audit trail from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tenantvault.audit._chain import ChainHead, verify_lines
from tenantvault.cli._args import UsageError, add_flag, segment
from tenantvault.cli._commands_sys import unwrap
from tenantvault.cli._context import Context, Failure
from tenantvault.cli._output import Section, View
from tenantvault.cli._progress import progress_lines, working

__all__ = ["register"]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    audit = subparsers.add_parser("audit", help="verify, query and report on the audit trail")
    commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)

    verify = commands.add_parser(
        "verify", parents=[common], help="check a JSON-lines audit log's hash chain"
    )
    verify.add_argument("file", metavar="FILE", type=Path)
    anchor = verify.add_mutually_exclusive_group()
    add_flag(
        anchor,
        "anchor",
        metavar="SEQ:HASH",
        help="a chain head recorded apart from the log (the server's sealed record): the log "
        "must hold that entry, so a log cut after a checkpoint fails",
    )
    add_flag(
        anchor,
        "device",
        metavar="NAME",
        help="take the anchor from the running server: the chain head of its file device "
        "NAME (GET sys/audit/NAME; root namespace, sudo)",
    )
    verify.set_defaults(handler=_verify)

    query = commands.add_parser("query", parents=[common], help="search audit events")
    for name, help_text in (
        ("since", "from this time: RFC 3339, Unix seconds, or a duration ago (30d)"),
        ("until", "up to this time (same forms)"),
        ("path-prefix", "only requests under this path, e.g. secret/data/app/"),
        ("operation", "read, list, create, update, patch or delete"),
        ("outcome", "success, denied, invalid or error"),
        ("accessor", "a token accessor (or its hmac-sha256:… value)"),
        ("tenant", "root namespace only: one tenant's events (its current incarnation)"),
        (
            "tenant-uid",
            "root namespace only: one incarnation by id, also of a deleted tenant; "
            "* with --tenant: every incarnation of that name",
        ),
        ("limit", "events per page (default 100, at most 1000)"),
    ):
        add_flag(query, name, metavar="VALUE", help=help_text)
    add_flag(query, "all", action="store_true", help="follow the pages to the end")
    query.set_defaults(handler=_query)

    report = commands.add_parser("report", parents=[common], help="a tenant's compliance report")
    add_flag(report, "tenant", metavar="TENANT", help="the tenant (default: the namespace)")
    add_flag(
        report,
        "tenant-uid",
        metavar="ID",
        help="root namespace only: report on this incarnation of --tenant (e.g. a deleted one)",
    )
    add_flag(report, "since", metavar="WHEN", default="30d", help="from when (default 30d)")
    add_flag(report, "csv", action="store_true", help="print CSV instead of a table/JSON")
    report.set_defaults(handler=_report)

    listing = commands.add_parser("list", parents=[common], help="list audit devices (root)")
    listing.set_defaults(handler=_list)
    enable = commands.add_parser("enable", parents=[common], help="enable an audit device (root)")
    enable.add_argument("type", metavar="TYPE", help="file, stdout or store")
    enable.add_argument("options", metavar="KEY=VALUE", nargs="*", help="e.g. file_path=/x.log")
    add_flag(enable, "path", metavar="NAME", help="device name (default: the type)")
    enable.set_defaults(handler=_enable)
    disable = commands.add_parser("disable", parents=[common], help="disable an audit device")
    disable.add_argument("name", metavar="NAME")
    disable.set_defaults(handler=_disable)
    hashing = commands.add_parser("hash", parents=[common], help="HMAC a value as DEVICE logs it")
    hashing.add_argument("name", metavar="DEVICE")
    hashing.add_argument("input", metavar="VALUE", help="use - to read it from stdin")
    hashing.set_defaults(handler=_hash)


def _anchor(ctx: Context) -> ChainHead | None:
    if ctx.args.anchor:
        try:
            return ChainHead.parse(ctx.args.anchor)
        except ValueError as error:
            raise UsageError(str(error)) from None
    if not ctx.args.device:
        return None
    name = segment(ctx.args.device, what="device name")
    # Before the log is read: the head only moves on after its entry is in the file.
    reply = ctx.call("GET", f"sys/audit/{name}", doing="reading the device's chain head")
    head = unwrap(reply.body).get("chain_head")
    if not isinstance(head, dict):
        raise Failure(f"Audit device {name} keeps no chain head: it is not a file device")
    return ChainHead(int(head["seq"]), str(head["hash"]))


def _verify(ctx: Context) -> int:
    path: Path = ctx.args.file
    anchor = _anchor(ctx)
    try:
        with (
            path.open("rb") as handle,
            progress_lines(
                handle,
                total_bytes=path.stat().st_size,
                label=f"verifying {path.name}",
                stream=ctx.out.stderr,
            ) as lines,
        ):
            report = verify_lines(lines, anchor=anchor)
    except OSError as error:
        raise Failure(f"Error reading {path}: {error.strerror}", exit_code=2) from None
    ctx.out.line(f"{path}: {report.describe()}")
    return 0 if report.ok else 1


def _params(ctx: Context, names: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for name in names:
        value = getattr(ctx.args, name.replace("-", "_"), None)
        if value not in (None, ""):
            params[name.replace("-", "_")] = str(value)
    return params


def _query(ctx: Context) -> int:
    params = _params(
        ctx,
        (
            "since",
            "until",
            "path-prefix",
            "operation",
            "outcome",
            "accessor",
            "tenant",
            "tenant-uid",
            "limit",
        ),
    )
    events: list[Any] = []
    while True:
        reply = ctx.call("GET", "sys/audit/events", params=params, doing="querying audit events")
        data = unwrap(reply.body)
        events.extend(data.get("events") or [])
        cursor = data.get("next")
        if not ctx.args.all or cursor is None:
            break
        params["after"] = str(cursor)
    if ctx.out.is_json:
        ctx.out.json(events)
        return 0
    rows = [
        (
            str(event.get("time", "")),
            f"{event.get('type', '')} {(event.get('request') or {}).get('operation', '')} "
            f"{(event.get('request') or {}).get('path', '')} "
            f"{(event.get('response') or {}).get('status', '')}".rstrip(),
        )
        for event in events
    ]
    ctx.out.show(View(document=events, sections=[Section(rows=rows)]))
    return 0


def _report(ctx: Context) -> int:
    params = {"since": str(ctx.args.since)}
    if ctx.args.tenant:
        params["tenant"] = str(ctx.args.tenant)
    if ctx.args.tenant_uid:
        params["tenant_uid"] = str(ctx.args.tenant_uid)
    if ctx.args.csv:
        params["format"] = "csv"
    with working("building the report", stream=ctx.out.stderr):
        reply = ctx.call("GET", "sys/audit/report", params=params, doing="building the report")
    data = unwrap(reply.body)
    if ctx.args.csv:
        ctx.out.stdout.write(str(data.get("csv", "")))
        return 0
    if ctx.out.is_json:
        ctx.out.json(data)
        return 0
    rows = [
        (
            key,
            f"reads={s['reads']} writes={s['writes']} denied={s['denied']} readers="
            + ",".join(r["display_name"] or r["accessor"][:20] for r in s["readers"]),
        )
        for key, s in (data.get("secrets") or {}).items()
    ]
    sections = [
        Section(
            rows=[
                ("tenant", data.get("tenant")),
                ("since", data.get("since")),
                ("until", data.get("until")),
                ("denied_total", data.get("denied_total")),
            ]
        ),
        Section(heading="== Secrets ==", rows=rows),
        Section(heading="== Never read ==", lines=list(data.get("never_read") or [])),
        Section(
            heading="== Tokens without expiry ==",
            lines=[
                f"{t['display_name']} {t['accessor']}"
                for t in data.get("tokens_without_expiry") or []
            ],
        ),
    ]
    ctx.out.show(View(document=data, sections=sections))
    return 0


def _list(ctx: Context) -> int:
    reply = ctx.call("GET", "sys/audit", doing="listing audit devices")
    data = unwrap(reply.body)
    rows = [(path, f"{info.get('type')} {info.get('options')}") for path, info in data.items()]
    ctx.out.show(View(document=data, sections=[Section(rows=rows)]))
    return 0


def _enable(ctx: Context) -> int:
    options = {}
    for item in ctx.args.options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError("options must look like KEY=VALUE")
        options[key] = value
    name = segment(ctx.args.path or ctx.args.type, what="device name")
    ctx.call(
        "PUT",
        f"sys/audit/{name}",
        body={"type": ctx.args.type, "options": options},
        doing="enabling audit device",
    )
    ctx.out.line(f"Success! Enabled the {ctx.args.type} audit device at: {name}/")
    return 0


def _disable(ctx: Context) -> int:
    name = segment(ctx.args.name, what="device name")
    ctx.call("DELETE", f"sys/audit/{name}", doing="disabling audit device")
    ctx.out.line(f"Success! Disabled audit device (if it was enabled) at: {name}/")
    return 0


def _hash(ctx: Context) -> int:
    value = ctx.stdin.read().rstrip("\n") if ctx.args.input == "-" else ctx.args.input
    name = segment(ctx.args.name, what="device name")
    reply = ctx.call(
        "POST", f"sys/audit-hash/{name}", body={"input": value}, doing="hashing the value"
    )
    data = unwrap(reply.body)
    ctx.out.show(
        View(document=data, sections=[Section(rows=[("hash", data.get("hash"))])], fields=data)
    )
    return 0
