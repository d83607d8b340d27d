"""hvac against a real `tenantvault serve --backend vault+http://… --upstream-tenancy
namespace`: an upstream engine (totp) enabled in a tenant, used, tuned and disabled, and
seen in the tenant's upstream namespace with OpenBao's own CLI."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from tenantvault.crypto import random_key
from tests._openbao import OpenBaoDev, unique_root
from tests.integration._support import (
    BaoCLI,
    assert_no_secret,
    bao_executable,
    clean_env,
    free_port,
    remember_secret,
    stop,
    tenantvault_executable,
    wait_healthy,
)


def _secret_file(path: Path, value: str) -> str:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def served(openbao_dev: OpenBaoDev, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(address, root token, upstream root) of a gateway-mode server, namespace strategy."""
    root = unique_root("pt")
    port = free_port()
    token_file = tmp_path / "root-token"
    command = [
        *tenantvault_executable(),
        "serve",
        *("--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data")),
        *("--root-token-file", str(token_file), "--backend", openbao_dev.backend_url),
        "--upstream-token-file",
        _secret_file(tmp_path / "upstream-token", openbao_dev.root_token),
        "--master-key-file",
        _secret_file(tmp_path / "master.key", base64.b64encode(random_key()).decode()),
        *("--upstream-root", root, "--upstream-tenancy", "namespace"),
    ]
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=clean_env(tmp_path)
        )
    addr = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, addr, log, "tenantvault serve (gateway, namespace)")
        yield addr, remember_secret(token_file.read_text().strip()), root
    finally:
        code = stop(process)
        text = log.read_text(errors="replace")
        assert code == 0, text[-4000:]
        assert_no_secret(text, "the gateway server log")
        assert openbao_dev.root_token not in text


def _upstream_mounts(server: OpenBaoDev, namespace: str, home: Path) -> dict[str, object]:
    bao = BaoCLI(bao_executable(), server.addr, home)
    result = bao.run(
        "secrets", "list", "-format=json", token=server.root_token, namespace=namespace
    )
    assert result.code == 0, result.text
    mounts: dict[str, object] = json.loads(result.out)
    return mounts


def test_hvac_enables_uses_and_disables_an_upstream_engine_in_a_tenant(
    served: tuple[str, str, str], openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    addr, root_token, root = served
    operator = hvac.Client(url=addr, token=root_token, timeout=30)
    admin = hvac.Client(url=addr, token=root_token, namespace="acme", timeout=30)
    try:
        operator.sys.create_namespace("acme")
        admin.sys.enable_secrets_engine("totp", path="otp", description="codes")
        assert "otp/" in _upstream_mounts(openbao_dev, f"{root}/acme", tmp_path)
        assert admin.sys.list_mounted_secrets_engines()["data"]["otp/"]["type"] == "totp"

        made = admin.write_data(
            "otp/keys/ci",
            data={"generate": True, "issuer": "tenantvault", "account_name": "ci@acme"},
        )
        assert made["data"]["url"].startswith("otpauth://totp/")
        code = admin.read("otp/code/ci")["data"]["code"]
        checked = admin.write_data("otp/code/ci", data={"code": code})
        assert checked["data"] == {"valid": True}

        admin.sys.tune_mount_configuration("otp", max_lease_ttl="3h")
        tuned = _upstream_mounts(openbao_dev, f"{root}/acme", tmp_path)["otp/"]
        assert isinstance(tuned, dict)
        assert tuned["config"]["max_lease_ttl"] == 10800

        with pytest.raises(hvac.exceptions.InvalidRequest):
            admin.sys.enable_auth_method("userpass")

        admin.sys.disable_secrets_engine("otp")
        assert "otp/" not in _upstream_mounts(openbao_dev, f"{root}/acme", tmp_path)
    finally:
        operator.adapter.close()
        admin.adapter.close()
