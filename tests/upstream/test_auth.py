"""tenantvault's own upstream token outlives its TTL: renewed at ~2/3 of it, and a fresh
AppRole login when renewal can no longer extend it — with no error in between."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tenantvault import ConfigurationError, TenantVaultError
from tenantvault._config import UpstreamOptions
from tenantvault.backends import open_backend
from tenantvault.crypto import random_key
from tenantvault.upstream import (
    UpstreamBackend,
    UpstreamClient,
    UpstreamCredentials,
    UpstreamSettings,
)
from tests._openbao import OpenBaoDev, unique_root
from tests.upstream._records import token_file
from tests.upstream._soak import soak


async def test_short_lived_upstream_tokens_are_renewed_and_replaced_without_errors(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    """The suite's short soak (scripts/upstream_auth_soak.py runs 60 s with a 10 s TTL):
    12 s of record traffic with 3 s tokens — four TTLs — and not one failed call."""
    result = await soak(
        openbao_dev.addr, openbao_dev.root_token, tmp_path, seconds=12, ttl_seconds=3
    )
    assert result.errors == {"token": [], "approle": []}
    assert result.operations["token"] > 50
    assert result.operations["approle"] > 50
    # The token was renewed (it would have expired after 3 s otherwise) ...
    assert result.auth["token"]["renewals"] >= 3
    assert result.auth["token"]["state"] == "ok"
    # ... and AppRole tokens, whose max TTL is 6 s, were replaced by fresh logins.
    assert result.auth["approle"]["logins"] >= 2
    assert result.auth["approle"]["state"] == "ok"


async def test_a_bad_upstream_token_fails_at_open_without_echoing_it(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    secret = "CANARY-not-a-real-token"
    options = UpstreamOptions(root="badtoken", token_file=token_file(tmp_path, secret))
    with pytest.raises(ConfigurationError, match="cannot authenticate") as caught:
        await open_backend(openbao_dev.backend_url, upstream=options, master_key=random_key())
    assert secret not in str(caught.value)


@pytest.mark.parametrize(
    ("token", "token_path", "role_id", "secret_id"),
    [
        (None, None, None, None),
        ("a", "/t", None, None),
        (None, None, "/r", None),
        ("a", None, "/r", "/s"),
    ],
)
def test_exactly_one_way_to_log_in(
    token: str | None, token_path: str | None, role_id: str | None, secret_id: str | None
) -> None:
    with pytest.raises(ConfigurationError):
        UpstreamCredentials(
            token=token,
            token_file=Path(token_path) if token_path else None,
            role_id_file=Path(role_id) if role_id else None,
            secret_id_file=Path(secret_id) if secret_id else None,
        )


def test_credentials_never_show_the_token() -> None:
    assert "s3cr3t" not in repr(UpstreamCredentials(token="s3cr3t"))
    assert "s3cr3t" not in repr(UpstreamOptions(token="s3cr3t"))


async def test_without_a_supervisor_calls_renew_the_token_inline(
    openbao_dev: OpenBaoDev, tmp_path: Path
) -> None:
    """The Python API runs no background service: the record backend renews its 4 s token
    itself, once 2/3 of the TTL have passed, and 7 s of calls see no error. (A 2 s token left
    a loaded CI machine too little slack: a renewal due at 1.3 s failed once.)"""
    async with UpstreamClient(UpstreamSettings(openbao_dev.addr)) as client:
        created = await client.write(
            "auth/token/create", {"policies": ["root"], "ttl": "4s"}, token=openbao_dev.root_token
        )
    assert created is not None
    options = UpstreamOptions(
        root=unique_root("inline"),
        tenancy="prefix",
        token_file=token_file(tmp_path, created["auth"]["client_token"]),
    )
    backend = await open_backend(openbao_dev.backend_url, upstream=options, master_key=random_key())
    assert isinstance(backend, UpstreamBackend)
    assert backend.gateway is not None
    errors: list[str] = []
    try:
        await backend.create_tenant("acme")
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            try:
                await backend.write("acme", "m", "k", b"v", expected_revision=None)
            except TenantVaultError as error:
                errors.append(type(error).__name__)
            await asyncio.sleep(0.1)
        report = backend.gateway.auth.report()
    finally:
        await backend.aclose()
    assert errors == []
    assert report["renewals"] >= 2
