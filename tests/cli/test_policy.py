"""`tenantvault policy write/read/list/delete` in the selected tenant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import CLI

pytestmark = pytest.mark.usefixtures("tenant")

POLICY = 'path "secret/data/app/*" {\n  capabilities = ["read", "list"]\n}\n'


def test_write_from_file_read_list_delete(cli: CLI, tmp_path: Path) -> None:
    source = tmp_path / "reader.hcl"
    source.write_text(POLICY)
    written = cli("policy", "write", "reader", str(source))
    assert written.code == 0, written.err
    assert written.out.strip() == "Success! Uploaded policy: reader"

    read = cli("policy", "read", "reader")
    assert read.code == 0
    assert read.out == POLICY.strip() + "\n"
    assert json.loads(cli("policy", "read", "-format=json", "reader").out)["data"]["policy"] == (
        POLICY
    )
    assert cli("policy", "read", "-field=policy", "reader").out == POLICY

    listed = cli("policy", "list")
    assert "reader" in listed.out.splitlines()
    assert "reader" in json.loads(cli("policy", "list", "-format=json").out)

    deleted = cli("policy", "delete", "reader")
    assert deleted.code == 0
    assert deleted.out.strip() == "Success! Deleted policy: reader"
    assert "reader" not in cli("policy", "list").out.splitlines()


def test_write_from_stdin(cli: CLI) -> None:
    assert cli("policy", "write", "piped", "-", stdin=POLICY).code == 0
    assert cli("policy", "read", "piped").out.strip() == POLICY.strip()


def test_read_missing_policy(cli: CLI) -> None:
    got = cli("policy", "read", "absent")
    assert got.code == 2
    assert got.err.strip() == "No policy named: absent"


def test_write_from_missing_file_and_empty_policy(cli: CLI, tmp_path: Path) -> None:
    missing = cli("policy", "write", "p", str(tmp_path / "nope.hcl"))
    assert missing.code == 2
    assert "cannot read the policy" in missing.err
    assert cli("policy", "write", "p", "-", stdin="  \n").code == 2


def test_invalid_policy_is_the_servers_400(cli: CLI) -> None:
    got = cli("policy", "write", "broken", "-", stdin="path {")
    assert got.code == 1
    assert got.err.startswith("Error uploading policy: Error making API request.")
    assert "Code: 400" in got.err
