"""The upstream client's rules: answers mapped once, retries only where safe, a breaker, a
bounded FIFO queue, per-call token and namespace — on real OpenBao, and on a scripted HTTP
responder for the failures a healthy OpenBao never produces on demand (5xx, garbage)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tenantvault import (
    BackendTimeoutError,
    BackendUnavailableError,
    BadGatewayError,
    ConfigurationError,
    PermissionDeniedError,
)
from tenantvault.upstream import UpstreamClient, UpstreamSettings
from tenantvault.upstream._client import UpstreamResponse, wait_for_kv_mount
from tests._openbao import OpenBaoDev, running_openbao, unique_root

Reply = tuple[int, bytes]


@dataclass
class Responder:
    """An HTTP/1.1 server on loopback that answers each request with `reply(path)`."""

    reply: Callable[[str], Reply]
    delay: float = 0.0
    content_type: str = "application/json"
    requests: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.writers.add(writer)
        try:
            await self._serve(reader, writer)
        finally:
            self.writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                self.requests.append((method, target))
                await asyncio.sleep(self.delay)
                status, body = self.reply(target)
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: {self.content_type}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()


@contextlib.asynccontextmanager
async def responding(
    reply: Callable[[str], Reply], delay: float = 0.0, content_type: str = "application/json"
) -> AsyncIterator[Responder]:
    responder = Responder(reply, delay, content_type)
    server = await asyncio.start_server(responder.handle, "127.0.0.1", 0)
    responder.port = server.sockets[0].getsockname()[1]
    try:
        yield responder
    finally:
        server.close()
        for writer in list(responder.writers):
            writer.transport.abort()
        for task in list(responder.handlers):
            task.cancel()
        await asyncio.gather(*responder.handlers, return_exceptions=True)
        await server.wait_closed()


def _settings(address: str, **changes: Any) -> UpstreamSettings:
    """Quick backoff, and a breaker out of the way unless a test sets its threshold."""
    settings = UpstreamSettings(
        address,
        retries=2,
        backoff_base_seconds=0.001,
        backoff_max_seconds=0.002,
        breaker_threshold=100,
    )
    return dataclasses.replace(settings, **changes)


async def test_a_real_upstream_answers_with_token_and_namespace_per_call(
    openbao_dev: OpenBaoDev,
) -> None:
    """Each call carries its own token and namespace: a secret written in a namespace is
    found there and not at the root, and a wrong token is refused with Vault's 403."""
    namespace = unique_root("ns")
    root = openbao_dev.root_token
    async with UpstreamClient(_settings(openbao_dev.addr)) as client:
        await client.write(f"sys/namespaces/{namespace}", {}, token=root)
        await client.write(
            "sys/mounts/kv",
            {"type": "kv", "options": {"version": "2"}},
            token=root,
            namespace=namespace,
        )
        # A just-enabled KV v2 mount answers 400 "Upgrading…" for a moment (seen in CI).
        await wait_for_kv_mount(
            lambda: client.request("GET", "kv/config", token=root, namespace=namespace)
        )
        await client.write("kv/data/a b?#%", {"data": {"k": "v"}}, token=root, namespace=namespace)
        body = await client.read("kv/data/a b?#%", token=root, namespace=namespace)
        assert body is not None
        assert body["data"]["data"] == {"k": "v"}
        assert await client.list("kv/metadata/", token=root, namespace=namespace) == ["a b?#%"]
        assert await client.read("kv/data/a b?#%", token=root) is None
        with pytest.raises(PermissionDeniedError):
            await client.read("kv/data/a b?#%", token="not-a-token", namespace=namespace)
        versions = await client.request(
            "GET", "kv/data/a b?#%", token=root, namespace=namespace, params={"version": "9"}
        )
        assert versions.status == 404


async def test_a_sealed_upstream_is_a_503_that_says_so(tmp_path: Path) -> None:
    """A real OpenBao, sealed: every call is 503 'upstream is sealed', not a 500 or a hang."""
    with running_openbao(tmp_path) as server:
        async with UpstreamClient(_settings(server.addr)) as client:
            await client.write("sys/seal", {}, token=server.root_token)
            with pytest.raises(BackendUnavailableError, match="sealed"):
                await client.read("secret/data/x", token=server.root_token)


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"<html>proxy error</html>", 200), (b"[1, 2]", 200), (b"", 200), (b"{", 400)],
)
async def test_garbage_from_the_upstream_is_a_502(body: bytes, status: int) -> None:
    """Not JSON, not an object, or empty where a body is due: 502, not a traceback."""
    async with responding(lambda path: (status, body)) as upstream:
        async with UpstreamClient(_settings(upstream.address)) as client:
            with pytest.raises(BadGatewayError):
                await client.read("secret/data/x", token="t")


async def test_a_response_of_the_wrong_shape_is_a_502() -> None:
    async with responding(lambda path: (200, b'{"data": "not an object"}')) as upstream:
        async with UpstreamClient(_settings(upstream.address)) as client:
            with pytest.raises(BadGatewayError):
                await client.list("secret/metadata/", token="t")


async def test_only_idempotent_calls_are_retried_on_5xx() -> None:
    """A 502 is retried for GET (retries + 1 attempts) but a POST is sent exactly once: a
    write that may have been applied is never repeated."""
    async with responding(lambda path: (502, b'{"errors": ["bad gateway"]}')) as upstream:
        async with UpstreamClient(_settings(upstream.address, retries=2)) as client:
            with pytest.raises(BadGatewayError):
                await client.read("secret/data/x", token="t")
            assert len(upstream.requests) == 3
            upstream.requests.clear()
            with pytest.raises(BadGatewayError):
                await client.write("secret/data/x", {"data": {}}, token="t")
            assert len(upstream.requests) == 1


async def test_429_is_retried_and_then_a_503() -> None:
    answers = iter([(429, b"{}"), (200, b'{"data": {"ok": true}}')])
    async with responding(lambda path: next(answers)) as upstream:
        async with UpstreamClient(_settings(upstream.address)) as client:
            body = await client.read("secret/data/x", token="t")
            assert body == {"data": {"ok": True}}
    async with responding(lambda path: (429, b"{}")) as upstream:
        async with UpstreamClient(_settings(upstream.address)) as client:
            with pytest.raises(BackendUnavailableError, match="rate limit"):
                await client.read("secret/data/x", token="t")


async def test_an_unreachable_upstream_is_a_503_and_retried_even_for_writes() -> None:
    """Refused connections sent nothing, so any call is retried; the answer is 503."""
    async with responding(lambda path: (200, b"{}")) as upstream:
        address = upstream.address
    async with UpstreamClient(_settings(address)) as client:
        with pytest.raises(BackendUnavailableError, match="unreachable"):
            await client.write("secret/data/x", {"data": {}}, token="t")


async def test_a_slow_upstream_times_out_with_504_and_is_not_retried() -> None:
    async with responding(lambda path: (200, b"{}"), delay=5.0) as upstream:
        async with UpstreamClient(_settings(upstream.address, timeout_seconds=0.2)) as client:
            with pytest.raises(BackendTimeoutError):
                await client.read("secret/data/x", token="t")
            assert len(upstream.requests) == 1


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_breaker_opens_fails_fast_and_closes_after_a_good_probe() -> None:
    """After N failures in a row calls fail at once without reaching the upstream; after
    the reset time one probe goes through, and its success closes the breaker."""
    healthy = False

    def reply(path: str) -> Reply:
        trouble = b'{"errors": ["local node not active but active cluster node not found"]}'
        return (200, b'{"data": {}}') if healthy else (500, trouble)

    clock = _Clock()
    async with responding(reply) as upstream:
        settings = _settings(
            upstream.address, retries=0, breaker_threshold=3, breaker_reset_seconds=5.0
        )
        async with UpstreamClient(settings, clock=clock) as client:
            for _ in range(3):
                with pytest.raises(BadGatewayError):
                    await client.read("x", token="t")
            assert client.breaker.state == "open"
            sent = len(upstream.requests)
            with pytest.raises(BackendUnavailableError, match="circuit open"):
                await client.read("x", token="t")
            assert len(upstream.requests) == sent, "an open breaker must not call upstream"
            clock.now += 5.0
            assert client.breaker.state == "half-open"
            with pytest.raises(BadGatewayError):
                await client.read("x", token="t")  # the probe fails: open again
            assert client.breaker.state == "open"
            clock.now += 5.0
            healthy = True
            assert await client.read("x", token="t") == {"data": {}}
            assert client.breaker.state == "closed"


async def test_waiting_calls_are_bounded_and_served_in_order() -> None:
    """With one connection and room for two waiters, a fourth call is refused at once (503)
    and the waiters reach the upstream in the order they queued."""
    async with responding(lambda path: (200, b'{"data": {}}'), delay=0.2) as upstream:
        settings = _settings(upstream.address, pool_size=1, max_waiting=2)
        async with UpstreamClient(settings) as client:

            async def call(index: int) -> object:
                await asyncio.sleep(index * 0.01)  # queue in index order
                return await client.read(f"k/{index}", token="t")

            results = await asyncio.gather(*(call(i) for i in range(4)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, BackendUnavailableError)]
    assert len(refused) == 1
    assert "waiting" in str(refused[0])
    assert [target for _, target in upstream.requests] == ["/v1/k/0", "/v1/k/1", "/v1/k/2"]


@pytest.mark.parametrize(
    "address", ["http://vault.example:8200", "ftp://127.0.0.1:1", "https://h:1/path"]
)
def test_cleartext_is_only_for_loopback(address: str) -> None:
    with pytest.raises(ConfigurationError):
        UpstreamSettings(address)


def test_loopback_cleartext_and_https_anywhere_are_accepted() -> None:
    UpstreamSettings("http://127.0.0.1:8200")
    UpstreamSettings("http://[::1]:8200")
    UpstreamSettings("https://vault.example:8200")


async def test_https_upstream_with_its_ca_file(tmp_path: Path) -> None:
    """A real OpenBao over TLS: trusted through `ca_file`; without it the certificate is
    refused (503 with a reason, not retried into a hang)."""
    with running_openbao(tmp_path, tls=True) as server:
        assert server.ca_file is not None
        async with UpstreamClient(UpstreamSettings(server.addr, ca_file=server.ca_file)) as client:
            health = await client.read("sys/health", token=None)
            assert health is not None
            assert health["initialized"] is True
        async with UpstreamClient(UpstreamSettings(server.addr)) as client:
            with pytest.raises(BackendUnavailableError, match="certificate"):
                await client.read("sys/health", token=None)


async def test_a_half_open_breaker_lets_exactly_one_probe_through() -> None:
    """While the probe is in flight, every other call still fails fast."""
    clock = _Clock()
    answers = iter([(500, b"{}")])

    def reply(path: str) -> Reply:
        return next(answers, (200, b'{"data": {}}'))

    async with responding(reply, delay=0.2) as upstream:
        settings = _settings(upstream.address, retries=0, breaker_threshold=1)
        async with UpstreamClient(settings, clock=clock) as client:
            with pytest.raises(BadGatewayError):
                await client.read("x", token="t")
            clock.now += 10
            results = await asyncio.gather(
                *(client.read(f"k/{i}", token="t") for i in range(5)), return_exceptions=True
            )
    assert sum(isinstance(r, BackendUnavailableError) for r in results) == 4
    assert [target for _, target in upstream.requests][1:] == ["/v1/k/0"]


async def test_a_500_about_the_request_is_an_answer_not_an_outage() -> None:
    """OpenBao answers some caller errors with 500 and a message (transit: a signing version
    too high): returned to the caller, neither retried nor counted by the breaker, so a few
    bad requests of one tenant never open the breaker for every tenant."""

    def reply(path: str) -> Reply:
        return (500, b'{"errors": ["1 error occurred:\\n\\t* requested version too high\\n\\n"]}')

    async with responding(reply) as upstream:
        settings = _settings(upstream.address, retries=3, breaker_threshold=2)
        async with UpstreamClient(settings, clock=_Clock()) as client:
            for _ in range(5):
                answer = await client.request("POST", "transit/sign/k", token="t", json={})
                assert answer.status == 500
                assert answer.errors
            assert client.breaker.state == "closed"
            assert len(upstream.requests) == 5, "a request error must not be retried"
            with pytest.raises(BadGatewayError):
                await client.read("x", token="t")  # tenantvault's own call: the upstream failed


async def test_a_new_kv_mount_is_waited_for_until_its_upgrade_is_done() -> None:
    """OpenBao answers 400 "Upgrading from non-versioned to versioned data" for a moment
    after a KV v2 mount is enabled: the wait polls through it, and stops at any other answer."""
    upgrading = UpstreamResponse(
        400,
        {
            "errors": [
                "Upgrading from non-versioned to versioned data. This backend will be "
                "unavailable for a brief period and will resume service shortly."
            ]
        },
    )
    answers = [upgrading, upgrading, UpstreamResponse(200, {"data": {}})]
    probes: list[int] = []

    async def probe() -> UpstreamResponse:
        probes.append(1)
        return answers[len(probes) - 1]

    await wait_for_kv_mount(probe)
    assert len(probes) == 3
    other = [UpstreamResponse(403, {"errors": ["permission denied"]})]
    probes.clear()

    async def refused() -> UpstreamResponse:
        probes.append(1)
        return other[0]

    await wait_for_kv_mount(refused)
    assert len(probes) == 1


OCSP_ERROR = bytes.fromhex("30030a0102")  # an OCSP internalError response (DER)


async def test_raw_answers_come_back_as_bytes_a_500_included() -> None:
    """`send_raw` (pki OCSP): a non-JSON answer is returned unparsed with its status — an
    endpoint's 500 error body is an answer, neither retried nor counted by the breaker."""
    async with responding(
        lambda path: (500, OCSP_ERROR), content_type="application/ocsp-response"
    ) as upstream:
        settings = _settings(upstream.address, retries=3, breaker_threshold=2)
        async with UpstreamClient(settings, clock=_Clock()) as client:
            for _ in range(3):
                raw = await client.send_raw(
                    "POST", "pki/ocsp", token="t", content=b"\x30\x00", idempotent=True
                )
                assert (raw.status, raw.content, raw.parsed) == (500, OCSP_ERROR, None)
            assert client.breaker.state == "closed"
            assert len(upstream.requests) == 3
            with pytest.raises(BadGatewayError):
                await client.read("x", token="t")  # the JSON path still refuses DER


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error", "attempts"),
    [
        (503, b'{"errors": ["Vault is sealed"]}', "application/json", "sealed", 1),
        (503, b"<html>down</html>", "text/html", "unavailable", 3),
        (429, b"", "text/plain", "rate limit", 3),
        (502, b"<html>proxy</html>", "text/html", "upstream error", 3),
        (200, b"not json", "application/json", "invalid response", 1),
    ],
)
async def test_raw_failures_map_as_for_json_calls(
    status: int, body: bytes, content_type: str, error: str, attempts: int
) -> None:
    """Sealed, unavailable, rate-limited and broken upstreams fail `send_raw` as they fail
    `request` (retried where idempotent), whatever the body; a body labelled JSON is JSON."""
    async with responding(lambda path: (status, body), content_type=content_type) as upstream:
        async with UpstreamClient(_settings(upstream.address, retries=2)) as client:
            with pytest.raises((BackendUnavailableError, BadGatewayError), match=error):
                await client.send_raw("GET", "pki/ocsp/MAA=", token="t")
            assert len(upstream.requests) == attempts


async def test_a_raw_json_refusal_is_kept_parsed() -> None:
    """A JSON 404 from the upstream's router (no such mount) is kept as `parsed`."""
    reply = (404, b'{"errors": ["no handler for route"]}')
    async with responding(lambda path: reply) as upstream:
        async with UpstreamClient(_settings(upstream.address)) as client:
            raw = await client.send_raw("GET", "pki/ocsp/MAA=", token="t")
            assert raw.parsed is not None
            assert (raw.status, raw.parsed.errors) == (404, ["no handler for route"])
