"""`serve --lease-quota N`, the same as TENANTVAULT_LEASE_QUOTA and the config file key
`lease-quota`, is documented in --help and reaches the Core's lease manager."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from tenantvault._config import ServerSettings
from tenantvault.cli import _serve
from tenantvault.server import create_app


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    _serve.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", "--dev", *argv])


def _settings(*argv: str, environ: dict[str, str] | None = None) -> ServerSettings:
    return _serve._settings(_parse(*argv), environ or {})


def test_flag_environment_and_config_file_in_layers(tmp_path: Path) -> None:
    assert _settings().lease_quota == 0  # no limit
    assert _settings("--lease-quota", "5").lease_quota == 5
    environ = {"TENANTVAULT_LEASE_QUOTA": "7"}
    assert _settings(environ=environ).lease_quota == 7
    config = tmp_path / "tenantvault.toml"
    config.write_text("lease-quota = 4\n")
    assert _settings("--config", str(config)).lease_quota == 4
    assert _settings("--config", str(config), environ=environ).lease_quota == 7
    layered = _settings("--config", str(config), "--lease-quota", "9", environ=environ)
    assert layered.lease_quota == 9


def test_a_negative_quota_exits_2() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = _serve.run(_parse("--lease-quota", "-1"), environ={}, stdout=out, stderr=err)
    assert code == 2
    assert "lease quota must be a positive number" in err.getvalue()
    code = _serve.run(_parse(), environ={"TENANTVAULT_LEASE_QUOTA": "x"}, stdout=out, stderr=err)
    assert code == 2
    assert "TENANTVAULT_LEASE_QUOTA must be a positive number" in err.getvalue()


def test_help_documents_the_flag() -> None:
    text = " ".join(
        _serve.add_parser(argparse.ArgumentParser().add_subparsers()).format_help().split()
    )
    assert "--lease-quota N" in text
    assert "TENANTVAULT_LEASE_QUOTA" in text


async def test_the_quota_reaches_the_lease_manager(root_token: str) -> None:
    settings = ServerSettings(dev=True, dev_root_token=root_token, lease_quota=3)
    async with create_app(settings) as app:
        assert app.core.leases.quota == 3
