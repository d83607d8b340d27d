"""`tenantvault token create/lookup/revoke`: a token is shown once, at creation, then masked."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import CLI, assert_clean, canary

pytestmark = pytest.mark.usefixtures("tenant")

READER = 'path "secret/data/*" { capabilities = ["read"] }'


@pytest.fixture
def reader(cli: CLI) -> str:
    assert cli("policy", "write", "reader", "-", stdin=READER).code == 0
    return "reader"


def _rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines()[2:]:
        key, _, value = line.partition(" ")
        rows[key] = value.strip()
    return rows


def test_create_prints_the_new_token_in_the_table(cli: CLI, reader: str) -> None:
    created = cli(
        "token",
        "create",
        f"-policy={reader}",
        "-ttl=1h",
        "-explicit-max-ttl=2h",
        "-num-uses=5",
        "-renewable=false",
        "-metadata=team=blue",
        "-display-name=ci",
    )
    assert created.code == 0, created.err
    rows = _rows(created.out)
    assert rows["token"]
    assert rows["token_accessor"]
    assert rows["token_renewable"] == "false"
    assert rows["token_policies"] == '["default" "reader"]'
    assert rows["token_meta_team"] == "blue"
    assert rows["token_duration"] in ("1h", "59m59s")

    cli.token = rows["token"]
    looked = json.loads(cli("token", "lookup", "-format=json").out)["data"]
    assert looked["num_uses"] in (4, 5)  # the lookup itself may count as a use
    assert looked["renewable"] is False
    assert looked["explicit_max_ttl"] == 7200
    assert looked["meta"] == {"team": "blue"}
    assert "ci" in looked["display_name"]


def test_create_json_and_field_token(cli: CLI, reader: str) -> None:
    document = json.loads(cli("token", "create", "--policy", reader, "-format=json").out)
    token = document["auth"]["client_token"]
    assert token
    assert document["auth"]["policies"] == ["default", "reader"]
    only = cli("token", "create", "-policy", reader, "-field=token")
    assert only.code == 0
    assert "\n" not in only.out
    assert only.out.startswith(token[:3])
    assert cli("token", "create", "-policy=reader,default", "-field=token_policies").out == (
        '["default", "reader"]'
    )


def test_token_of_a_policy_the_parent_lacks_is_refused(cli: CLI, reader: str) -> None:
    cli.token = cli("token", "create", f"-policy={reader}", "-field=token").out
    got = cli("token", "create", "-policy=admin")
    assert got.code == 1
    assert "Code: 403" in got.err
    assert_clean(got, cli.token)


def test_orphan_token(cli: CLI, reader: str) -> None:
    document = json.loads(cli("token", "create", "-orphan", "-format=json").out)
    assert document["auth"]["orphan"] is True


def test_lookup_self_masks_the_token(cli: CLI, reader: str) -> None:
    token = cli("token", "create", f"-policy={reader}", "-field=token").out
    cli.token = token
    table = cli("token", "lookup")
    assert table.code == 0, table.err
    assert token not in table.out
    assert _rows(table.out)["id"] == "<redacted>"
    assert _rows(table.out)["policies"] == "[default reader]"
    as_json = cli("token", "lookup", "-format=json")
    assert token not in as_json.out
    assert json.loads(as_json.out)["data"]["id"] == "<redacted>"
    assert cli("token", "lookup", "-field=id").out == token
    assert cli("token", "lookup", "-field=ttl").out.isdigit()


def test_lookup_token_from_stdin_and_by_accessor(cli: CLI, reader: str) -> None:
    auth = json.loads(cli("token", "create", f"-policy={reader}", "-format=json").out)["auth"]
    piped = cli("token", "lookup", "-", stdin=auth["client_token"] + "\n")
    assert piped.code == 0, piped.err
    assert auth["client_token"] not in piped.out
    assert _rows(piped.out)["accessor"] == auth["accessor"]
    by_accessor = cli("token", "lookup", "-accessor", auth["accessor"], "-format=json")
    assert by_accessor.code == 0, by_accessor.err
    assert json.loads(by_accessor.out)["data"]["policies"] == ["default", "reader"]


def test_a_token_as_an_argument_is_refused_and_not_echoed(cli: CLI) -> None:
    secret = canary("token-")
    for command in ("lookup", "revoke"):
        got = cli("token", command, secret)
        assert got.code == 2
        assert "not accepted as command-line arguments" in got.err
        assert_clean(got, secret)
        assert secret not in got.out


def test_revoke_by_accessor_stdin_and_self(cli: CLI, reader: str) -> None:
    root = cli.token
    tokens = [
        json.loads(cli("token", "create", f"-policy={reader}", "-format=json").out)["auth"]
        for _ in range(3)
    ]

    by_accessor = cli("token", "revoke", "-accessor", tokens[0]["accessor"])
    assert by_accessor.code == 0, by_accessor.err
    assert by_accessor.out.strip() == "Success! Revoked token (if it existed)"
    assert cli("token", "lookup", token=tokens[0]["client_token"]).code == 1

    piped = cli("token", "revoke", "-", stdin=tokens[1]["client_token"])
    assert piped.code == 0, piped.err
    assert cli("token", "lookup", token=tokens[1]["client_token"]).code == 1

    cli.token = tokens[2]["client_token"]
    assert cli("token", "revoke", "-self").code == 0
    after = cli("token", "lookup")
    assert after.code == 1
    assert "Code: 403" in after.err
    assert_clean(after, tokens[2]["client_token"])
    cli.token = root


def test_revoke_needs_a_target(cli: CLI) -> None:
    got = cli("token", "revoke")
    assert got.code == 2
    assert "-self" in got.err


def test_token_from_the_vault_token_file(cli: CLI, reader: str) -> None:
    token = cli("token", "create", f"-policy={reader}", "-field=token").out
    (cli.home / ".vault-token").write_text(token + "\n")
    got = cli("token", "lookup", "-field=policies", token=None)
    assert got.code == 0, got.err
    assert json.loads(got.out) == ["default", "reader"]
