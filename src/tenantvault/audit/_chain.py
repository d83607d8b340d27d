"""The hash chain that makes an audit log tamper-evident, and `verify_lines` that checks it.

Every line carries `seq` (1, 2, 3, … per sink), `prev_hash` (the previous line's `hash`) and
`hash` = SHA-256 of the line's canonical JSON without `hash`. Changing a byte, deleting,
inserting or reordering lines breaks the chain at the first affected line. Checkpoint lines
(`type: checkpoint`) are written every N entries, every T seconds and on close; a log that does
not end in a checkpoint has lost its tail (or its writer died, which is also worth knowing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["GENESIS", "ChainState", "VerifyReport", "seal_entry", "verify_lines"]

GENESIS = "0" * 64


def _digest(entry: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(slots=True)
class ChainState:
    """Where a sink's chain stands: the last sequence number and hash written."""

    seq: int = 0
    last_hash: str = GENESIS


def seal_entry(state: ChainState, entry: dict[str, Any]) -> bytes:
    """Add seq/prev_hash/hash to `entry`, advance `state`, return the line to write."""
    entry["seq"] = state.seq + 1
    entry["prev_hash"] = state.last_hash
    entry.pop("hash", None)
    digest = _digest(entry)
    entry["hash"] = digest
    state.seq += 1
    state.last_hash = digest
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS) + b"\n"


@dataclass(slots=True)
class VerifyReport:
    """The verdict on one log: ok, or the first problem and where it is."""

    ok: bool
    entries: int
    first_seq: int
    last_seq: int
    problem: str = ""
    line: int = 0

    def describe(self) -> str:
        if self.ok:
            return (
                f"ok: {self.entries} entries, seq {self.first_seq}..{self.last_seq}, "
                "chain intact, ends with a checkpoint"
            )
        return f"FAILED at line {self.line}: {self.problem}"


def verify_lines(lines: Iterable[bytes]) -> VerifyReport:
    """Check a log's chain; report the first broken, missing, reordered or altered entry."""
    previous: str | None = None
    expected_seq: int | None = None
    first_seq = last_seq = 0
    count = 0
    last_type = ""
    number = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            entry = orjson.loads(raw)
            claimed = entry.pop("hash")
            seq = entry["seq"]
            prev = entry["prev_hash"]
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return VerifyReport(
                False,
                count,
                first_seq,
                last_seq,
                "line is not a sealed audit entry (altered or truncated)",
                number,
            )
        if _digest(entry) != claimed:
            return VerifyReport(
                False,
                count,
                first_seq,
                last_seq,
                f"entry seq {seq} was altered (hash mismatch)",
                number,
            )
        if expected_seq is None:
            first_seq = seq
        elif seq != expected_seq:
            kind = "missing" if isinstance(seq, int) and seq > expected_seq else "reordered"
            return VerifyReport(
                False,
                count,
                first_seq,
                last_seq,
                f"expected seq {expected_seq}, found {seq}: entries {kind}",
                number,
            )
        if previous is not None and prev != previous:
            return VerifyReport(
                False,
                count,
                first_seq,
                last_seq,
                f"entry seq {seq} does not follow the previous entry",
                number,
            )
        previous = claimed
        expected_seq = seq + 1
        last_seq = seq
        last_type = entry.get("type", "")
        count += 1
    if count == 0:
        return VerifyReport(False, 0, 0, 0, "the log is empty", number)
    if last_type != "checkpoint":
        return VerifyReport(
            False,
            count,
            first_seq,
            last_seq,
            f"the log ends at seq {last_seq} without a checkpoint: its tail "
            "was truncated, or its writer is still running or died",
            number,
        )
    return VerifyReport(True, count, first_seq, last_seq)
