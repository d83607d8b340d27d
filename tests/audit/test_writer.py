"""The audit writer's hand-offs (issue 16): one per loop turn and one wake-up per batch, callers'
deadlines without a timer each, and sealed lines that are exactly the sorted JSON of their entry.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantvault.audit._chain import ChainState, seal_entry, verify_lines
from tenantvault.audit._redact import HMAC_PREFIX, Redactor
from tenantvault.audit._writer import BatchWriter

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


class _Recorder:
    """A sink's write_batch that keeps each batch's lines, optionally held until released."""

    def __init__(self, *, fail: BaseException | None = None) -> None:
        self.batches: list[list[bytes]] = []
        self.fail = fail
        self.release = threading.Event()
        self.release.set()
        self.written = threading.Event()

    def __call__(self, lines: list[bytes], entries: list[dict[str, Any]]) -> None:
        self.release.wait()
        if self.fail is not None:
            raise self.fail
        self.batches.append(list(lines))
        self.written.set()


@pytest.fixture
def recorder() -> _Recorder:
    return _Recorder()


@pytest.fixture
def writer(recorder: _Recorder) -> Iterator[BatchWriter]:
    batch_writer = BatchWriter("test", recorder, clock=time.monotonic, checkpoint_every=10**9)
    yield batch_writer
    recorder.release.set()
    batch_writer.close()


def _counting_wakeups(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    calls: list[int] = []
    original: Callable[..., Any] = loop.call_soon_threadsafe

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    return calls


@given(entry=st.dictionaries(st.text(max_size=10), _JSON, max_size=8))
def test_a_sealed_line_is_the_sorted_json_of_its_entry_with_its_hash(
    entry: dict[str, Any],
) -> None:
    """The line spliced around `hash` is byte for byte what serializing it whole gives."""
    state = ChainState()
    line = seal_entry(state, entry)
    assert line == orjson.dumps(entry, option=orjson.OPT_SORT_KEYS) + b"\n"
    unhashed = {key: value for key, value in entry.items() if key != "hash"}
    assert (
        entry["hash"]
        == hashlib.sha256(orjson.dumps(unhashed, option=orjson.OPT_SORT_KEYS)).hexdigest()
    )
    closing = seal_entry(state, {"type": "checkpoint", "reason": "close"})
    assert verify_lines([line, closing]).ok


async def test_the_entries_of_one_loop_turn_share_one_hand_off_and_one_wake_up(
    writer: BatchWriter, recorder: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    wakeups = _counting_wakeups(asyncio.get_running_loop(), monkeypatch)
    await asyncio.gather(*(writer.write({"type": "request", "n": n}) for n in range(50)))
    assert [len(batch) for batch in recorder.batches] == [50]
    assert len(wakeups) == 1
    seqs = [orjson.loads(line)["n"] for line in recorder.batches[0]]
    assert seqs == list(range(50))  # submission order is write order


async def test_a_caller_past_its_deadline_gets_a_timeout_and_its_entry_is_written_later(
    writer: BatchWriter, recorder: _Recorder
) -> None:
    recorder.release.clear()  # the sink hangs
    with pytest.raises(TimeoutError):
        await writer.write({"type": "request", "n": 1}, timeout_seconds=0.05)
    later = asyncio.ensure_future(writer.write({"type": "request", "n": 2}, timeout_seconds=30))
    recorder.release.set()
    await later
    written = [orjson.loads(line)["n"] for batch in recorder.batches for line in batch]
    assert written == [1, 2]


async def test_a_failed_batch_fails_every_caller_waiting_on_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _Recorder(fail=OSError(28, "No space left on device"))
    writer = BatchWriter("failing", recorder, clock=time.monotonic)
    try:
        results = await asyncio.gather(
            *(writer.write({"type": "request", "n": n}) for n in range(10)),
            return_exceptions=True,
        )
        assert all(isinstance(result, OSError) for result in results)
        assert writer.state.seq == 0  # nothing of the failed batch stays in the chain
    finally:
        writer.close()


async def test_a_synchronous_checkpoint_goes_after_the_entries_queued_before_it(
    writer: BatchWriter, recorder: _Recorder
) -> None:
    recorder.release.clear()
    pending = [asyncio.ensure_future(writer.write({"type": "request", "n": n})) for n in range(3)]
    await asyncio.sleep(0)  # the writes are queued on this loop, not handed over yet
    checkpoint = writer.checkpoint("reopen")
    recorder.release.set()
    await asyncio.gather(*pending)
    await asyncio.wrap_future(checkpoint)
    written = [orjson.loads(line) for batch in recorder.batches for line in batch]
    assert [entry.get("n", entry.get("reason")) for entry in written] == [0, 1, 2, "reopen"]


def test_the_redactor_hmac_is_hmac_sha256_under_the_sink_salt() -> None:
    """What `sys/audit-hash` and an investigator compute must match the entries."""
    salt = b"s" * 32
    redactor = Redactor(salt)
    for value in ("ghp_token", "", "ünïcode"):
        expected = hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()
        assert redactor.hash(value) == HMAC_PREFIX + expected
    assert redactor.redact({"a": ["x", 1, None, {"b": b"y"}], 2: True}) == {
        "a": [redactor.hash("x"), 1, None, {"b": redactor.hash(b"y")}],
        "2": True,
    }
