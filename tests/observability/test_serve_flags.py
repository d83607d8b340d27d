"""`tenantvault serve`'s observability flags become settings, through flags and the config
file alike: the dashboard on by default (off with --no-dashboard), observability on/off,
unauthenticated metrics, the number of named tenants and the alert webhook."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tenantvault._config import ServerSettings
from tenantvault._exceptions import ConfigurationError
from tenantvault.cli import _serve


def _args(*argv: str) -> argparse.Namespace:
    root = argparse.ArgumentParser()
    _serve.add_parser(root.add_subparsers())
    return root.parse_args(["serve", "--dev", *argv])


def test_defaults_serve_the_dashboard_and_count_requests() -> None:
    settings = _serve._settings(_args(), {})
    assert settings.dashboard is True
    assert settings.observability is True
    assert settings.metrics_unauthenticated is False
    assert settings.metrics_top_tenants == 20
    assert settings.alert_webhook is None
    # An embedding application's own settings do not serve the dashboard unless asked.
    assert ServerSettings().dashboard is False


def test_flags() -> None:
    settings = _serve._settings(
        _args(
            "--no-dashboard",
            "--no-observability",
            "--metrics-unauthenticated",
            "--metrics-top-tenants",
            "5",
            "--alert-webhook",
            "https://hooks.example.com/a",
        ),
        {},
    )
    assert settings.dashboard is False
    assert settings.observability is False
    assert settings.metrics_unauthenticated is True
    assert settings.metrics_top_tenants == 5
    assert settings.alert_webhook == "https://hooks.example.com/a"


def test_the_config_file_can_turn_the_dashboard_off(tmp_path: Path) -> None:
    config = tmp_path / "tenantvault.toml"
    config.write_text("no-dashboard = true\nmetrics-top-tenants = 3\n")
    settings = _serve._settings(_args("--config", str(config)), {})
    assert settings.dashboard is False
    assert settings.metrics_top_tenants == 3


@pytest.mark.parametrize(
    "flags",
    [("--metrics-top-tenants", "-1"), ("--alert-webhook", "http://hooks.example.com/a")],
)
def test_bad_values_are_refused_before_anything_starts(flags: tuple[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        _serve._settings(_args(*flags), {})
