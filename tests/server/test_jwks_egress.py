"""A tenant's `jwks_url` cannot make the server connect into its own network (no blind SSRF):
without the operator's `--jwt-jwks-allow` only public addresses are fetched from, checked on
the addresses the connection uses (a name that resolves to loopback is refused at connect
time, so DNS rebinding gains nothing); with it, only URLs under the allowed prefixes.
Every URL here is on loopback (other private ranges are checked as addresses only: this
suite never sends traffic to them, not even when the check were broken)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from aiohttp import web

from tenantvault._config import ServerSettings
from tenantvault.engines.auth.jwt._egress import (
    NOT_ALLOWED,
    NOT_PUBLIC,
    JwksEgress,
    is_public_address,
)
from tenantvault.engines.auth.jwt._jwks import JwksFetcher, JwksRefusedError
from tenantvault.server import create_app
from tests.server.conftest import BASE_URL, Vault


@dataclass
class Target:
    """A local HTTP server standing for an internal service; counts the requests it got."""

    port: int = 0
    hits: int = 0


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    state = Target()

    async def serve(request: web.Request) -> web.StreamResponse:
        state.hits += 1
        return web.json_response({"keys": []})

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    await web.SockSite(runner, listener).start()
    state.port = listener.getsockname()[1]
    try:
        yield state
    finally:
        await runner.cleanup()


async def _config(vault: Vault, url: str) -> httpx.Response:
    await vault.create_tenant("acme")
    await vault.root("POST", "sys/auth/jwt", namespace="acme", json={"type": "jwt"})
    return await vault.root("POST", "auth/jwt/config", namespace="acme", json={"jwks_url": url})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/jwks",
        "http://localhost:{port}/jwks",  # a name: refused once resolved, before connecting
        "http://[::ffff:127.0.0.1]:{port}/jwks",
        "http://127.0.0.2:{port}/jwks",
        "http://[::1]:{port}/jwks",
    ],
)
async def test_by_default_internal_addresses_are_refused_without_a_connection(
    vault: Vault, target: Target, url: str
) -> None:
    response = await _config(vault, url.format(port=target.port))
    assert (response.status_code, response.json()) == (400, {"errors": [NOT_PUBLIC]})
    assert target.hits == 0


async def test_an_allow_list_admits_its_prefixes_only(root_token: str, target: Target) -> None:
    allowed = f"http://127.0.0.1:{target.port}/idp/"
    settings = ServerSettings(dev=True, dev_root_token=root_token, jwt_jwks_allow=(allowed,))
    async with create_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            for outside in (
                f"http://127.0.0.1:{target.port}/other/jwks",
                f"http://127.0.0.1:{target.port}/idpx/jwks",  # not at a segment boundary
            ):
                response = await _config(vault, outside)
                assert (response.status_code, response.json()) == (
                    400,
                    {"errors": [NOT_ALLOWED]},
                ), outside
            assert target.hits == 0
            # Under the prefix: fetched (an empty key set is refused, but it was asked).
            response = await _config(vault, allowed + "jwks")
            assert response.json() == {"errors": ["error checking jwks URL"]}
            assert target.hits == 1


async def test_the_check_runs_at_fetch_time_on_the_resolved_addresses(target: Target) -> None:
    # A name passes the check before the fetch (it could resolve anywhere later); what it
    # resolves to when the connection is made is what is refused.
    fetcher = JwksFetcher(egress=JwksEgress())
    with pytest.raises(JwksRefusedError, match="public address"):
        await fetcher.fetch(f"http://localhost:{target.port}/jwks")
    assert target.hits == 0
    # The same fetcher with the operator's allow-list connects.
    allowed = JwksFetcher(egress=JwksEgress((f"http://localhost:{target.port}/",)))
    with pytest.raises(Exception, match="no usable key"):
        await allowed.fetch(f"http://localhost:{target.port}/jwks")
    assert target.hits == 1


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 -- an address checked, not bound
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 around 127.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 around 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("not-an-address", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public
