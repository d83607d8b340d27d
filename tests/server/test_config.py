"""ServerSettings: defaults, validation, the explicit from_env(), and secrets kept out of repr."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tenantvault._config import (
    DEFAULT_LISTEN_HOST,
    DEFAULT_LISTEN_PORT,
    DEFAULT_MAX_REQUEST_BYTES,
    ServerSettings,
    default_data_dir,
    is_loopback,
    parse_listen,
)
from tenantvault._exceptions import ConfigurationError
from tests.conftest import canary


def test_defaults_are_vaults() -> None:
    settings = ServerSettings()
    assert (settings.listen_host, settings.listen_port) == (
        DEFAULT_LISTEN_HOST,
        DEFAULT_LISTEN_PORT,
    )
    assert (DEFAULT_LISTEN_HOST, DEFAULT_LISTEN_PORT) == ("127.0.0.1", 8200)
    assert settings.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES == 32 * 1024 * 1024
    assert not settings.dev
    assert not settings.is_tls


def test_default_data_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_data_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "tenantvault"
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / ".local" / "share" / "tenantvault"
    assert default_data_dir({}) == expected
    assert default_data_dir({"XDG_DATA_HOME": "relative/dir"}) == expected


def test_backend_url() -> None:
    assert ServerSettings(dev=True).backend_url == "memory://"
    odd = ServerSettings(data_dir=Path("/srv/tv data#1?"))
    assert odd.backend_url == "sqlite:///srv/tv%20data%231%3F"


def test_from_env_reads_only_tenantvault_variables(tmp_path: Path) -> None:
    key = bytes(range(32))
    settings = ServerSettings.from_env(
        {
            "TENANTVAULT_DATA_DIR": str(tmp_path),
            "TENANTVAULT_LISTEN": "[::1]:9000",
            "TENANTVAULT_MASTER_KEY": base64.b64encode(key).decode(),
            "TENANTVAULT_MAX_REQUEST_BYTES": "1024",
            "TENANTVAULT_ACCESS_LOG": "false",
            "VAULT_ADDR": "http://elsewhere",
        }
    )
    assert settings.data_dir == tmp_path
    assert (settings.listen_host, settings.listen_port) == ("::1", 9000)
    assert settings.master_key == key
    assert settings.max_request_bytes == 1024
    assert settings.access_log is False


def test_from_env_overrides_win_and_none_means_unset(tmp_path: Path) -> None:
    settings = ServerSettings.from_env(
        {"TENANTVAULT_DATA_DIR": "/from/env", "TENANTVAULT_DEV": "1"},
        data_dir=tmp_path,
        dev=None,
    )
    assert settings.data_dir == tmp_path
    assert settings.dev is True


@pytest.mark.parametrize(
    "environ",
    [
        {"TENANTVAULT_MASTER_KEY": "CANARY-not-base64"},
        {"TENANTVAULT_MASTER_KEY": base64.b64encode(b"CANARY-short").decode()},
        {"TENANTVAULT_LISTEN": "CANARY"},
        {"TENANTVAULT_DEV": "CANARY"},
        {"TENANTVAULT_MAX_REQUEST_BYTES": "-1"},
    ],
)
def test_bad_environment_values_are_refused_without_echo(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServerSettings.from_env(environ)
    assert "CANARY" not in str(caught.value)
    assert "Q0FOQVJZ" not in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"listen_port": 70000},
        {"tls_cert": Path("cert.pem")},
        {"dev_root_token": "x"},
        {"master_key": b"short"},
        {"master_key": bytes(32), "master_key_file": Path("k")},
        {"dev": True, "master_key": bytes(32)},
        {"max_request_bytes": 0},
        {"shutdown_timeout_seconds": 0},
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ServerSettings(**kwargs)  # type: ignore[arg-type]


def test_repr_hides_secrets() -> None:
    token = canary()
    settings = ServerSettings(dev=True, dev_root_token=token)
    assert token not in repr(settings)
    keyed = ServerSettings(master_key=b"K" * 32)
    assert "KKKK" not in repr(keyed)


def test_replace_validates_again() -> None:
    settings = ServerSettings()
    assert settings.replace(listen_port=1).listen_port == 1
    with pytest.raises(ConfigurationError):
        settings.replace(listen_port=-1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8200", ("127.0.0.1", 8200)),
        ("localhost:1", ("127.0.0.1", 1)),
        ("[::1]:8200", ("::1", 8200)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),  # noqa: S104 -- parsed, never bound
    ],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize(
    "value", ["8200", ":8200", "host:8200", "1.2.3.4:x", "1.2.3.4:99999", "[::1]8200", "1.2.3.4:-1"]
)
def test_parse_listen_refuses(value: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_listen(value)


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.1.2.3")
    assert is_loopback("::1")
    assert not is_loopback("0.0.0.0")  # noqa: S104 -- the check under test, nothing bound
    assert not is_loopback("10.0.0.1")
    assert not is_loopback("::")
    assert not is_loopback("localhost")  # already mapped by parse_listen
