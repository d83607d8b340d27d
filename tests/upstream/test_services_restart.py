"""Issue 16: the upstream token renewal, a supervised service in gateway mode, crashes and is
restarted while requests to the real OpenBao go on; none of them fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantvault._config import ServerSettings
from tenantvault.crypto import random_key
from tenantvault.upstream._auth import UpstreamAuth
from tests._openbao import OpenBaoDev
from tests.server._supervision import Fault, burst_while, health, serving, until_restarted
from tests.upstream._records import options


async def test_a_crashed_upstream_renewal_is_restarted_and_no_request_fails(
    openbao_dev: OpenBaoDev, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = Fault()
    fault.patch(monkeypatch, UpstreamAuth, "_run")
    settings = ServerSettings(
        backend=openbao_dev.backend_url,
        upstream=options(openbao_dev, tmp_path),
        master_key=random_key(),
        audit_store=False,
        data_dir=tmp_path / "data",
    )
    async with serving(settings) as (_app, vault):
        await vault.create_tenant("acme")
        await burst_while(vault, "acme", fault.fire.set, count=30)
        report = await until_restarted(vault, "upstream-auth")
        assert fault.fired == 1
        assert report["restarts"] == 1
        assert report["last_error"] == "RuntimeError"
        assert report["detail"]["state"] == "ok"  # the token it renews is still good
        assert (await health(vault)).status_code == 200
