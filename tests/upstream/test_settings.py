"""Gateway settings: config file < environment < flags, one way to log in, URL options."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tenantvault._config import ServerSettings, UpstreamOptions
from tenantvault._exceptions import ConfigurationError
from tenantvault.backends import open_backend
from tenantvault.cli import _serve
from tenantvault.upstream._open import parse_upstream_url


def _args(*argv: str) -> argparse.Namespace:
    root = argparse.ArgumentParser()
    _serve.add_parser(root.add_subparsers())
    return root.parse_args(["serve", *argv])


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tenantvault.toml"
    path.write_text(text)
    return path


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        'backend = "vault+https://vault.example:8200"\n'
        'upstream-root = "from-file"\n'
        'upstream-kv-mount = "kv-file"\n'
        'upstream-tenancy = "prefix"\n'
        "upstream-timeout = 4.5\n"
        'listen = "127.0.0.1:9001"\n',
    )
    env = {"TENANTVAULT_UPSTREAM_ROOT": "from-env", "TENANTVAULT_UPSTREAM_KV_MOUNT": "kv-env"}
    settings = _serve._settings(
        _args("--config", str(config), "--upstream-kv-mount", "kv-flag"), env
    )
    assert settings.backend == "vault+https://vault.example:8200"
    assert settings.is_gateway
    assert settings.listen_port == 9001
    upstream = settings.upstream
    assert (upstream.root, upstream.kv_mount) == ("from-env", "kv-flag")
    assert (upstream.tenancy, upstream.timeout_seconds) == ("prefix", 4.5)


def test_a_login_flag_replaces_the_token_from_the_environment(tmp_path: Path) -> None:
    env = {"TENANTVAULT_UPSTREAM_TOKEN": "from-env"}
    flagged = _serve._settings(_args("--upstream-token-file", str(tmp_path / "t")), env)
    assert flagged.upstream.token is None
    assert flagged.upstream.token_file == tmp_path / "t"
    assert ServerSettings.from_env(env).upstream.token == "from-env"


def test_unknown_or_mistyped_file_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown key 'upstream-token'"):
        _serve._settings(_args("--config", str(_config(tmp_path, 'upstream-token = "x"'))), {})
    with pytest.raises(ConfigurationError, match="true or false"):
        _serve._settings(_args("--config", str(_config(tmp_path, 'dev = "yes"'))), {})
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        _serve._settings(_args("--config", str(_config(tmp_path, "listen = "))), {})


def test_switches_in_the_file(tmp_path: Path) -> None:
    config = _config(tmp_path, "dev = true\nno-audit-store = true\n")
    settings = _serve._settings(_args("--config", str(config)), {})
    assert settings.dev
    assert not settings.audit_store


@pytest.mark.parametrize(
    "backend", ["vault://h:1", "postgres://h/db", "vault+http//h"], ids=["bare", "pg", "typo"]
)
def test_unknown_backend_schemes_are_refused(backend: str) -> None:
    with pytest.raises(ConfigurationError):
        ServerSettings(backend=backend)


def test_a_vault_url_carries_options_but_never_a_token() -> None:
    address, options = parse_upstream_url(
        "vault+https://vault.example:8200?root=tv&tenancy=namespace&pool_size=64&timeout_seconds=2"
    )
    assert address == "https://vault.example:8200"
    assert options == UpstreamOptions(
        root="tv", tenancy="namespace", pool_size=64, timeout_seconds=2.0
    )
    with pytest.raises(ConfigurationError, match="never goes in a URL"):
        parse_upstream_url("vault+https://vault.example:8200?token=s.abc")
    with pytest.raises(ConfigurationError):
        parse_upstream_url("vault+https://vault.example:8200/v1/secret")


async def test_the_vault_backend_needs_a_master_key() -> None:
    with pytest.raises(ConfigurationError, match="master key"):
        await open_backend("vault+http://127.0.0.1:1", upstream=UpstreamOptions(token="t"))


def test_a_repeatable_flag_takes_a_list_in_the_file(tmp_path: Path) -> None:
    config = _config(
        tmp_path, 'rotation-webhook-allow = ["https://a.example/", "https://b.example/"]\n'
    )
    settings = _serve._settings(_args("--config", str(config)), {})
    assert settings.rotation_webhook_allow == ("https://a.example/", "https://b.example/")
    with pytest.raises(ConfigurationError, match="one value"):
        _serve._settings(_args("--config", str(_config(tmp_path, 'listen = ["a", "b"]'))), {})
