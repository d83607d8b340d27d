"""`serve --max-inflight-per-tenant N --max-inflight N --max-running N` and their config file
keys: defaults, layers, validation, --help, and the bounds reaching the app."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from tenantvault._config import (
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_MAX_INFLIGHT_PER_TENANT,
    ServerSettings,
)
from tenantvault._exceptions import ConfigurationError
from tenantvault.cli import _serve
from tenantvault.server import create_app


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    _serve.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", "--dev", *argv])


def _settings(*argv: str) -> ServerSettings:
    return _serve._settings(_parse(*argv), {})


def test_defaults_flags_and_config_file_keys(tmp_path: Path) -> None:
    default = _settings()
    assert default.max_inflight_per_tenant == DEFAULT_MAX_INFLIGHT_PER_TENANT == 1024
    assert default.max_inflight == DEFAULT_MAX_INFLIGHT == 4096
    assert default.max_running == 0
    flagged = _settings("--max-inflight-per-tenant", "8", "--max-inflight", "64")
    assert (flagged.max_inflight_per_tenant, flagged.max_inflight) == (8, 64)
    config = tmp_path / "tenantvault.toml"
    config.write_text("max-inflight-per-tenant = 16\nmax-inflight = 128\nmax-running = 4\n")
    from_file = _settings("--config", str(config))
    assert (from_file.max_inflight_per_tenant, from_file.max_inflight) == (16, 128)
    assert from_file.max_running == 4
    assert _settings("--config", str(config), "--max-running", "0").max_running == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--max-inflight", "-1"), "in-flight bounds must be 0 \\(no bound\\) or more"),
        (("--max-running", "-1"), "in-flight bounds must be 0 \\(no bound\\) or more"),
        (("--max-inflight", "8", "--max-inflight-per-tenant", "9"), "must not exceed"),
    ],
)
def test_bad_bounds_are_refused(flags: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _settings(*flags)
    out, err = io.StringIO(), io.StringIO()
    assert _serve.run(_parse(*flags), environ={}, stdout=out, stderr=err) == 2


def test_no_per_tenant_bound_may_exceed_none_overall() -> None:
    assert _settings("--max-inflight", "0", "--max-inflight-per-tenant", "9").max_inflight == 0


def test_help_documents_the_flags() -> None:
    text = " ".join(
        _serve.add_parser(argparse.ArgumentParser().add_subparsers()).format_help().split()
    )
    for flag in ("--max-inflight-per-tenant N", "--max-inflight N", "--max-running N"):
        assert flag in text


async def test_the_bounds_reach_the_app(root_token: str) -> None:
    settings = ServerSettings(
        dev=True, dev_root_token=root_token, max_inflight_per_tenant=0, max_inflight=0
    )
    async with create_app(settings) as app:
        assert not app._admission.on
    async with create_app(ServerSettings(dev=True, dev_root_token=root_token)) as app:
        assert app._admission.on
