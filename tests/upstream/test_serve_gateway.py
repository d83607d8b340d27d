"""`tenantvault serve --backend vault+http://...`: sys/health shows the upstream auth state,
and two server processes with one config file share tenants and tokens."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import httpx

from tenantvault._config import ServerSettings
from tenantvault.crypto import random_key
from tenantvault.server import create_app
from tests._openbao import OpenBaoDev, unique_root
from tests.integration._support import (
    clean_env,
    free_port,
    remember_secret,
    stop,
    tenantvault_executable,
    wait_healthy,
)
from tests.upstream._records import options, token_file


async def test_sys_health_shows_the_upstream_auth_state(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    settings = ServerSettings(
        backend=openbao_dev.backend_url,
        upstream=options(openbao_dev, tmp_path),
        master_key=random_key(),
        audit_store=False,
        data_dir=tmp_path / "data",
    )
    tokens: list[str] = []
    async with create_app(settings, on_root_token=tokens.append) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tv") as client:
            health = (await client.get("/v1/sys/health")).json()
            created = await client.post(
                "/v1/sys/namespaces/acme", headers={"X-Vault-Token": tokens[0]}
            )
    assert created.status_code == 200
    auth = health["services"]["upstream-auth"]
    assert auth["detail"]["method"] == "token"
    assert auth["detail"]["state"] == "ok"
    # The report names no credential.
    assert openbao_dev.root_token not in repr(health)


def _serve(
    config: Path, directory: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = directory / f"server-{port}.log"
    command = [
        *tenantvault_executable(),
        "serve",
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{port}",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    addr = f"http://127.0.0.1:{port}"
    wait_healthy(process, addr, log, "tenantvault serve (gateway)")
    return process, addr


def test_two_servers_with_one_config_file_share_tenants_and_tokens(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    """Every setting from the TOML file, the master key from the environment; the first
    server initializes the root token, the second finds it."""
    root_token_file = tmp_path / "root-token"
    config = tmp_path / "tenantvault.toml"
    config.write_text(
        f'backend = "{openbao_dev.backend_url}"\n'
        f'upstream-root = "{unique_root("srv")}"\n'
        'upstream-tenancy = "prefix"\n'
        f'upstream-token-file = "{token_file(tmp_path, openbao_dev.root_token)}"\n'
        f'root-token-file = "{root_token_file}"\n'
        "no-audit-store = true\n"
        'log-level = "debug"\n'
    )
    key = base64.b64encode(random_key()).decode()
    env = clean_env(tmp_path, TENANTVAULT_MASTER_KEY=key)
    first, one = _serve(config, tmp_path, env)
    second = None
    try:
        root = remember_secret(root_token_file.read_text().strip())
        second, two = _serve(config, tmp_path, env)
        headers = {"X-Vault-Token": root}
        assert httpx.post(f"{one}/v1/sys/namespaces/acme", headers=headers).status_code == 200
        listed = httpx.request("LIST", f"{two}/v1/sys/namespaces", headers=headers).json()
        assert listed["data"]["keys"] == ["acme/"]
        made = httpx.post(
            f"{one}/v1/auth/token/create",
            headers={**headers, "X-Vault-Namespace": "acme"},
            json={"policies": ["default"]},
        ).json()
        token = remember_secret(made["auth"]["client_token"])
        looked = httpx.get(f"{two}/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
        assert looked.status_code == 200
        health = httpx.get(f"{two}/v1/sys/health").json()
        assert health["services"]["upstream-auth"]["detail"]["state"] == "ok"
    finally:
        codes = [stop(first), stop(second) if second is not None else 0]
    assert codes == [0, 0]
    for log in tmp_path.glob("server-*.log"):
        text = log.read_text(errors="replace")
        assert openbao_dev.root_token not in text
        assert key not in text
        assert " ERROR " not in text, text[-2000:]
