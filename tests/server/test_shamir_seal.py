"""The Shamir seal through the HTTP API in-process: init hands out shares once, the server
stays sealed (503 everywhere but the seal endpoints) until a quorum of shares, a wrong share
is refused, `sys/seal` drops the master key, and a restart is sealed again."""

from __future__ import annotations

import asyncio
import base64
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault.seal import SEAL_FILENAME
from tenantvault.server import TenantVaultApp, create_app
from tests.server.conftest import BASE_URL


@asynccontextmanager
async def _serve(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ServerSettings(data_dir=data_dir, seal="shamir", audit_store=False))
    assert isinstance(app, TenantVaultApp)
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client
    finally:
        await app.shutdown()


async def _init(client: httpx.AsyncClient, shares: int = 5, threshold: int = 3) -> dict[str, Any]:
    response = await client.put(
        "/v1/sys/init", json={"secret_shares": shares, "secret_threshold": threshold}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _unseal(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.put("/v1/sys/unseal", json={"key": key})


async def test_init_unseal_serve_seal_and_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with _serve(data_dir) as client:
        status = (await client.get("/v1/sys/seal-status")).json()
        assert (status["initialized"], status["sealed"], status["t"], status["n"]) == (
            False,
            True,
            0,
            0,
        )
        health = await client.get("/v1/sys/health")
        assert health.status_code == 501
        assert (await client.get("/v1/sys/init")).json() == {"initialized": False}

        init = await _init(client)
        assert sorted(init) == ["keys", "keys_base64", "root_token"]
        assert len(init["keys"]) == 5
        for hex_key, b64_key in zip(init["keys"], init["keys_base64"], strict=True):
            assert bytes.fromhex(hex_key) == base64.b64decode(b64_key)
            assert len(bytes.fromhex(hex_key)) == 33
        token = init["root_token"]
        again = await client.put("/v1/sys/init", json={"secret_shares": 5, "secret_threshold": 3})
        assert again.status_code == 400
        assert again.json() == {"errors": ["Vault is already initialized"]}

        # Initialized but sealed: 503 for everything else, with Vault's text.
        sealed = await client.get("/v1/sys/mounts", headers={"X-Vault-Token": token})
        assert sealed.status_code == 503
        assert sealed.json() == {"errors": ["Vault is sealed"]}
        assert (await client.get("/v1/sys/health")).status_code == 503
        assert (await client.get("/v1/sys/health", params={"sealedcode": "299"})).status_code == 299

        first = (await _unseal(client, init["keys"][0])).json()
        assert (first["sealed"], first["progress"]) == (True, 1)
        assert first["nonce"]
        # The same share twice counts once.
        assert (await _unseal(client, init["keys_base64"][0])).json()["progress"] == 1
        second = (await _unseal(client, init["keys"][1])).json()
        assert (second["progress"], second["nonce"]) == (2, first["nonce"])
        assert (await client.get("/v1/secret/data/x")).status_code == 503  # two are not enough
        third = (await _unseal(client, init["keys"][2])).json()
        assert (third["sealed"], third["progress"], third["nonce"]) == (False, 0, "")

        headers = {"X-Vault-Token": token}
        mounted = await client.post(
            "/v1/sys/mounts/secret",
            headers=headers,
            json={"type": "kv", "options": {"version": "2"}},
        )
        assert mounted.status_code == 204, mounted.text
        written = await client.post(
            "/v1/secret/data/app", headers=headers, json={"data": {"password": "hunter2"}}
        )
        assert written.status_code == 200, written.text
        health = await client.get("/v1/sys/health")
        assert health.status_code == 200
        # The unsealed store's background services run (and stop again at the seal).
        services = health.json()["services"]
        assert services["key-rewrap"]["state"] == "running"
        assert services["transit-rotation"]["state"] == "running"

        # sys/seal needs a token with sudo on it.
        assert (await client.put("/v1/sys/seal")).status_code == 403
        assert (await client.put("/v1/sys/seal", headers=headers)).status_code == 204
        # Sealed: the unsealed store's services are stopped, none is left running.
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("service:")]
        assert (await client.get("/v1/secret/data/app", headers=headers)).status_code == 503
        assert (await client.get("/v1/sys/seal-status")).json()["sealed"] is True

    # A restart is sealed until a quorum comes again; the data is still there.
    async with _serve(data_dir) as client:
        status = (await client.get("/v1/sys/seal-status")).json()
        assert (status["initialized"], status["sealed"], status["t"], status["n"]) == (
            True,
            True,
            3,
            5,
        )
        for key in init["keys"][2:]:
            await _unseal(client, key)
        read = await client.get("/v1/secret/data/app", headers={"X-Vault-Token": token})
        assert read.status_code == 200, read.text
        assert read.json()["data"]["data"] == {"password": "hunter2"}

    # The master key is nowhere on disk in the clear.
    assert not (data_dir / "master.key").exists()
    assert (data_dir / SEAL_FILENAME).stat().st_mode & 0o077 == 0


async def test_a_wrong_share_is_refused_and_the_attempt_starts_over(tmp_path: Path) -> None:
    async with _serve(tmp_path / "data") as client:
        init = await _init(client, 3, 2)
        await _unseal(client, init["keys"][0])
        forged = bytearray(bytes.fromhex(init["keys"][1]))
        forged[0] ^= 1
        wrong = await _unseal(client, forged.hex())
        assert wrong.status_code == 400
        assert wrong.json() == {
            "errors": [
                "unable to retrieve stored keys: invalid key: failed to decrypt keys from "
                "storage: cipher: message authentication failed"
            ]
        }
        status = (await client.get("/v1/sys/seal-status")).json()
        assert (status["sealed"], status["progress"]) == (True, 0)
        await _unseal(client, init["keys"][1])
        assert (await _unseal(client, init["keys"][2])).json()["sealed"] is False


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"secret_shares": 2, "secret_threshold": 3}, "threshold cannot be larger than shares"),
        (
            {"secret_shares": 5, "secret_threshold": 1},
            "threshold must be greater than one for multiple shares",
        ),
        ({}, "shares must be at least one"),
    ],
)
async def test_init_refuses_vaults_bad_configurations(
    tmp_path: Path, body: dict[str, Any], error: str
) -> None:
    async with _serve(tmp_path / "data") as client:
        response = await client.put("/v1/sys/init", json=body)
        assert response.status_code == 400
        assert response.json() == {"errors": [f"invalid seal configuration: {error}"]}
        assert (await client.get("/v1/sys/init")).json() == {"initialized": False}


async def test_pgp_keys_are_refused(tmp_path: Path) -> None:
    async with _serve(tmp_path / "data") as client:
        response = await client.put(
            "/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["k"]}
        )
        assert response.status_code == 400
        assert (await client.get("/v1/sys/init")).json() == {"initialized": False}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "'key' must be specified in request body as JSON, or 'reset' set to true"),
        ({"key": "zz"}, "'key' must be a valid hex or base64 string"),
        ({"key": "00" * 10}, "invalid key: key is shorter than minimum 16 bytes"),
        ({"key": "00" * 40}, "invalid key: key is longer than maximum 33 bytes"),
        ({"key": "00" * 33}, "Vault is not initialized"),
    ],
)
async def test_unseal_refuses_bad_keys(tmp_path: Path, body: dict[str, Any], error: str) -> None:
    async with _serve(tmp_path / "data") as client:
        response = await client.put("/v1/sys/unseal", json=body)
        assert response.status_code == 400
        assert response.json() == {"errors": [error]}


async def test_reset_forgets_the_shares_so_far(tmp_path: Path) -> None:
    async with _serve(tmp_path / "data") as client:
        init = await _init(client)
        await _unseal(client, init["keys"][0])
        reset = await client.put("/v1/sys/unseal", json={"reset": True})
        assert (reset.json()["progress"], reset.json()["nonce"]) == (0, "")


async def test_a_single_share_is_the_unseal_key(tmp_path: Path) -> None:
    async with _serve(tmp_path / "data") as client:
        init = await _init(client, 1, 1)
        assert len(bytes.fromhex(init["keys"][0])) == 32
        assert (await _unseal(client, init["keys"][0])).json()["sealed"] is False


async def test_generate_root_token_from_a_quorum_of_shares(tmp_path: Path) -> None:
    """Losing the root token is not fatal: a quorum of shares mints a new one (OTP-encoded);
    a forged share aborts the attempt's progress; the legacy path is disabled as OpenBao's."""
    async with _serve(tmp_path / "data") as client:
        init = await _init(client, 3, 2)
        for key in init["keys"][:2]:
            await _unseal(client, key)
        headers = {"X-Vault-Token": init["root_token"]}
        base = "/v1/sys/generate-root-token"
        assert (await client.get(f"{base}/attempt")).status_code == 403
        started = (await client.put(f"{base}/attempt", headers=headers, json={})).json()["data"]
        otp, nonce = started["otp"], started["nonce"]
        assert len(otp) == started["otp_length"]

        forged = bytearray(bytes.fromhex(init["keys"][1]))
        forged[3] ^= 0x40
        await client.put(
            f"{base}/update", headers=headers, json={"key": init["keys"][0], "nonce": nonce}
        )
        aborted = await client.put(
            f"{base}/update", headers=headers, json={"key": forged.hex(), "nonce": nonce}
        )
        assert aborted.status_code == 400
        assert aborted.json()["errors"][0].startswith(
            "root generation aborted: unable to authenticate: unable to retrieve stored keys"
        )
        status = (await client.get(f"{base}/attempt", headers=headers)).json()["data"]
        assert (status["started"], status["progress"], status["nonce"]) == (True, 0, nonce)

        for key in init["keys"][1:]:
            reply = await client.put(
                f"{base}/update", headers=headers, json={"key": key, "nonce": nonce}
            )
        data = reply.json()["data"]
        assert data["complete"] is True
        encoded = base64.b64decode(data["encoded_token"] + "=" * (-len(data["encoded_token"]) % 4))
        token = bytes(a ^ b for a, b in zip(encoded, otp.encode(), strict=True)).decode()
        assert token != init["root_token"]
        me = await client.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
        assert me.json()["data"]["policies"] == ["root"]
        legacy = await client.get("/v1/sys/generate-root/attempt")
        assert legacy.status_code == 405


async def test_generate_root_needs_a_seal_with_shares(tmp_path: Path) -> None:
    app = create_app(ServerSettings(data_dir=tmp_path / "data", audit_store=False))
    tokens: list[str] = []
    assert isinstance(app, TenantVaultApp)
    app._on_root_token = tokens.append
    async with app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            reply = await client.get(
                "/v1/sys/generate-root-token/attempt", headers={"X-Vault-Token": tokens[0]}
            )
    assert reply.status_code == 400
    assert "the file seal has no key shares" in reply.json()["errors"][0]


async def test_after_rotation_and_rekey_an_old_copy_does_not_open_with_the_new_shares(
    tmp_path: Path,
) -> None:
    """Shamir: the unseal key seals the master key in the copy too, so what cuts off a copy of
    the data directory is new shares (`sys/rotate/root`), together with `sys/rotate` and the
    re-wrap for the tenant keys inside the store."""
    live, copy = tmp_path / "live", tmp_path / "copy"
    async with _serve(live) as client:
        init = await _init(client, 3, 2)
        for key in init["keys"][:2]:
            await _unseal(client, key)
        headers = {"X-Vault-Token": init["root_token"]}
        assert (await client.put("/v1/sys/seal", headers=headers)).status_code == 204
    shutil.copytree(live, copy)  # the backup, taken before the rotation
    async with _serve(live) as client:
        for key in init["keys"][:2]:
            await _unseal(client, key)
        assert (await client.put("/v1/sys/rotate", headers=headers)).status_code == 204
        started = await client.put(
            "/v1/sys/rotate/root/init",
            headers=headers,
            json={"secret_shares": 3, "secret_threshold": 2},
        )
        nonce = started.json()["data"]["nonce"]
        for key in init["keys"][:2]:
            reply = await client.put(
                "/v1/sys/rotate/root/update", headers=headers, json={"key": key, "nonce": nonce}
            )
        new_keys = reply.json()["data"]["keys"]
        assert set(new_keys).isdisjoint(init["keys"])
    async with _serve(copy) as client:
        await _unseal(client, new_keys[0])
        refused = await _unseal(client, new_keys[1])
        assert refused.status_code == 400
        assert (await client.get("/v1/sys/seal-status")).json()["sealed"] is True
    async with _serve(live) as client:
        await _unseal(client, init["keys"][0])
        assert (await _unseal(client, init["keys"][1])).status_code == 400  # old shares: gone
        for key in new_keys[1:]:
            await _unseal(client, key)
        assert (await client.get("/v1/sys/seal-status")).json()["sealed"] is False


async def test_an_unsealed_store_is_observed_like_a_file_sealed_one(tmp_path: Path) -> None:
    """Metrics and the observability service run for the Core an unseal opens, too."""
    async with _serve(tmp_path / "data") as client:
        init = await _init(client, shares=1, threshold=1)
        assert (await _unseal(client, init["keys"][0])).json()["sealed"] is False
        headers = {"X-Vault-Token": init["root_token"]}
        for _ in range(3):
            assert (await client.get("/v1/sys/mounts", headers=headers)).status_code == 200
        metrics = await client.get(
            "/v1/sys/metrics", headers=headers, params={"format": "prometheus"}
        )
        assert metrics.status_code == 200, metrics.text
        assert "tenantvault_requests_total{" in metrics.text
        health = (await client.get("/v1/sys/health")).json()
        assert "observability" in health["services"]
