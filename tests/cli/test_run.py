"""`tenantvault run` refuses to start (exit 2, no child) on every mistake it can see before the
child exists, with a message that names what is wrong and quotes no value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import CLI, assert_clean, canary

MARKER_FILE = "child-ran"


def _child(tmp_path: Path) -> list[str]:
    """A command that leaves a file behind if it ever runs."""
    return ["--", "touch", str(tmp_path / MARKER_FILE)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "no command"),
        (("--on-rotate", "reboot"), "--on-rotate must be"),
        (("--on-rotate", "signal:NOPE"), "unknown signal SIGNOPE"),
        (("--poll-interval", "0"), "at least 1s"),
        (("--poll-interval", "soon"), "not a duration"),
        (("--server", "github"), "--server needs --mcp-config"),
        (("--jwt-file", "/dev/null"), "--jwt-file needs --role"),
        (("--role-id-file", "/dev/null"), "AppRole needs --role-id-file and one of"),
    ],
)
def test_usage_mistakes_exit_2(
    cli: CLI, tmp_path: Path, argv: tuple[str, ...], message: str
) -> None:
    command = _child(tmp_path) if argv else []
    result = cli("run", *argv, *command)
    assert result.code == 2
    assert message in result.err
    assert result.out == ""
    assert not (tmp_path / MARKER_FILE).exists()


def test_a_malformed_reference_names_the_variable_and_quotes_nothing(
    cli: CLI, tmp_path: Path
) -> None:
    secret = canary("typo-")
    result = cli("run", *_child(tmp_path), env={"API_KEY": f"tv://secret/{secret} x#key"})
    assert result.code == 2
    assert "API_KEY: invalid reference" in result.err
    assert "the command was not started" in result.err
    assert_clean(result, secret)
    assert not (tmp_path / MARKER_FILE).exists()


def test_an_env_file_line_that_is_not_name_value_is_refused_unquoted(
    cli: CLI, tmp_path: Path
) -> None:
    secret = canary("plain-")
    env_file = tmp_path / "app.env"
    env_file.write_text(f"# comment\nGOOD=1\n{secret}\n")
    result = cli("run", "--env-file", str(env_file), *_child(tmp_path))
    assert result.code == 2
    assert "line 3: expected NAME=VALUE" in result.err
    assert_clean(result, secret)


def test_a_bad_token_is_refused_before_anything_runs(cli: CLI, tmp_path: Path) -> None:
    bad = canary("token-")
    result = cli("run", *_child(tmp_path), token=bad, env={"K": "tv://secret/app#k"})
    assert result.code == 2
    assert "error looking up the token" in result.err
    assert_clean(result, bad)
    assert not (tmp_path / MARKER_FILE).exists()


def test_no_token_at_all_says_how_to_give_one(cli: CLI, tmp_path: Path) -> None:
    result = cli("run", *_child(tmp_path), token=None)
    assert result.code == 2
    assert "no token: set VAULT_TOKEN" in result.err


def test_two_login_methods_are_refused(cli: CLI, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("x")
    result = cli(
        "run", "--token-file", str(token_file), "--jwt-file", str(token_file), *_child(tmp_path)
    )
    assert result.code == 2
    assert "choose one login" in result.err


def test_watching_needs_readable_metadata(cli: CLI, tmp_path: Path, tenant: str) -> None:
    """With --on-rotate the metadata must be readable at start, or rotations would go unseen."""
    assert cli("kv", "put", "secret/app", "k=v").code == 0
    assert (
        cli(
            "policy",
            "write",
            "data-only",
            "-",
            stdin='path "secret/data/*" { capabilities = ["read"] }',
        ).code
        == 0
    )
    created = cli("token", "create", "-policy=data-only", "-field=token")
    assert created.code == 0, created.err
    token = created.out.strip()
    env = {"K": "tv://secret/app#k"}
    watched = cli("run", "--on-rotate", "restart", *_child(tmp_path), token=token, env=env)
    assert watched.code == 2
    assert "cannot watch tv://secret/app#k: permission denied" in watched.err
    assert not (tmp_path / MARKER_FILE).exists()
    assert_clean(watched, token)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "is not valid JSON"),
        ({"mcpServers": {"github": {"url": "https://x.example/mcp"}}}, "only stdio servers"),
        ({"mcpServers": {"github": {"command": "x", "env": {"K": 1}}}}, "env must be"),
        ({"mcpServers": {}}, "has no server 'github'"),
        ({"other": {}}, "no mcpServers"),
    ],
)
def test_unusable_mcp_configs_are_refused(
    cli: CLI, tmp_path: Path, document: object, message: str
) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(document if isinstance(document, str) else json.dumps(document))
    result = cli("run", "--mcp-config", str(config), "--server", "github")
    assert result.code == 2
    assert message in result.err


def test_mcp_config_and_a_command_are_exclusive(cli: CLI, tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"github": {"command": "true"}}}))
    result = cli("run", "--mcp-config", str(config), "--server", "github", *_child(tmp_path))
    assert result.code == 2
    assert "not both" in result.err
