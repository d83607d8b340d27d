"""The hash chain that makes an audit log tamper-evident, and `verify_lines` that checks it.

Every line carries `seq` (1, 2, 3, … per sink), `prev_hash` (the previous line's `hash`) and
`hash` = SHA-256 of the line's canonical JSON without `hash`. Changing a byte, deleting,
inserting or reordering lines breaks the chain at the first affected line. Checkpoint lines
(`type: checkpoint`) are written every N entries, every T seconds and on close; a log that does
not end in a checkpoint has lost its tail (or its writer died, which is also worth knowing).

A cut right after a checkpoint leaves a log that verifies on its own: an anchor (a head kept
apart from the log, by the server's sealed store) finds it. A `gap` checkpoint is the writer's
own statement that entries are missing (found at open, or missed by an unhealthy sink): the
chain through it verifies, but the log is not reported ok.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "GENESIS",
    "ChainHead",
    "ChainState",
    "VerifyReport",
    "describe_gap",
    "seal_entry",
    "verify_lines",
]

GENESIS = "0" * 64
_SORTED = orjson.OPT_SORT_KEYS
_dumps = orjson.dumps


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
    # The sorted-key JSON of the entry is that of its keys before `hash` and that of the keys
    # after it, joined: serialized in those two parts, each value is serialized once, and the
    # line is the same bytes with `hash` between them (byte for byte what sorting the whole
    # entry gives: a test says so). `after` always holds `prev_hash` and `seq`.
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key, value in entry.items():
        (before if key < "hash" else after)[key] = value
    head = _dumps(before, option=_SORTED)[:-1] + b"," if before else b"{"  # "}" cut off
    tail = _dumps(after, option=_SORTED)[1:]  # "{" cut off
    digest = hashlib.sha256(head + tail).hexdigest()
    entry["hash"] = digest
    state.seq += 1
    state.last_hash = digest
    return b"".join((head, b'"hash":"', digest.encode("ascii"), b'",', tail, b"\n"))


@dataclass(frozen=True, slots=True)
class ChainHead:
    """One entry's place in a chain (its seq and hash): what an anchor pins down."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> ChainHead:
        """`SEQ:HASH`, as `audit verify --anchor` takes it."""
        seq, sep, digest = text.partition(":")
        if not sep or not seq.isdigit() or len(digest) != len(GENESIS):
            raise ValueError("an anchor looks like SEQ:HASH (a sequence number and a SHA-256)")
        return cls(int(seq), digest.lower())


@dataclass(slots=True)
class VerifyReport:
    """The verdict on one log: ok, or the first problem and where it is.

    A log whose chain is intact but which records gaps (`gap` checkpoints: entries its writer
    knows are missing) is not ok: `gaps` says what each one reports.
    """

    ok: bool
    entries: int
    first_seq: int
    last_seq: int
    problem: str = ""
    line: int = 0
    gaps: tuple[str, ...] = ()
    anchor: ChainHead | None = None

    def describe(self) -> str:
        if self.ok:
            tail = (
                f"contains the anchor seq {self.anchor.seq}"
                if self.anchor is not None
                else "ends with a checkpoint"
            )
            return (
                f"ok: {self.entries} entries, seq {self.first_seq}..{self.last_seq}, "
                f"chain intact, {tail}"
            )
        if not self.problem:  # the chain is intact; only the gaps it records stand against it
            return (
                f"GAP: {self.entries} entries, seq {self.first_seq}..{self.last_seq}, chain "
                f"intact, but the log records {len(self.gaps)} gap(s): " + "; ".join(self.gaps)
            )
        also = "; gaps recorded before it: " + "; ".join(self.gaps) if self.gaps else ""
        return f"FAILED at line {self.line}: {self.problem}{also}"


def describe_gap(entry: dict[str, Any]) -> str:
    """A `gap` checkpoint in one sentence, for verify's report."""
    return f"seq {entry.get('seq')}: {entry.get('detail') or 'entries are missing'}"


def verify_lines(lines: Iterable[bytes], *, anchor: ChainHead | None = None) -> VerifyReport:
    """Check a log's chain; report the first broken, missing, reordered or altered entry.

    With `anchor` (a head recorded elsewhere: the server's sealed store), the log must hold
    that entry: a log cut at a checkpoint, which verifies on its own, fails here.
    """
    previous: str | None = None
    expected_seq: int | None = None
    first_seq = last_seq = 0
    first_prev = ""
    count = 0
    last_type = ""
    number = 0
    gaps: list[str] = []
    gap_line = 0
    anchored = False

    def fail(problem: str, line: int) -> VerifyReport:
        return VerifyReport(False, count, first_seq, last_seq, problem, line, tuple(gaps), anchor)

    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            entry = orjson.loads(raw)
            claimed = entry.pop("hash")
            seq = entry["seq"]
            prev = entry["prev_hash"]
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return fail("line is not a sealed audit entry (altered or truncated)", number)
        if _digest(entry) != claimed:
            return fail(f"entry seq {seq} was altered (hash mismatch)", number)
        if expected_seq is None:
            first_seq = seq
            first_prev = prev
        elif seq != expected_seq:
            kind = "missing" if isinstance(seq, int) and seq > expected_seq else "reordered"
            return fail(f"expected seq {expected_seq}, found {seq}: entries {kind}", number)
        if previous is not None and prev != previous:
            return fail(f"entry seq {seq} does not follow the previous entry", number)
        if anchor is not None and seq == anchor.seq:
            if claimed != anchor.hash:
                return fail(
                    f"entry seq {seq} is not the anchored entry (hash differs): "
                    "the log was rewritten from here",
                    number,
                )
            anchored = True
        last_type = entry.get("type", "")
        if last_type == "checkpoint" and entry.get("reason") == "gap":
            gaps.append(describe_gap({**entry, "seq": seq}))
            gap_line = gap_line or number
        previous = claimed
        expected_seq = seq + 1
        last_seq = seq
        count += 1
    if count == 0:
        return fail("the log is empty", number)
    if anchor is not None and not anchored:
        # A log that starts right after the anchor (the first file after a rotation whose
        # predecessor ends at the anchor) still proves the anchor's entry came before it.
        if not (first_seq == anchor.seq + 1 and first_prev == anchor.hash):
            if last_seq < anchor.seq:
                return fail(
                    f"the log ends at seq {last_seq} but the anchor is at seq {anchor.seq}: "
                    f"entries {last_seq + 1}..{anchor.seq} were cut (truncated)",
                    number,
                )
            return fail(
                f"the anchor (seq {anchor.seq}) is not in this log (seq "
                f"{first_seq}..{last_seq}): it belongs to another file",
                number,
            )
        anchored = True
    # A live writer's log need not end in a checkpoint when the anchor vouches for its tail.
    if last_type != "checkpoint" and not anchored:
        return fail(
            f"the log ends at seq {last_seq} without a checkpoint: its tail "
            "was truncated, or its writer is still running or died",
            number,
        )
    if gaps:
        return fail("", gap_line)
    return VerifyReport(True, count, first_seq, last_seq, anchor=anchor)
