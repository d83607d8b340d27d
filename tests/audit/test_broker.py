"""The audit trail through the choke point: complete, redacted, fail-closed, recoverable."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

import tenantvault
from tenantvault import AuditError, Operation, PermissionDeniedError, TenantVaultError
from tenantvault.audit import verify_lines
from tenantvault.testing import core_of
from tests.conftest import canary


@pytest.fixture(autouse=True)
def _audit_dir(tv: tenantvault.TenantVault, tmp_path: Path) -> None:
    """API-created file devices must live in the operator's audit directory: here, tmp_path."""
    broker = core_of(tv).audit_broker
    assert broker is not None
    broker.file_dir = tmp_path


def _entries(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


async def _enable_file(tv: tenantvault.TenantVault, path: Path, name: str = "file") -> None:
    await tv.request(
        Operation.UPDATE, f"sys/audit/{name}", {"type": "file", "options": {"file_path": str(path)}}
    )


async def test_every_request_gets_a_request_and_a_response_entry(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    log = tmp_path / "audit.log"
    await _enable_file(tv, log)
    await tv.create_tenant("acme")
    secret = canary("audit-")
    await tv.tenant("acme").kv.put("app/db", {"password": secret})
    token = await tv.tenant("acme").tokens.create(policies=["default"])
    scoped = tv.with_token(token.token)
    with pytest.raises(PermissionDeniedError):
        await scoped.tenant("acme").kv.get("app/db")  # denied
    with pytest.raises(TenantVaultError):
        await tv.tenant("acme").kv.put("a/../b", {"x": "y"})  # invalid
    with pytest.raises(PermissionDeniedError):
        await tv.with_token("tvs.bogus").tenant("acme").kv.get("x")  # bad token
    await tv.aclose()

    entries = [e for e in _entries(log) if e["type"] != "checkpoint"]
    requests = {e["request"]["id"] for e in entries if e["type"] == "request"}
    responses = {e["request"]["id"]: e for e in entries if e["type"] == "response"}
    # create tenant, put, token create, denied, invalid, bad token = 6 (enabling the first
    # device happens before any device exists, so, as in Vault, it is not in the log)
    assert len(requests) == 6
    assert set(responses) == requests
    outcomes = sorted(e["response"]["outcome"] for e in responses.values())
    assert outcomes == ["denied", "denied", "invalid", "success", "success", "success"]
    text = log.read_text()
    assert secret not in text
    assert token.token not in text
    assert token.accessor not in text
    assert "CANARY" not in text
    assert verify_lines(log.read_bytes().splitlines(keepends=True)).ok


async def test_audit_hash_lets_an_investigator_match_a_value(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    log = tmp_path / "audit.log"
    await _enable_file(tv, log)
    await tv.create_tenant("acme")
    secret = canary()
    await tv.tenant("acme").kv.put("k", {"v": secret})
    hashed = (await tv.request(Operation.UPDATE, "sys/audit-hash/file", {"input": secret})).data
    assert hashed is not None
    assert hashed["hash"].startswith("hmac-sha256:")
    assert hashed["hash"] in log.read_text()


async def test_sinks_have_their_own_salts(tv: tenantvault.TenantVault, tmp_path: Path) -> None:
    await _enable_file(tv, tmp_path / "a.log", "a")
    await _enable_file(tv, tmp_path / "b.log", "b")
    one = await tv.request(Operation.UPDATE, "sys/audit-hash/a", {"input": "x"})
    two = await tv.request(Operation.UPDATE, "sys/audit-hash/b", {"input": "x"})
    assert (one.data or {})["hash"] != (two.data or {})["hash"]


async def test_devices_are_listed_and_disabled(tv: tenantvault.TenantVault, tmp_path: Path) -> None:
    await _enable_file(tv, tmp_path / "a.log")
    listing = await tv.request(Operation.READ, "sys/audit")
    assert (listing.data or {})["file/"]["type"] == "file"
    await tv.request(Operation.DELETE, "sys/audit/file")
    assert (await tv.request(Operation.READ, "sys/audit")).data == {}


async def test_a_tenant_cannot_manage_audit_devices(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    await tv.create_tenant("acme")
    admin = await tv.tenant("acme").tokens.create(policies=["root"])
    with pytest.raises(PermissionDeniedError):
        await tv.with_token(admin.token).request(
            Operation.UPDATE,
            "sys/audit/mine",
            {"type": "file", "options": {"file_path": str(tmp_path / "x.log")}},
            namespace="acme",
        )


async def test_with_the_only_sink_failing_nothing_happens_and_service_resumes(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    """F-9 / acceptance 3: a full disk (the kernel's ENOSPC from /dev/full) fails every request
    closed, changes nothing, and service resumes by itself once the sink can write again."""
    link = tmp_path / "audit.log"
    real = tmp_path / "real.log"
    link.symlink_to(real)
    await _enable_file(tv, link)
    await tv.create_tenant("acme")
    await tv.tenant("acme").kv.put("k", {"v": "before"})
    broker = core_of(tv).audit_broker
    assert broker is not None

    sink = broker.sinks["file"]
    link.unlink()
    link.symlink_to("/dev/full")
    sink.reopen()  # as on SIGHUP: the next batch opens the path again, now a full "disk"
    for attempt in range(3):
        with pytest.raises(AuditError):
            await tv.tenant("acme").kv.put("k", {"v": f"during-{attempt}"})
        with pytest.raises(AuditError):
            await tv.tenant("acme").kv.get("k")
    assert broker.health()["healthy"] is False
    record = await (await core_of(tv).mount_of("acme", "secret/")).storage.read("meta/k")
    assert record is not None
    assert orjson.loads(record.value)["current_version"] == 1

    link.unlink()
    link.symlink_to(real)
    # The probe finds the sink writable again within its backoff: no restart, no request.
    for _ in range(100):
        if broker.health()["healthy"]:
            break
        await asyncio.sleep(0.05)
    assert (await tv.tenant("acme").kv.get("k")).data == {"v": "before"}
    await tv.tenant("acme").kv.put("k", {"v": "after"})
    assert broker.health()["healthy"] is True
    await tv.aclose()
    assert verify_lines(real.read_bytes().splitlines(keepends=True)).ok


async def test_with_two_sinks_one_failing_requests_succeed_and_are_all_recorded(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    good = tmp_path / "good.log"
    await _enable_file(tv, good, "good")
    broker = core_of(tv).audit_broker
    assert broker is not None
    # From the settings (the API may not name /dev/full: it is outside the audit directory).
    await broker.enable("bad", "file", {"file_path": "/dev/full"}, persist=False)
    await tv.create_tenant("acme")
    for n in range(5):
        await tv.tenant("acme").kv.put("k", {"v": n})
    assert broker.health()["failing_sinks"] == ["bad"]
    await tv.aclose()
    entries = [e for e in _entries(good) if e["type"] == "request"]
    assert len(entries) == 1 + 5  # creating the tenant, five puts
    ids = {e["request"]["id"] for e in _entries(good) if e["type"] == "response"}
    assert ids == {e["request"]["id"] for e in entries}


async def test_a_blocking_sink_times_out_instead_of_hanging(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening a FIFO for writing blocks until a reader comes: a hung sink
    broker = core_of(tv).audit_broker
    assert broker is not None
    broker._timeout = 0.5
    await tv.request(
        Operation.UPDATE, "sys/audit/hung", {"type": "file", "options": {"file_path": str(fifo)}}
    )
    with pytest.raises(AuditError):
        await tv.create_tenant("acme")
    assert await core_of(tv).backend.has_tenant("acme") is False
    # Unblock the writer thread so the test can end: open the FIFO for reading once.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.close(reader)


async def test_rotation_on_reopen_leaves_two_logs_that_each_verify(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    """F-10: logrotate renames the file and sends SIGHUP (here: `reopen()`); nothing is lost,
    the rotated file ends with its checkpoint and the new one continues the chain."""
    log = tmp_path / "audit.log"
    await _enable_file(tv, log)
    await tv.create_tenant("acme")
    for n in range(5):
        await tv.tenant("acme").kv.put("k", {"v": n})
    rotated = tmp_path / "audit.log.1"
    log.rename(rotated)
    broker = core_of(tv).audit_broker
    assert broker is not None
    broker.reopen()
    for n in range(5):
        await tv.tenant("acme").kv.put("k", {"v": n})
    await tv.aclose()
    old, new = _entries(rotated), _entries(log)
    assert old[-1]["reason"] == "reopen"
    assert new[0]["prev_hash"] == old[-1]["hash"]
    assert verify_lines(rotated.read_bytes().splitlines(keepends=True)).ok
    assert verify_lines(log.read_bytes().splitlines(keepends=True)).ok
    requests = [e for e in old + new if e["type"] == "request"]
    assert len(requests) == 1 + 10  # the tenant, then ten writes
