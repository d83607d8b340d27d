"""`-wrap-ttl` on any command and `tenantvault unwrap` (issue 11): the wrapped answer shows the
wrapping token instead of the response, and unwrap opens it once."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import CLI, assert_clean, canary

pytestmark = pytest.mark.usefixtures("tenant")


def _rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines()[2:]:
        key, _, value = line.partition(" ")
        rows[key] = value.strip()
    return rows


def test_kv_get_wrapped_then_unwrapped_once_from_stdin(cli: CLI) -> None:
    secret = canary("cli-wrap-")
    assert cli("kv", "put", "secret/app", f"password={secret}").code == 0
    wrapped = cli("kv", "get", "-wrap-ttl=5m", "secret/app")
    assert wrapped.code == 0, wrapped.err
    assert secret not in wrapped.out
    rows = _rows(wrapped.out)
    assert rows["wrapping_token_ttl"] == "5m"
    assert rows["wrapping_token_creation_path"] == "secret/data/app"
    token = rows["wrapping_token"]

    unwrapped = cli("unwrap", "-format=json", "-", stdin=token + "\n")
    assert unwrapped.code == 0, unwrapped.err
    assert json.loads(unwrapped.out)["data"]["data"] == {"password": secret}
    again = cli("unwrap", "-", stdin=token)
    assert again.code == 1
    assert "wrapping token is not valid or does not exist" in again.err
    assert_clean(again, token, secret)


def test_a_wrapped_token_is_unwrapped_by_its_holder(cli: CLI) -> None:
    created = cli("token", "create", "-wrap-ttl=2m", "-field=wrapping_token")
    assert created.code == 0, created.err
    wrapping = created.out.strip()
    # The tool server holds only the wrapping token: VAULT_TOKEN, no argument, no namespace.
    unwrapped = cli("unwrap", "-field=token", token=wrapping, namespace=None)
    assert unwrapped.code == 0, unwrapped.err
    assert unwrapped.out.strip().startswith("tvs.")


def test_the_wrap_ttl_comes_from_the_environment_too(cli: CLI) -> None:
    assert cli("kv", "put", "secret/env", "a=b").code == 0
    wrapped = cli("kv", "get", "-format=json", "secret/env", env={"VAULT_WRAP_TTL": "90"})
    assert wrapped.code == 0, wrapped.err
    assert json.loads(wrapped.out)["wrap_info"]["ttl"] == 90


def test_unwrap_refuses_a_token_on_the_command_line(cli: CLI) -> None:
    token = canary("argv-token-")
    refused = cli("unwrap", token)
    assert refused.code == 2
    assert_clean(refused, token)


def test_a_bad_wrap_ttl_is_the_servers_400(cli: CLI) -> None:
    refused = cli("kv", "get", "-wrap-ttl=-5", "secret/app")
    assert refused.code == 1
    assert "requested wrap ttl cannot be negative" in refused.err
