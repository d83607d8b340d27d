"""Error output (adversarial.md L-4): Vault's shape, exit codes, and never a token or a secret."""

from __future__ import annotations

import pytest

from tenantvault.cli import _commands_sys
from tests.cli.conftest import CLI, assert_clean, canary

pytestmark = pytest.mark.usefixtures("tenant")

NONE = 'path "secret/data/other" { capabilities = ["read"] }'


@pytest.fixture
def weak_token(cli: CLI) -> str:
    assert cli("policy", "write", "none", "-", stdin=NONE).code == 0
    return cli("token", "create", "-policy=none", "-field=token").out


def test_denied_write_shows_vaults_error_without_the_secret(cli: CLI, weak_token: str) -> None:
    secret = canary("secret-")
    got = cli("kv", "put", "secret/app", f"password={secret}", token=weak_token)
    assert got.code == 1
    assert got.err.startswith("Error writing data to secret/data/app: Error making API request.")
    assert f"Namespace: {cli.namespace}" in got.err
    assert f"URL: POST {cli.server.address}/v1/secret/data/app" in got.err
    assert got.err.rstrip().endswith("Code: 403. Errors:\n\n* permission denied")
    assert_clean(got, secret, weak_token, cli.server.root_token)


def test_denied_json_write_from_stdin_hides_every_value(cli: CLI, weak_token: str) -> None:
    secret = canary("secret-")
    got = cli(
        "kv", "put", "secret/app", "-", stdin=f'{{"a": {{"b": "{secret}"}}}}', token=weak_token
    )
    assert got.code == 1
    assert_clean(got, secret, weak_token)


def test_denied_patch_and_read(cli: CLI, weak_token: str) -> None:
    secret = canary("secret-")
    cli("kv", "put", "secret/app", f"k={secret}")
    for argv in (
        ("kv", "patch", "secret/app", f"k={secret}"),
        ("kv", "get", "secret/app"),
        ("kv", "get", "-format=json", "secret/app"),
        ("kv", "get", "-field=k", "secret/app"),
        ("kv", "metadata", "get", "secret/app"),
    ):
        got = cli(*argv, token=weak_token)
        assert got.code == 1, argv
        assert "Code: 403" in got.err
        assert secret not in got.out
        assert_clean(got, secret, weak_token)


def test_an_invalid_token_is_never_echoed(cli: CLI) -> None:
    bogus = canary("token-")
    for argv in (("kv", "get", "secret/x"), ("token", "lookup"), ("policy", "list")):
        got = cli(*argv, token=bogus)
        assert got.code == 1
        assert "Code: 403" in got.err
        assert_clean(got, bogus)


def test_an_unknown_token_on_stdin_is_never_echoed(cli: CLI) -> None:
    bogus = canary("token-")
    got = cli("token", "lookup", "-", stdin=bogus)
    assert got.code == 1
    assert_clean(got, bogus)
    revoked = cli("token", "revoke", "-", stdin=bogus)
    assert_clean(revoked, bogus)


def test_a_token_with_a_newline_inside_is_refused_locally(cli: CLI) -> None:
    bogus = canary("token-")
    got = cli("status", token=f"{bogus}\r\nX-Injected: 1")
    assert got.code == 2
    assert "not allowed in an HTTP header" in got.err
    assert_clean(got, bogus)


def test_usage_errors_do_not_quote_data_arguments(cli: CLI) -> None:
    secret = canary("secret-")
    got = cli("kv", "put", "-unknown-flag", "secret/app", f"password={secret}")
    assert got.code == 2
    assert "unrecognized arguments" in got.err
    assert_clean(got, secret)
    bare = cli("kv", "put", "secret/app", secret)  # a value typed without its key
    assert bare.code == 2
    assert "KEY=VALUE" in bare.err
    assert_clean(bare, secret)


def test_missing_value_file_is_a_usage_error(cli: CLI, tmp_path: object) -> None:
    got = cli("kv", "put", "secret/app", "k=@/nonexistent/file")
    assert got.code == 2
    assert "cannot read the value of k" in got.err


def test_no_token_hint(cli: CLI) -> None:
    got = cli("kv", "get", "secret/app", token=None)
    assert got.code == 1
    assert "No token was sent: set VAULT_TOKEN" in got.err


def test_unsupported_format_and_missing_subcommand(cli: CLI) -> None:
    assert cli("status", "-format=yaml").code == 2
    assert cli("kv").code == 2
    assert cli().code == 2
    assert cli("frobnicate").code == 2


def test_help_exits_zero(cli: CLI) -> None:
    got = cli("--help")
    assert got.code == 0
    for command in ("serve", "status", "tenant", "token", "policy", "kv"):
        assert command in got.out
    assert cli("kv", "put", "-h").code == 0
    assert cli("-version").out.startswith("tenantvault ")


def test_an_unexpected_error_prints_no_traceback_and_no_secret(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = canary("secret-")

    def explode(ctx: object) -> int:
        raise RuntimeError(secret)

    monkeypatch.setattr(_commands_sys, "_status", explode)
    got = cli("status", env={"TENANTVAULT_CLI_TRACEBACK": ""})
    assert got.code == 1
    assert got.err.strip() == (
        "Error: unexpected internal error (RuntimeError); "
        "set TENANTVAULT_CLI_TRACEBACK=1 to see the traceback"
    )
    assert_clean(got, secret)


def test_invalid_client_timeout_is_a_usage_error(cli: CLI) -> None:
    got = cli("status", env={"VAULT_CLIENT_TIMEOUT": "soon"})
    assert got.code == 2
    assert "VAULT_CLIENT_TIMEOUT" in got.err
