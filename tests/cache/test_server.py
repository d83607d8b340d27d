"""The read cache in the server: its settings from flags, the environment-free config file
and their checks; its counters in sys/metrics; its maintenance service in sys/health; and
an HTTP read's audit entries the same, hit or miss."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from tenantvault._config import ServerSettings
from tenantvault._exceptions import ConfigurationError
from tenantvault.cache import CacheSettings
from tenantvault.cli import _serve
from tenantvault.server import create_app
from tests.server.conftest import BASE_URL, Vault


def _args(*argv: str) -> argparse.Namespace:
    root = argparse.ArgumentParser()
    _serve.add_parser(root.add_subparsers())
    return root.parse_args(["serve", *argv])


def test_flags_set_the_cache(tmp_path: Path) -> None:
    settings = _serve._settings(
        _args("--read-cache-ttl", "5", "--read-cache-max-entries", "10", "--dev"), {}
    )
    assert settings.read_cache_settings() == CacheSettings(ttl_seconds=5, max_entries=10)
    off = _serve._settings(_args("--no-read-cache", "--dev"), {})
    assert not off.read_cache_settings().enabled


def test_the_config_file_sets_the_cache(tmp_path: Path) -> None:
    config = tmp_path / "tenantvault.toml"
    config.write_text(
        "dev = true\nno-read-cache = true\nread-cache-stale-if-error = 0\n"
        "read-cache-tenant-share = 0.25\nread-cache-max-bytes = 4096\n"
    )
    settings = _serve._settings(_args("--config", str(config)), {})
    assert settings.read_cache_settings() == CacheSettings(
        enabled=False, stale_if_error_seconds=0, tenant_share=0.25, max_bytes=4096
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"read_cache_ttl_seconds": 0},
        {"read_cache_stale_seconds": -1},
        {"read_cache_max_entries": 0},
        {"read_cache_max_bytes": 0},
        {"read_cache_tenant_share": 1.5},
    ],
)
def test_bad_cache_settings_stop_the_server_before_it_starts(changes: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        ServerSettings(dev=True).replace(**changes)


@pytest.fixture
async def audited(tmp_path: Path) -> AsyncIterator[tuple[Vault, Path]]:
    log = tmp_path / "audit.log"
    settings = ServerSettings(dev=True, dev_root_token="root-cache-test", audit_file=log)
    async with create_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Vault(client, "root-cache-test"), log


async def test_hits_show_in_metrics_and_the_service_in_health(
    audited: tuple[Vault, Path],
) -> None:
    vault, _ = audited
    token = await vault.tenant_admin("acme")
    await vault.put("acme", "app/db", {"password": "one"}, token=token)
    for _ in range(3):
        read = await vault.request("GET", "secret/data/app/db", token=token, namespace="acme")
        assert read.status_code == 200, read.text
    metrics = await vault.root("GET", "sys/metrics", params={"format": "prometheus"})
    assert metrics.status_code == 200, metrics.text
    hits = [
        line
        for line in metrics.text.splitlines()
        if line.startswith("tenantvault_cache_events_total{") and 'event="hit"' in line
    ]
    assert hits
    assert sum(float(line.rsplit(" ", 1)[1]) for line in hits) == 2
    health = (await vault.request("GET", "sys/health")).json()
    service = health["services"]["cache-maintenance"]
    assert service["state"] == "running"
    assert service["detail"]["hits"] == 2
    assert service["detail"]["entries"] == 1


async def test_a_hit_is_audited_like_a_miss(audited: tuple[Vault, Path]) -> None:
    """Two request/response pairs, identical but for ids and times."""
    vault, log = audited
    token = await vault.tenant_admin("acme")
    await vault.put("acme", "app/db", {"password": "one"}, token=token)
    ids = []
    for _ in range(2):
        read = await vault.request("GET", "secret/data/app/db", token=token, namespace="acme")
        assert read.status_code == 200, read.text
        ids.append(read.json()["request_id"])
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]

    def shape(request_id: str) -> list[tuple[str, str, object]]:
        return [
            (e["type"], e["request"]["path"], e.get("response", {}).get("data"))
            for e in entries
            if e.get("request", {}).get("id") == request_id
        ]

    miss, hit = (shape(request_id) for request_id in ids)
    assert [kind for kind, _, _ in miss] == ["request", "response"]
    assert miss == hit
