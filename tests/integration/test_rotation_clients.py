"""KV rotation driven by hvac against a real `tenantvault serve --dev
--rotation-webhook-allow PREFIX`, with a real webhook receiver in the test: the hook sees the
four phases signed, the secret moves to the hook's new value, a URL outside the allow-list is
refused with 400, and the server log holds no secret."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from tests.integration._support import (
    assert_no_secret,
    canary,
    clean_env,
    free_port,
    stop,
    tenantvault_executable,
    unique_name,
    wait_healthy,
)
from tests.rotation._receiver import Receiver, running_receiver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as started:
        yield started


@pytest.fixture(scope="module")
def server(
    receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Path]]:
    """`tenantvault serve --dev` allowing the receiver's prefix: (address, root token, log)."""
    directory = tmp_path_factory.mktemp("rotation-serve")
    port = free_port()
    root_token = canary("root-")
    log = directory / "server.log"
    command = [
        *tenantvault_executable(),
        "serve",
        "--dev",
        "--dev-root-token",
        root_token,
        "--listen",
        f"127.0.0.1:{port}",
        "--rotation-webhook-allow",
        receiver.prefix,
        "--rotation-webhook-allow",
        "https://hooks.example.com/",
        "--log-level",
        "debug",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=clean_env(directory)
        )
    addr = f"http://127.0.0.1:{port}"
    wait_healthy(process, addr, log, "tenantvault serve --rotation-webhook-allow")
    try:
        yield addr, root_token, log
    finally:
        assert stop(process) == 0
        text = log.read_text(errors="replace")
        assert_no_secret(text, "the rotation server log")
        assert receiver.secret not in text
        assert not any(value in text for value in receiver.values)


def test_hvac_rotates_a_secret_through_a_webhook(
    server: tuple[str, str, Path], receiver: Receiver
) -> None:
    addr, root_token, _ = server
    tenant = unique_name("rot")
    root = hvac.Client(url=addr, token=root_token)
    root.sys.create_namespace(tenant)
    client = hvac.Client(url=addr, token=root_token, namespace=tenant)
    try:
        old = canary("old-key-")
        client.secrets.kv.v2.create_or_update_secret("saas/key", {"api_key": old, "org": "o1"})
        configured = client.adapter.post(
            "/v1/sys/rotation/config/secret/saas/key",
            json={
                "rotator": "webhook",
                "period": "30d",
                "grace": "1h",
                "field": "api_key",
                "params": {"url": receiver.url, "secret": receiver.secret},
            },
        )
        assert configured.status_code == 204
        rotated = client.adapter.post("/v1/sys/rotation/rotate/secret/saas/key", json={})
        assert rotated["data"] == {"version": 2}
        assert receiver.phases[-4:] == ["create", "set", "test", "finish"]
        assert all(call.signed for call in receiver.calls[-4:])
        current = client.secrets.kv.v2.read_secret_version(
            "saas/key", raise_on_deleted_version=True
        )
        assert current["data"]["data"] == {"api_key": receiver.values[-1], "org": "o1"}
        previous = client.secrets.kv.v2.read_secret_version(
            "saas/key", version=1, raise_on_deleted_version=True
        )
        assert previous["data"]["data"]["api_key"] == old  # within its grace
        status = client.adapter.get("/v1/sys/rotation/config/secret/saas/key")["data"]
        assert status["state"] == "idle"
        assert status["rotations"] == 1
        assert status["params"] == {"url": receiver.url}
        listed = client.adapter.list("/v1/sys/rotation/config")["data"]["keys"]
        assert listed == ["secret/saas/key"]
        with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
            client.adapter.post(
                "/v1/sys/rotation/config/secret/saas/key",
                json={
                    "rotator": "webhook",
                    "period": "30d",
                    "field": "api_key",
                    "params": {"url": "http://169.254.169.254/x", "secret": receiver.secret},
                },
            )
        assert "not under a webhook prefix" in str(refused.value)
    finally:
        client.adapter.close()
        root.adapter.close()
