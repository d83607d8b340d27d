"""Acceptance 4 (issue 4): `verify` passes an untouched log and finds every kind of tampering."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tenantvault.audit._chain import ChainState, seal_entry, verify_lines


def _log(count: int) -> list[bytes]:
    state = ChainState()
    lines = [seal_entry(state, {"type": "checkpoint", "reason": "open"})]
    for n in range(count):
        entry = {"type": "request" if n % 2 == 0 else "response", "request": {"id": str(n // 2)}}
        lines.append(seal_entry(state, entry))
    lines.append(seal_entry(state, {"type": "checkpoint", "reason": "close"}))
    return lines


def test_an_untouched_log_of_10000_entries_verifies() -> None:
    report = verify_lines(_log(10_000))
    assert report.ok, report.describe()
    assert report.entries == 10_002
    assert (report.first_seq, report.last_seq) == (1, 10_002)


def test_one_altered_byte_is_found_at_its_line() -> None:
    lines = _log(100)
    line = bytearray(lines[50])
    position = line.index(b'"id":"') + 6
    line[position] = ord("9") if line[position] != ord("9") else ord("8")
    lines[50] = bytes(line)
    report = verify_lines(lines)
    assert not report.ok
    assert report.line == 51
    assert "altered" in report.problem


def test_a_deleted_entry_is_found() -> None:
    lines = _log(100)
    del lines[40]
    report = verify_lines(lines)
    assert not report.ok
    assert report.line == 41
    assert "missing" in report.problem


def test_two_swapped_entries_are_found() -> None:
    lines = _log(100)
    lines[30], lines[31] = lines[31], lines[30]
    report = verify_lines(lines)
    assert not report.ok
    assert report.line == 31


def test_a_truncated_tail_is_found() -> None:
    lines = _log(100)[:-3]
    report = verify_lines(lines)
    assert not report.ok
    assert "without a checkpoint" in report.problem


def test_a_torn_last_line_is_found() -> None:
    lines = _log(10)
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    assert not verify_lines(lines).ok


def test_a_rewritten_entry_with_a_recomputed_hash_still_breaks_the_chain() -> None:
    lines = _log(20)
    entry = orjson.loads(lines[5])
    entry["request"]["id"] = "forged"
    state = ChainState(entry["seq"] - 1, entry["prev_hash"])
    lines[5] = seal_entry(state, {k: v for k, v in entry.items() if k not in ("seq",)})
    report = verify_lines(lines)
    assert not report.ok
    assert report.line == 7  # the next entry no longer follows it


@pytest.mark.parametrize("damage", ["none", "byte"])
def test_the_cli_verify_command_exits_by_verdict(tmp_path: Path, damage: str) -> None:
    log = tmp_path / "audit.log"
    lines = _log(50)
    if damage == "byte":
        lines[10] = lines[10].replace(b'"request"', b'"requesT"', 1)
    log.write_bytes(b"".join(lines))
    result = subprocess.run(
        [sys.executable, "-m", "tenantvault.cli", "audit", "verify", str(log)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if damage == "none":
        assert result.returncode == 0, result.stderr
        assert "ok" in result.stdout
    else:
        assert result.returncode == 1
        assert "line 11" in result.stdout + result.stderr
