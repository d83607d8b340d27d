"""`tenantvault metrics` and `tenantvault alerts` against a real `tenantvault serve --dev`,
and the progress display of long operations: drawn on a terminal, absent when piped."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from tenantvault.cli._progress import progress_lines, working
from tests.cli.conftest import CLI


def test_metrics_shows_the_tenants_own_counters(cli: CLI, tenant: str) -> None:
    assert cli("kv", "put", "secret/app", "k=v").code == 0
    for _ in range(3):
        assert cli("kv", "get", "secret/app").code == 0
    shown = cli("metrics", "-format=json")
    assert shown.code == 0, shown.err
    counters = json.loads(shown.out)["Counters"]
    reads = [
        c["Count"]
        for c in counters
        if c["Name"] == "tenantvault_requests_total"
        and c["Labels"]
        == {
            "operation": "read",
            "mount": "secret",
            "outcome": "success",
            "tenant": tenant,
        }
    ]
    assert reads == [3]
    # Root inside a tenant sees that tenant's series only.
    assert {c["Labels"].get("tenant") for c in counters if "tenant" in c["Labels"]} == {tenant}
    table = cli("metrics", "-filter", "requests")
    assert table.code == 0, table.err
    assert f"tenant={tenant}" in table.out
    assert "process_" not in table.out


def test_alerts_lists_none_for_a_quiet_tenant(cli: CLI, tenant: str) -> None:
    assert cli("alerts").out.strip() == "No alerts"
    listed = cli("alerts", "-format=json")
    assert listed.code == 0, listed.err
    assert json.loads(listed.out) == []


def test_progress_is_drawn_on_a_terminal_only(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(b'{"n": %d}\n' % i for i in range(20_000)))
    # Piped: the lines pass through untouched and nothing is written.
    piped = io.StringIO()
    with (
        log.open("rb") as handle,
        progress_lines(
            handle, total_bytes=log.stat().st_size, label="verifying", stream=piped
        ) as lines,
    ):
        assert sum(1 for _ in lines) == 20_000
    with working("building the report", stream=piped):
        pass
    assert piped.getvalue() == ""
    # A real terminal (a pseudo-terminal pair): the same lines, and a bar was drawn.
    leader, follower = os.openpty()
    try:
        with open(follower, "w", closefd=False) as terminal:
            assert terminal.isatty()
            with (
                log.open("rb") as handle,
                progress_lines(
                    handle, total_bytes=log.stat().st_size, label="verifying", stream=terminal
                ) as lines,
            ):
                assert sum(1 for _ in lines) == 20_000
            terminal.flush()
        drawn = os.read(leader, 65536)
    finally:
        os.close(leader)
        os.close(follower)
    assert b"verifying" in drawn
