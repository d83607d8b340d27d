"""The operator's login settings: `serve --login-failures N --login-window DURATION
--jwt-jwks-allow PREFIX`, the same as TENANTVAULT_* variables and config file keys, reach
the auth methods (a lower limit answers 429 sooner)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault.cli import _serve
from tenantvault.engines.auth import DEFAULT_LOGIN_FAILURES, DEFAULT_LOGIN_WINDOW_SECONDS
from tenantvault.server import create_app
from tests.server.conftest import BASE_URL, Vault
from tests.server.test_approle import login, setup_role

IDP = "https://idp.example.com/keys/"


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    _serve.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", "--dev", *argv])


def _settings(*argv: str, environ: dict[str, str] | None = None) -> ServerSettings:
    return _serve._settings(_parse(*argv), environ or {})


def test_defaults() -> None:
    settings = _settings()
    assert settings.login_failures == DEFAULT_LOGIN_FAILURES
    assert settings.login_window_seconds == DEFAULT_LOGIN_WINDOW_SECONDS
    assert settings.jwt_jwks_allow == ()


def test_flags_environment_and_config_file(tmp_path: Path) -> None:
    flags = _settings(
        "--login-failures", "3", "--login-window", "2m", "--jwt-jwks-allow", IDP,
        "--jwt-jwks-allow", "http://127.0.0.1:8080/",
    )  # fmt: skip
    assert (flags.login_failures, flags.login_window_seconds) == (3, 120)
    assert flags.jwt_jwks_allow == (IDP, "http://127.0.0.1:8080/")
    environ = {
        "TENANTVAULT_LOGIN_FAILURES": "7",
        "TENANTVAULT_LOGIN_WINDOW": "90s",
        "TENANTVAULT_JWT_JWKS_ALLOW": f"{IDP} https://b.example/",
    }
    env = _settings(environ=environ)
    assert (env.login_failures, env.login_window_seconds) == (7, 90)
    assert env.jwt_jwks_allow == (IDP, "https://b.example/")
    config = tmp_path / "tenantvault.toml"
    config.write_text(f'login-failures = 4\nlogin-window = "1h"\njwt-jwks-allow = ["{IDP}"]\n')
    filed = _settings("--config", str(config))
    assert (filed.login_failures, filed.login_window_seconds) == (4, 3600)
    assert filed.jwt_jwks_allow == (IDP,)
    # Each layer overrides the one before: file, then environment, then flags.
    layered = _settings("--config", str(config), "--login-failures", "9", environ=environ)
    assert (layered.login_failures, layered.login_window_seconds) == (9, 90)


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--login-failures", "0"], {}, "must be positive"),
        (["--login-window", "soon"], {}, "--login-window must be a duration"),
        (["--login-window", "0s"], {}, "must be positive"),
        ([], {"TENANTVAULT_LOGIN_WINDOW": "soon"}, "TENANTVAULT_LOGIN_WINDOW must be a duration"),
        (["--jwt-jwks-allow", "ftp://idp/"], {}, "--jwt-jwks-allow entries must be"),
        (["--jwt-jwks-allow", "https://u:p@idp/"], {}, "--jwt-jwks-allow entries must be"),
    ],
)
def test_bad_values_exit_2_before_anything_starts(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = _serve.run(_parse(*argv), environ=environ, stdout=out, stderr=err)
    assert code == 2
    assert message in err.getvalue()


def test_help_documents_the_flags() -> None:
    text = " ".join(
        _serve.add_parser(argparse.ArgumentParser().add_subparsers()).format_help().split()
    )
    assert "--login-failures N" in text
    assert "counted per server process" in text
    assert "--login-window DURATION" in text
    assert "--jwt-jwks-allow PREFIX" in text
    assert "only public addresses" in text


async def test_the_login_limit_reaches_the_auth_methods(root_token: str) -> None:
    settings = ServerSettings(
        dev=True, dev_root_token=root_token, login_failures=2, login_window_seconds=60
    )
    async with create_app(settings) as app:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            role_id, secret_id = await setup_role(vault)
            statuses = [(await login(vault, role_id, "wrong")).status_code for _ in range(3)]
            # Two failures allowed, then 429 (the default limit would answer 400 five times).
            assert statuses == [400, 400, 429]
            assert (await login(vault, role_id, secret_id)).status_code == 429
