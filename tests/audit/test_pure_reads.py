"""Issue 16: a request that changes nothing waits for one group commit, not two in a row.

A KV read or a transit operation on a stored key (`Route.pure`) may run before its request
entry is recorded: the Core writes the request and response entries together, so the sink
makes them durable in one batch, and answers only once both are. Everything with an effect
keeps the strict order (request entry durable, then the engine), and a failing sink still
fails the read closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

import tenantvault
from tenantvault import AuditError, Operation, PermissionDeniedError
from tenantvault._audit_hook import Refusal
from tenantvault.audit import verify_lines
from tenantvault.testing import core_of
from tests.conftest import canary


class Batches:
    """Records each batch a sink's writer makes durable: (type, request id) per entry."""

    def __init__(self) -> None:
        self.seen: list[list[tuple[str, str]]] = []

    def of(self, request_id: str) -> list[list[str]]:
        """The entry types of `request_id`, grouped by the batch that wrote them."""
        groups = [[kind for kind, rid in batch if rid == request_id] for batch in self.seen]
        return [group for group in groups if group]


async def _recorded(tv: tenantvault.TenantVault, tmp_path: Path) -> tuple[Batches, Path]:
    """A file device whose batches are recorded (after everything already queued)."""
    broker = core_of(tv).audit_broker
    broker.file_dir = tmp_path
    log = tmp_path / "audit.log"
    await tv.request(
        Operation.UPDATE, "sys/audit/file", {"type": "file", "options": {"file_path": str(log)}}
    )
    writer = broker.sinks["file"].writer
    batches = Batches()
    write_batch = writer._write_batch

    def recording(lines: list[bytes], entries: list[dict[str, Any]]) -> None:
        write_batch(lines, entries)
        batches.seen.append(
            [(str(e["type"]), str(e.get("request", {}).get("id", ""))) for e in entries]
        )

    writer._write_batch = recording
    return batches, log


async def test_a_kv_read_is_recorded_in_one_batch_a_write_in_two(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    batches, log = await _recorded(tv, tmp_path)
    await tv.create_tenant("acme")
    acme = tv.tenant("acme")
    secret = canary("pure-")
    await acme.kv.put("app/db", {"password": secret})
    assert (await acme.kv.get("app/db")).data == {"password": secret}
    await acme.kv.metadata("app/db")
    await tv.aclose()

    entries = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]
    writes = [
        e["request"]["id"]
        for e in entries
        if e["type"] == "request"
        and e["request"]["operation"] in ("update", "create")
        and str(e["request"]["path"]).endswith("data/app/db")
    ]
    reads = [
        e["request"]["id"]
        for e in entries
        if e["type"] == "request" and e["request"]["operation"] == "read"
    ]
    assert len(writes) == 1
    assert len(reads) == 2  # data and metadata
    # The write: its request entry durable before the engine ran, its response after.
    assert batches.of(writes[0]) == [["request"], ["response"]]
    for read in reads:
        assert batches.of(read) == [["request", "response"]]
    assert secret not in log.read_text()
    assert verify_lines(log.read_bytes().splitlines(keepends=True)).ok


async def test_a_denied_read_and_a_refusal_are_each_one_batch(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    batches, log = await _recorded(tv, tmp_path)
    await tv.create_tenant("acme")
    token = await tv.tenant("acme").tokens.create(policies=["default"])
    with pytest.raises(PermissionDeniedError):
        await tv.with_token(token.token).tenant("acme").kv.get("app/db")
    refusal = Refusal(
        request_id="refused-1", status=404, error="Not Found", method="GET", raw_path=b"/x"
    )
    await core_of(tv).refused(refusal, started=0.0)
    await tv.aclose()
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]
    denied = [
        e["request"]["id"]
        for e in entries
        if e["type"] == "response" and e["response"].get("outcome") == "denied"
    ]
    assert len(denied) == 1
    # Nothing ran for either: both entries go together.
    assert batches.of(denied[0]) == [["request", "response"]]
    assert batches.of("refused-1") == [["request", "response"]]


async def test_a_wrapped_read_keeps_the_strict_order(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    """Wrapping stores the answer under a new token: an effect, so the request entry first."""
    batches, _log = await _recorded(tv, tmp_path)
    await tv.create_tenant("acme")
    await tv.tenant("acme").kv.put("app/db", {"password": "x"})
    core = core_of(tv)
    wrapped = await core.handle_as_operator(
        tenantvault.Request(
            operation=Operation.READ,
            path="secret/data/app/db",
            namespace="acme",
            wrap_ttl_seconds=60,
        )
    )
    assert wrapped.wrap_info is not None
    await tv.aclose()
    assert batches.of(wrapped.request_id) == [["request"], ["response"]]


async def test_a_read_with_the_only_sink_failing_answers_nothing(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    """The engine may have run, but no answer leaves without both entries recorded."""
    broker = core_of(tv).audit_broker
    await tv.create_tenant("acme")
    secret = canary("unaudited-")
    await tv.tenant("acme").kv.put("k", {"v": secret})
    await broker.enable("full", "file", {"file_path": "/dev/full"}, persist=False)
    with pytest.raises(AuditError) as raised:
        await tv.tenant("acme").kv.get("k")
    assert secret not in repr(raised.value)
    assert secret not in str(raised.value)
    assert broker.response_failures == 1
    assert broker.health()["healthy"] is False


def _ids(log: Path, path: str) -> list[str]:
    """The request ids of the request entries for `path`, in order."""
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]
    return [
        str(e["request"]["id"])
        for e in entries
        if e["type"] == "request" and e["request"]["path"] == path
    ]


async def test_transit_with_a_stored_key_is_one_batch_create_on_encrypt_two(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    batches, log = await _recorded(tv, tmp_path)
    await tv.create_tenant("acme")
    transit = tv.tenant("acme").transit
    await transit.create_key("k")
    ciphertext = await transit.encrypt("k", b"attack at dawn")
    assert await transit.decrypt("k", ciphertext) == b"attack at dawn"
    await transit.encrypt("fresh", b"x")  # creates the key on first encrypt: an effect
    await tv.aclose()
    encrypts = _ids(log, "transit/encrypt/k")
    decrypts = _ids(log, "transit/decrypt/k")
    created = _ids(log, "transit/encrypt/fresh")
    assert (len(encrypts), len(decrypts), len(created)) == (1, 1, 1)
    assert batches.of(encrypts[0]) == [["request", "response"]]
    assert batches.of(decrypts[0]) == [["request", "response"]]
    assert batches.of(created[0]) == [["request"], ["response"]]
