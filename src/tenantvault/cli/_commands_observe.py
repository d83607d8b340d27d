"""`metrics` and `alerts`: the server's (root) or the tenant's own numbers and anomaly alerts.

`tenantvault metrics` reads `sys/metrics` (Vault's JSON dump; `-format=json` prints it
whole) and shows its counters and gauges; for the Prometheus text, scrape
`/v1/sys/metrics?format=prometheus`. `tenantvault alerts` lists `sys/alerts`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tenantvault.cli._args import add_flag
from tenantvault.cli._commands_sys import unwrap
from tenantvault.cli._context import Context
from tenantvault.cli._output import Section, View

__all__ = ["register"]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    metrics = subparsers.add_parser(
        "metrics",
        parents=[common],
        help="request counts, denials and more (root: the server; a tenant: its own)",
    )
    add_flag(
        metrics,
        "filter",
        metavar="TEXT",
        help="only metrics whose name contains TEXT (e.g. requests, denials)",
    )
    metrics.set_defaults(handler=_metrics)
    alerts = subparsers.add_parser(
        "alerts", parents=[common], help="anomaly alerts, with the numbers that raised each"
    )
    add_flag(alerts, "since", metavar="ID", help="only alerts after this id")
    alerts.set_defaults(handler=_alerts)


def _labels(labels: Any) -> str:
    if not isinstance(labels, dict) or not labels:
        return ""
    return "{" + ",".join(f"{key}={value}" for key, value in sorted(labels.items())) + "}"


def _metrics(ctx: Context) -> int:
    reply = ctx.call("GET", "sys/metrics", doing="reading metrics")
    data = unwrap(reply.body)
    if ctx.out.is_json:
        ctx.out.json(data)
        return 0
    wanted = str(ctx.args.filter or "")
    sections = []
    for heading, key, value in (
        ("== Counters ==", "Counters", "Count"),
        ("== Gauges ==", "Gauges", "Value"),
        ("== Latency (count, mean seconds) ==", "Samples", "Count"),
    ):
        rows = []
        for entry in data.get(key) or []:
            name = str(entry.get("Name", ""))
            if wanted not in name:
                continue
            shown: Any = entry.get(value)
            if key == "Samples":
                shown = f"{entry.get('Count', 0):g} {entry.get('Mean', 0.0):.6f}"
            rows.append((name + _labels(entry.get("Labels")), shown))
        if rows:
            sections.append(Section(heading=heading, rows=rows))
    ctx.out.show(View(document=data, sections=sections))
    return 0


def _alerts(ctx: Context) -> int:
    params = {"since": str(ctx.args.since)} if ctx.args.since else None
    reply = ctx.call("GET", "sys/alerts", params=params, doing="reading alerts")
    alerts = unwrap(reply.body).get("alerts") or []
    if ctx.out.is_json:
        ctx.out.json(alerts)
        return 0
    if not alerts:
        ctx.out.line("No alerts")
        return 0
    lines = []
    for alert in alerts:
        who = " ".join(filter(None, (alert.get("display_name"), alert.get("accessor"))))
        where = alert.get("tenant") or "(root)"
        lines.append(
            f"#{alert.get('id')} {alert.get('time')} {alert.get('kind')} tenant={where}"
            + (f" token={who}" if who else "")
        )
        lines.append(f"    {alert.get('message')}")
        lines.append(f"    {json.dumps(alert.get('numbers'), sort_keys=True)}")
    ctx.out.show(View(document=alerts, sections=[Section(lines=lines)]))
    return 0
