"""Issue 8 item 5: a cut audit log is found, even at a checkpoint and across restarts.

The server keeps each file sink's chain head in its sealed store; a log that does not hold
that head when it opens gets a loud `gap` checkpoint (and shows in health), and `verify`
with the head as anchor fails a log cut right after a checkpoint.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

import tenantvault
from tenantvault.audit._chain import ChainHead, ChainState, seal_entry, verify_lines
from tenantvault.testing import core_of


def _entries(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _verify(path: Path, anchor: ChainHead | None = None) -> Any:
    return verify_lines(path.read_bytes().splitlines(keepends=True), anchor=anchor)


async def _session(data: Path, log: Path, *, puts: int = 5) -> dict[str, Any]:
    """Open the embedded store with a settings-configured file sink, write, close cleanly.

    Returns the audit health seen while open."""
    async with tenantvault.open(f"sqlite://{data}") as tv:
        broker = core_of(tv).audit_broker
        assert broker is not None
        await broker.enable("file", "file", {"file_path": str(log)}, persist=False)
        if not await core_of(tv).backend.has_tenant("acme"):
            await tv.create_tenant("acme")
        for n in range(puts):
            await tv.tenant("acme").kv.put("k", {"v": n})
        return broker.health()


def _checkpoints(path: Path, reason: str) -> list[dict[str, Any]]:
    return [e for e in _entries(path) if e["type"] == "checkpoint" and e["reason"] == reason]


async def test_a_log_cut_mid_stream_is_reported_when_the_server_starts_again(
    tmp_path: Path,
) -> None:
    """Before: the restart resumed the chain from the cut, and verify said ok."""
    data, log = tmp_path / "data", tmp_path / "audit.log"
    await _session(data, log)
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:7]))  # drop the last entries, the close checkpoint too

    health = await _session(data, log)

    assert health["chain_intact"] is False
    assert "seq 8.." in health["gaps"][0]["detail"]
    (gap,) = _checkpoints(log, "gap")
    assert gap["expected"]["seq"] == len(lines)
    assert gap["found"]["seq"] == 7
    report = _verify(log)
    assert not report.ok
    assert "gap" in report.describe().lower()
    assert "missing" in report.describe()


async def test_a_log_cut_right_after_a_checkpoint_is_reported_when_the_server_starts_again(
    tmp_path: Path,
) -> None:
    """`head -n` at a checkpoint leaves a log that verifies on its own: the stored head
    still names the entries that were cut."""
    data, log = tmp_path / "data", tmp_path / "audit.log"
    await _session(data, log)
    await _session(data, log)  # a second run: its `open` checkpoint follows the first `close`
    lines = log.read_bytes().splitlines(keepends=True)
    first_close = next(
        i for i, line in enumerate(lines) if orjson.loads(line).get("reason") == "close"
    )
    log.write_bytes(b"".join(lines[: first_close + 1]))
    assert _verify(log).ok  # on its own, the cut cannot be seen

    health = await _session(data, log)

    assert health["chain_intact"] is False
    assert len(_checkpoints(log, "gap")) == 1
    assert not _verify(log).ok


async def test_a_log_replaced_by_a_forged_one_of_the_same_length_is_reported(
    tmp_path: Path,
) -> None:
    data, log = tmp_path / "data", tmp_path / "audit.log"
    await _session(data, log, puts=1)
    count = len(_entries(log))
    state = ChainState()
    forged = [seal_entry(state, {"type": "checkpoint", "reason": "open"})]
    forged += [seal_entry(state, {"type": "request"}) for _ in range(count - 2)]
    forged.append(seal_entry(state, {"type": "checkpoint", "reason": "close"}))
    log.write_bytes(b"".join(forged))

    health = await _session(data, log, puts=0)

    assert "rewritten" in health["gaps"][0]["detail"]


async def test_a_clean_restart_and_a_rotation_open_without_a_gap(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "audit.log"
    await _session(data, log)
    health = await _session(data, log)
    assert health["chain_intact"] is True
    assert _checkpoints(log, "gap") == []
    assert _verify(log).ok

    rotated = tmp_path / "audit.log.1"
    async with tenantvault.open(f"sqlite://{data}") as tv:
        broker = core_of(tv).audit_broker
        assert broker is not None
        await broker.enable("file", "file", {"file_path": str(log)}, persist=False)
        await tv.tenant("acme").kv.put("k", {"v": "before"})
        log.rename(rotated)
        broker.reopen()
        await tv.tenant("acme").kv.put("k", {"v": "after"})
    health = await _session(data, log)
    assert health["chain_intact"] is True
    assert _verify(log).ok
    assert _verify(rotated).ok


async def test_an_unclean_stop_is_stated_in_the_log_it_left(tmp_path: Path) -> None:
    """A log that ends without its `close` checkpoint (a crash) is never resumed silently;
    a torn last line (cut mid-write) is removed, and that is stated too."""
    data, log = tmp_path / "data", tmp_path / "audit.log"
    await _session(data, log)
    lines = log.read_bytes().splitlines(keepends=True)
    # What kill -9 leaves: no close checkpoint, maybe half a line.
    log.write_bytes(b"".join(lines[:-1]) + lines[-1][:20])
    # The store's head names the close checkpoint, which is gone: that is a gap as well.
    health = await _session(data, log)
    assert health["chain_intact"] is False
    (gap,) = _checkpoints(log, "gap")
    assert gap["torn_bytes"] == 20
    assert "torn" in gap["detail"]
    report = _verify(log)
    assert not report.ok
    assert report.problem == ""  # the chain itself is intact: only the recorded gap fails it


def test_verify_with_the_anchor_fails_a_log_cut_after_a_checkpoint(tmp_path: Path) -> None:
    """Before: `head -n 763` at a checkpoint verified ok; the anchor makes the cut visible."""
    state = ChainState()
    lines = [seal_entry(state, {"type": "checkpoint", "reason": "open"})]
    for n in range(1000):
        lines.append(seal_entry(state, {"type": "request", "n": n}))
        if n == 760:
            lines.append(seal_entry(state, {"type": "checkpoint", "reason": "interval"}))
    lines.append(seal_entry(state, {"type": "checkpoint", "reason": "close"}))
    anchor = ChainHead(state.seq, state.last_hash)
    cut = lines[:763]
    assert orjson.loads(cut[-1])["reason"] == "interval"
    assert verify_lines(cut).ok

    report = verify_lines(cut, anchor=anchor)
    assert not report.ok
    assert "truncated" in report.problem
    assert verify_lines(lines, anchor=anchor).ok
    # A live log need not end in a checkpoint when the anchor vouches for its tail.
    assert verify_lines(lines[:500], anchor=ChainHead(500, orjson.loads(lines[499])["hash"])).ok

    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(cut))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tenantvault.cli",
            "audit",
            "verify",
            str(log),
            "--anchor",
            f"{anchor.seq}:{anchor.hash}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"seq {anchor.seq}" in result.stdout


def test_verify_reports_a_gap_checkpoint_instead_of_ok() -> None:
    state = ChainState()
    lines = [seal_entry(state, {"type": "checkpoint", "reason": "open"})]
    lines.append(seal_entry(state, {"type": "checkpoint", "reason": "gap", "detail": "lost 3"}))
    lines.append(seal_entry(state, {"type": "checkpoint", "reason": "close"}))
    report = verify_lines(lines)
    assert not report.ok
    assert report.gaps == ("seq 2: lost 3",)
    assert report.describe().startswith("GAP")
