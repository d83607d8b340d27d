"""`tenantvault kv …`: every subcommand, in table, JSON and -field output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import CLI, assert_clean, canary

pytestmark = pytest.mark.usefixtures("tenant")


def test_put_then_get_shows_metadata_and_data_tables(cli: CLI) -> None:
    put = cli("kv", "put", "secret/app", "user=alice", "pass=s3cret")
    assert put.code == 0, put.err
    assert "secret/data/app" in put.out
    assert "= Metadata =" in put.out
    assert "s3cret" not in put.out  # a write never echoes the data
    lines = put.out.splitlines()
    assert lines[lines.index("Key                Value") + 1].startswith("---")
    assert any(line.split() == ["version", "1"] for line in lines)

    got = cli("kv", "get", "secret/app")
    assert got.code == 0, got.err
    assert "== Secret Path ==" in got.out or "= Secret Path =" in got.out
    assert "=== Data ===" in got.out
    data_rows = got.out.split("Data ===", 1)[1].splitlines()
    assert ["pass", "s3cret"] in [row.split() for row in data_rows]
    assert ["user", "alice"] in [row.split() for row in data_rows]
    assert ["deletion_time", "n/a"] in [row.split() for row in got.out.splitlines()]


def test_get_json_is_the_vault_envelope(cli: CLI) -> None:
    cli("kv", "put", "secret/app", "k=v")
    got = cli("kv", "get", "-format=json", "secret/app")
    document = json.loads(got.out)
    assert document["data"]["data"] == {"k": "v"}
    assert document["data"]["metadata"]["version"] == 1
    also = cli("kv", "get", "--format", "json", "secret/app")
    assert json.loads(also.out)["data"]["data"] == {"k": "v"}


def test_field_prints_one_value_raw(cli: CLI) -> None:
    cli("kv", "put", "secret/app", "password=p@ss word")
    got = cli("kv", "get", "-field=password", "secret/app")
    assert got.code == 0
    assert got.out == "p@ss word"
    as_json = cli("kv", "get", "-field=password", "-format=json", "secret/app")
    assert json.loads(as_json.out) == "p@ss word"


def test_field_missing_is_an_error(cli: CLI) -> None:
    cli("kv", "put", "secret/app", "a=b")
    got = cli("kv", "get", "-field=nope", "secret/app")
    assert got.code == 1
    assert got.err.strip() == 'Field "nope" not present in secret'


def test_mount_flag_and_mount_prefix_name_the_same_secret(cli: CLI) -> None:
    cli("kv", "put", "-mount=secret", "team/db", "url=x")
    assert cli("kv", "get", "-field=url", "secret/team/db").out == "x"
    assert cli("kv", "get", "--mount", "secret", "-field", "url", "team/db").out == "x"


def test_versions_and_get_version(cli: CLI) -> None:
    cli("kv", "put", "secret/app", "n=1")
    cli("kv", "put", "secret/app", "n=2")
    assert cli("kv", "get", "-field=n", "secret/app").out == "2"
    assert cli("kv", "get", "-version=1", "-field=n", "secret/app").out == "1"


def test_get_missing_says_no_value_found(cli: CLI) -> None:
    got = cli("kv", "get", "secret/nothing")
    assert got.code == 2
    assert got.err.strip() == "No value found at secret/data/nothing"
    assert got.out == ""


def test_put_values_from_file_and_stdin(cli: CLI, tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text("-----BEGIN-----\nabc\n")
    put = cli("kv", "put", "secret/files", f"pem=@{key_file}", "note=-", stdin="from stdin")
    assert put.code == 0, put.err
    document = json.loads(cli("kv", "get", "-format=json", "secret/files").out)
    assert document["data"]["data"] == {"pem": "-----BEGIN-----\nabc\n", "note": "from stdin"}


def test_put_json_object_from_stdin(cli: CLI) -> None:
    put = cli("kv", "put", "secret/json", "-", stdin='{"nested": {"a": 1}, "list": [1, 2]}')
    assert put.code == 0, put.err
    data = json.loads(cli("kv", "get", "-format=json", "secret/json").out)["data"]["data"]
    assert data == {"nested": {"a": 1}, "list": [1, 2]}
    assert cli("kv", "get", "-field=nested", "secret/json").out == '{"a": 1}'


def test_put_without_data_is_a_usage_error(cli: CLI) -> None:
    got = cli("kv", "put", "secret/app")
    assert got.code == 2
    assert "Must supply data" in got.err


def test_put_with_invalid_json_on_stdin_does_not_quote_it(cli: CLI) -> None:
    secret = canary()
    got = cli("kv", "put", "secret/app", "-", stdin=f'{{"k": "{secret}"')
    assert got.code == 2
    assert "not valid JSON" in got.err
    assert_clean(got, secret)


def test_cas_mismatch_is_vaults_error(cli: CLI) -> None:
    assert cli("kv", "put", "-cas=0", "secret/cas", "a=1").code == 0
    again = cli("kv", "put", "-cas=0", "secret/cas", "a=2")
    assert again.code == 1
    assert again.err.startswith("Error writing data to secret/data/cas: Error making API request.")
    assert "Code: 400. Errors:\n\n* check-and-set parameter did not match" in again.err
    assert cli("kv", "put", "-cas=1", "secret/cas", "a=2").code == 0


def test_patch_merges_keys(cli: CLI) -> None:
    cli("kv", "put", "secret/app", "a=1", "b=2")
    patched = cli("kv", "patch", "secret/app", "b=3", "c=4")
    assert patched.code == 0, patched.err
    assert "version" in patched.out
    data = json.loads(cli("kv", "get", "-format=json", "secret/app").out)["data"]["data"]
    assert data == {"a": "1", "b": "3", "c": "4"}
    removed = cli("kv", "patch", "secret/app", "-", stdin='{"a": null}')
    assert removed.code == 0, removed.err
    data = json.loads(cli("kv", "get", "-format=json", "secret/app").out)["data"]["data"]
    assert data == {"b": "3", "c": "4"}


def test_patch_with_cas_and_of_missing_secret(cli: CLI) -> None:
    cli("kv", "put", "secret/app", "a=1")
    stale = cli("kv", "patch", "-cas=5", "secret/app", "a=2")
    assert stale.code == 1
    assert "check-and-set" in stale.err
    assert cli("kv", "patch", "-cas=1", "secret/app", "a=2").code == 0
    missing = cli("kv", "patch", "secret/none", "a=1")
    assert missing.code == 2
    assert "No value found at secret/data/none" in missing.err


def test_list_shows_keys_and_folders(cli: CLI) -> None:
    cli("kv", "put", "secret/app/one", "a=1")
    cli("kv", "put", "secret/app/two/deep", "a=1")
    cli("kv", "put", "secret/top", "a=1")
    root = cli("kv", "list", "secret/")
    assert root.code == 0, root.err
    assert root.out.splitlines() == ["Keys", "----", "app/", "top"]
    sub = cli("kv", "list", "-format=json", "secret/app")
    assert json.loads(sub.out) == ["one", "two/"]
    assert json.loads(cli("kv", "list", "-mount=secret", "-format=json").out) == ["app/", "top"]


def test_list_of_nothing_says_no_value_found(cli: CLI) -> None:
    got = cli("kv", "list", "secret/empty")
    assert got.code == 2
    assert "No value found at secret/metadata/empty/" in got.err


def test_delete_undelete_destroy(cli: CLI) -> None:
    cli("kv", "put", "secret/app", "v=1")
    cli("kv", "put", "secret/app", "v=2")
    deleted = cli("kv", "delete", "secret/app")
    assert deleted.code == 0
    assert deleted.out.strip() == "Success! Data deleted (if it existed) at: secret/data/app"

    gone = cli("kv", "get", "secret/app")
    assert gone.code == 2
    assert "deleted or destroyed" in gone.err
    assert "deletion_time" in gone.out  # the metadata of the deleted version is still shown
    gone_json = cli("kv", "get", "-format=json", "secret/app")
    assert json.loads(gone_json.out)["data"]["data"] is None

    undeleted = cli("kv", "undelete", "-versions=2", "secret/app")
    assert undeleted.code == 0, undeleted.err
    assert undeleted.out.strip() == "Success! Data written to: secret/undelete/app"
    assert cli("kv", "get", "-field=v", "secret/app").out == "2"

    assert cli("kv", "delete", "-versions=1", "secret/app").code == 0
    assert cli("kv", "get", "-version=1", "secret/app").code == 2
    assert cli("kv", "undelete", "--versions", "1", "secret/app").code == 0
    assert cli("kv", "get", "-version=1", "-field=v", "secret/app").out == "1"

    destroyed = cli("kv", "destroy", "-versions=1,2", "secret/app")
    assert destroyed.code == 0, destroyed.err
    assert destroyed.out.strip() == "Success! Data written to: secret/destroy/app"
    versions = json.loads(cli("kv", "metadata", "get", "-format=json", "secret/app").out)
    assert versions["data"]["versions"]["1"]["destroyed"] is True
    assert versions["data"]["versions"]["2"]["destroyed"] is True


def test_undelete_and_destroy_need_versions(cli: CLI) -> None:
    for command in ("undelete", "destroy"):
        got = cli("kv", command, "secret/app")
        assert got.code == 2
        assert "-versions" in got.err


def test_bad_versions_are_a_usage_error(cli: CLI) -> None:
    got = cli("kv", "destroy", "-versions=1,x", "secret/app")
    assert got.code == 2
    assert "comma-separated" in got.err


def test_metadata_put_get_patch_delete(cli: CLI) -> None:
    cli("kv", "put", "secret/app", "a=1")
    put = cli(
        "kv",
        "metadata",
        "put",
        "-max-versions=3",
        "-cas-required",
        "-delete-version-after=1h",
        "-custom-metadata=owner=ops",
        "-custom-metadata",
        "tier=gold",
        "secret/app",
    )
    assert put.code == 0, put.err
    assert put.out.strip() == "Success! Data written to: secret/metadata/app"

    shown = cli("kv", "metadata", "get", "secret/app")
    assert shown.code == 0, shown.err
    assert "== Metadata Path ==" in shown.out
    assert "secret/metadata/app" in shown.out
    assert "= Version 1 =" in shown.out
    rows = [line.split(None, 1) for line in shown.out.splitlines()]
    assert ["max_versions", "3"] in rows
    assert ["cas_required", "true"] in rows
    assert ["delete_version_after", "1h0m0s"] in rows
    assert ["custom_metadata", "map[owner:ops tier:gold]"] in rows

    # cas is now required for writes to this key
    assert cli("kv", "put", "secret/app", "a=2").code == 1

    patched = cli(
        "kv",
        "metadata",
        "patch",
        "-cas-required=false",
        "-remove-custom-metadata=tier",
        "-custom-metadata=owner=dev",
        "secret/app",
    )
    assert patched.code == 0, patched.err
    data = json.loads(cli("kv", "metadata", "get", "-format=json", "secret/app").out)["data"]
    assert data["cas_required"] is False
    assert data["max_versions"] == 3
    assert data["custom_metadata"] == {"owner": "dev"}
    assert cli("kv", "metadata", "get", "-field=max_versions", "secret/app").out == "3"
    assert cli("kv", "put", "secret/app", "a=2").code == 0

    deleted = cli("kv", "metadata", "delete", "secret/app")
    assert deleted.code == 0
    assert deleted.out.strip() == "Success! Data deleted (if it existed) at: secret/metadata/app"
    assert cli("kv", "metadata", "get", "secret/app").code == 2
    assert cli("kv", "get", "secret/app").code == 2


def test_bool_flag_rejects_non_boolean(cli: CLI) -> None:
    got = cli("kv", "metadata", "put", "-cas-required=maybe", "secret/app")
    assert got.code == 2
    assert "invalid boolean value for -cas-required" in got.err


@pytest.mark.parametrize(
    "path",
    ["secret/../sys/policies/acl/x", "secret/a/./b", "secret/a//b", "secret", "/secret/"],
)
def test_paths_that_could_escape_are_refused_before_sending(cli: CLI, path: str) -> None:
    got = cli("kv", "get", path)
    assert got.code == 2
    assert "Error making API request" not in got.err
