"""JWKS fetching and caching for the jwt auth method, against a real local HTTP server: the
timeout, the size bound, no redirects or compression, the TTL cache, the bounded refetch on
an unknown `kid`, one fetch for concurrent logins, and stale keys when the URL fails."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from yarl import URL

from tenantvault.engines.auth.jwt import _jwks
from tenantvault.engines.auth.jwt._egress import JwksEgress
from tenantvault.engines.auth.jwt._jwks import JwksCache, JwksError, JwksFetcher, ssl_context

NS = 1_000_000_000
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _jwk(private: Any, kid: str) -> dict[str, Any]:
    public = private.public_key()
    algorithm = (
        jwt.algorithms.RSAAlgorithm
        if isinstance(public, rsa.RSAPublicKey)
        else (jwt.algorithms.ECAlgorithm)
    )
    return {**json.loads(algorithm.to_jwk(public)), "kid": kid}


class _LoopbackAllowed(JwksEgress):
    """The default egress rule plus loopback: this file's JWKS servers listen on 127.0.0.1,
    which the default rule refuses (tests/server/test_jwks_egress.py tests the rule)."""

    __slots__ = ()

    def check(self, url: str) -> None:
        if URL(url).host != "127.0.0.1":
            super().check(url)

    def resolver(self) -> AbstractResolver | None:
        return None


@pytest.fixture(autouse=True)
def _loopback_jwks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_jwks, "JwksEgress", _LoopbackAllowed)


@dataclass
class Issuer:
    """The local JWKS server: what it serves, and how often it was asked."""

    url: str
    document: dict[str, Any]
    hits: int = 0
    failing: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    state = Issuer("", {"keys": [_jwk(RSA_KEY, "k1")]})

    async def jwks(request: web.Request) -> web.StreamResponse:
        state.hits += 1
        if state.failing:
            return web.Response(status=503)
        return web.json_response(state.document)

    async def slow(request: web.Request) -> web.StreamResponse:
        await state.release.wait()
        return web.json_response(state.document)

    async def big(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b" " * 300_000, content_type="application/json")

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(40):
            await response.write(b" " * 10_000)
        await response.write_eof()
        return response

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/jwks")

    async def compressed(request: web.Request) -> web.StreamResponse:
        body = gzip.compress(json.dumps(state.document).encode())
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def not_json(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>login</html>")

    async def no_keys(request: web.Request) -> web.StreamResponse:
        return web.json_response({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})

    app = web.Application()
    for path, handler in [
        ("/jwks", jwks),
        ("/slow", slow),
        ("/big", big),
        ("/big-chunked", big_chunked),
        ("/redirect", redirect),
        ("/gzip", compressed),
        ("/html", not_json),
        ("/no-keys", no_keys),
    ]:
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    await web.SockSite(runner, listener).start()
    state.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


async def test_fetch_parses_the_keys(issuer: Issuer) -> None:
    issuer.document = {"keys": [_jwk(RSA_KEY, "k1"), _jwk(EC_KEY, "k2")]}
    keys = await JwksFetcher().fetch(issuer.url + "/jwks")
    assert [(k.kid, sorted(k.algorithms)[0]) for k in keys] == [("k1", "PS256"), ("k2", "ES256")]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/big", "too large"),
        ("/big-chunked", "too large"),
        ("/redirect", "HTTP 302"),
        ("/gzip", "compressed"),
        ("/html", "no usable key"),
        ("/no-keys", "no usable key"),
        ("/missing", "HTTP 404"),
    ],
)
async def test_fetch_refuses_what_is_not_a_bounded_plain_key_set(
    issuer: Issuer, path: str, reason: str
) -> None:
    with pytest.raises(JwksError, match=reason):
        await JwksFetcher().fetch(issuer.url + path)


async def test_fetch_times_out(issuer: Issuer) -> None:
    with pytest.raises(JwksError, match="could not fetch"):
        await JwksFetcher(timeout_seconds=0.2).fetch(issuer.url + "/slow")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/jwks", "jwks"])
async def test_only_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(JwksError, match="http or https"):
        await JwksFetcher().fetch(url)


async def test_an_unreachable_url_is_a_fetch_error() -> None:
    with pytest.raises(JwksError, match="could not fetch"):
        await JwksFetcher(timeout_seconds=2).fetch("http://127.0.0.1:9/jwks")


def test_a_bad_ca_pem_is_refused() -> None:
    with pytest.raises(JwksError, match="invalid jwks_ca_pem"):
        ssl_context("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")


def _tls_material(directory: Path) -> tuple[ssl.SSLContext, str]:
    """A CA, and a server certificate for 127.0.0.1 it signed: (server context, CA PEM)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test issuer CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context, ca.public_bytes(serialization.Encoding.PEM).decode()


async def test_https_jwks_is_verified_against_jwks_ca_pem(tmp_path: Path) -> None:
    context, ca_pem = _tls_material(tmp_path)

    async def serve(request: web.Request) -> web.StreamResponse:
        return web.json_response({"keys": [_jwk(RSA_KEY, "k1")]})

    app = web.Application()
    app.router.add_get("/jwks", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    await web.SockSite(runner, listener, ssl_context=context).start()
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/jwks"
    try:
        assert [k.kid for k in await JwksFetcher().fetch(url, ca_pem)] == ["k1"]
        # Without the CA (system roots only) and with another CA, the server is not trusted.
        with pytest.raises(JwksError, match="could not fetch"):
            await JwksFetcher().fetch(url)
        _, other_ca = _tls_material(tmp_path)
        with pytest.raises(JwksError, match="could not fetch"):
            await JwksFetcher().fetch(url, other_ca)
    finally:
        await runner.cleanup()


class FakeClock:
    def __init__(self) -> None:
        self.ns = 1_800_000_000 * NS

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * NS)


def _cache(clock: FakeClock) -> JwksCache:
    return JwksCache(JwksFetcher(), clock=clock, ttl_seconds=300, min_refetch_seconds=30)


async def test_keys_are_cached_for_the_ttl(issuer: Issuer) -> None:
    clock = FakeClock()
    cache = _cache(clock)
    url = issuer.url + "/jwks"
    for _ in range(5):
        assert [k.kid for k in await cache.keys("m", url, "", kid="k1")] == ["k1"]
        clock.advance(50)
    assert issuer.hits == 1
    clock.advance(100)  # 350 s after the fetch
    await cache.keys("m", url, "", kid="k1")
    assert issuer.hits == 2


async def test_an_unknown_kid_refetches_at_most_once_per_interval(issuer: Issuer) -> None:
    clock = FakeClock()
    cache = _cache(clock)
    url = issuer.url + "/jwks"
    await cache.keys("m", url, "", kid="k1")
    # An attacker's stream of made-up kids costs no fetch until the interval has passed...
    for n in range(50):
        assert await cache.keys("m", url, "", kid=f"made-up-{n}") == []
    assert issuer.hits == 1
    # ...and then one, which also finds a key the issuer rotated in meanwhile.
    issuer.document = {"keys": [_jwk(RSA_KEY, "k1"), _jwk(EC_KEY, "k2")]}
    clock.advance(31)
    assert [k.kid for k in await cache.keys("m", url, "", kid="k2")] == ["k2"]
    assert issuer.hits == 2
    assert [k.kid for k in await cache.keys("m", url, "", kid=None)] == ["k1", "k2"]


async def test_concurrent_logins_share_one_fetch(issuer: Issuer) -> None:
    cache = _cache(FakeClock())
    url = issuer.url + "/jwks"
    results = await asyncio.gather(*(cache.keys("m", url, "", kid="k1") for _ in range(20)))
    assert all(len(keys) == 1 for keys in results)
    assert issuer.hits == 1


async def test_stale_keys_serve_while_the_url_fails_and_failures_are_rate_bounded(
    issuer: Issuer,
) -> None:
    clock = FakeClock()
    cache = _cache(clock)
    url = issuer.url + "/jwks"
    await cache.keys("m", url, "", kid="k1")
    issuer.failing = True
    clock.advance(301)
    assert [k.kid for k in await cache.keys("m", url, "", kid="k1")] == ["k1"]
    assert issuer.hits == 2
    for _ in range(10):
        await cache.keys("m", url, "", kid="k1")
    assert issuer.hits == 2  # the next attempt waits for the refetch interval
    clock.advance(31)
    await cache.keys("m", url, "", kid="k1")
    assert issuer.hits == 3


async def test_a_url_that_never_worked_fails_without_hammering_it(issuer: Issuer) -> None:
    clock = FakeClock()
    cache = _cache(clock)
    issuer.failing = True
    for _ in range(10):
        with pytest.raises(JwksError):
            await cache.keys("m", issuer.url + "/jwks", "", kid="k1")
    assert issuer.hits == 1
    issuer.failing = False
    clock.advance(31)
    assert len(await cache.keys("m", issuer.url + "/jwks", "", kid="k1")) == 1


async def test_mounts_and_urls_have_separate_entries(issuer: Issuer) -> None:
    cache = _cache(FakeClock())
    await cache.keys("a", issuer.url + "/jwks", "", kid=None)
    await cache.keys("b", issuer.url + "/jwks", "", kid=None)
    assert issuer.hits == 2
    with pytest.raises(JwksError):
        await cache.keys("a", issuer.url + "/no-keys", "", kid=None)
    cache.forget("b")
    await cache.keys("b", issuer.url + "/jwks", "", kid=None)
    assert issuer.hits == 3
