"""`tenantvault status` and `tenantvault tenant …`."""

from __future__ import annotations

import json
import uuid

from tests.cli.conftest import CLI, free_port


def test_status_table_needs_no_token(cli: CLI) -> None:
    got = cli("status", token=None)
    assert got.code == 0, got.err
    rows = [line.split(None, 1) for line in got.out.splitlines()]
    assert rows[0] == ["Key", "Value"]
    assert ["Sealed", "false"] in rows
    assert ["Initialized", "true"] in rows


def test_status_json_and_field(cli: CLI) -> None:
    document = json.loads(cli("status", "-format=json").out)
    assert document["sealed"] is False
    assert document["initialized"] is True
    assert cli("status", "-field=sealed").out == "false"


def test_status_of_a_server_that_is_not_there_is_one_clear_line(cli: CLI) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    got = cli("status", address=address)
    assert got.code == 1
    assert got.err.count("\n") == 1
    assert address in got.err
    assert "connection refused" in got.err
    assert got.out == ""


def test_address_flag_wins_over_vault_addr(cli: CLI) -> None:
    got = cli("status", f"-address={cli.server.address}", address="http://127.0.0.1:1")
    assert got.code == 0, got.err


def test_invalid_address_is_a_usage_error(cli: CLI) -> None:
    got = cli("status", address="ftp://example.invalid")
    assert got.code == 2
    assert "invalid address" in got.err


def test_tenant_lifecycle(cli: CLI) -> None:
    name = f"t{uuid.uuid4().hex[:16]}"
    created = cli("tenant", "create", name, "-custom-metadata=owner=ops")
    assert created.code == 0, created.err
    rows = [line.split(None, 1) for line in created.out.splitlines()]
    assert ["path", f"{name}/"] in rows
    assert ["custom_metadata", "map[owner:ops]"] in rows

    listed = cli("tenant", "list")
    assert listed.code == 0
    assert listed.out.splitlines()[:2] == ["Keys", "----"]
    assert f"{name}/" in listed.out.splitlines()
    assert f"{name}/" in json.loads(cli("tenant", "list", "-format=json").out)

    read = cli("tenant", "read", name, "-format=json")
    assert json.loads(read.out)["data"]["path"] == f"{name}/"
    assert cli("tenant", "lookup", name, "-field=path").out == f"{name}/"

    deleted = cli("tenant", "delete", name)
    assert deleted.code == 0, deleted.err
    assert deleted.out.strip() == f"Success! Tenant deleted at: {name}/"
    missing = cli("tenant", "read", name)
    assert missing.code == 2
    assert missing.err.strip() == "Tenant not found"


def test_invalid_tenant_name_is_the_servers_400(cli: CLI) -> None:
    got = cli("tenant", "create", "Not_Valid")
    assert got.code == 1
    assert "Code: 400" in got.err
    assert "invalid tenant id" in got.err


def test_tenant_name_cannot_be_a_path(cli: CLI) -> None:
    assert cli("tenant", "read", "..").code == 2
    got = cli("tenant", "create", "a/b")
    # The '/' is sent encoded as one segment, which the server refuses as a tenant id.
    assert got.code == 1
    assert "Code: 4" in got.err
