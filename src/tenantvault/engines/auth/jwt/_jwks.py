"""JWKS key sets fetched from a `jwks_url`: a bounded fetch, and a TTL cache that refetches
on an unknown `kid` at most once per interval.

The fetch has a total timeout, reads at most `max_bytes` (no compression, no redirects, no
proxy from the environment), verifies TLS against the mount's `jwks_ca_pem` when it has one
(the system roots otherwise), connects only where the operator's rule lets it (`_egress`:
the allow-list, else public addresses only), and keeps only asymmetric signature keys. A
failure is a `JwksError` whose text names the cause class only: never the response, which
an attacker who controls the URL would otherwise read back through the error.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import orjson

from tenantvault._clock import Clock
from tenantvault.engines.auth.jwt._egress import EgressRefusedError, JwksEgress
from tenantvault.engines.auth.jwt._keys import VerificationKey, parse_jwks

__all__ = [
    "DEFAULT_JWKS_MAX_BYTES",
    "DEFAULT_JWKS_MIN_REFETCH_SECONDS",
    "DEFAULT_JWKS_TIMEOUT_SECONDS",
    "DEFAULT_JWKS_TTL_SECONDS",
    "JwksCache",
    "JwksError",
    "JwksFetcher",
    "JwksRefusedError",
]

DEFAULT_JWKS_TIMEOUT_SECONDS: Final = 5.0
# Real key sets are a few KiB; 256 KiB leaves room for many keys and bounds the parse work.
DEFAULT_JWKS_MAX_BYTES: Final = 256 * 1024
DEFAULT_JWKS_TTL_SECONDS: Final = 300
# An unknown kid (a rotation, or an attacker's made-up kid) refetches at most this often.
DEFAULT_JWKS_MIN_REFETCH_SECONDS: Final = 30
# One cached set per mount; a table of this many mounts is plenty and bounds the memory.
_MAX_ENTRIES: Final = 4096
_NS: Final = 1_000_000_000
_CHUNK: Final = 16 * 1024


class JwksError(Exception):
    """The key set could not be fetched or holds no usable key (the text is safe to show)."""


class JwksRefusedError(JwksError):
    """The operator's rule (`_egress`) does not let the server fetch this URL."""


def ssl_context(ca_pem: str) -> ssl.SSLContext:
    """A verifying TLS context trusting `ca_pem` only; `JwksError` if it holds no certificate."""
    try:
        return ssl.create_default_context(cadata=ca_pem)
    except (ssl.SSLError, ValueError, TypeError):
        raise JwksError("invalid jwks_ca_pem") from None


class JwksFetcher:
    """GETs one JWKS document with a timeout and a size bound, and parses its keys."""

    __slots__ = ("_egress", "_max_bytes", "_timeout_seconds")

    def __init__(
        self,
        *,
        timeout_seconds: float = DEFAULT_JWKS_TIMEOUT_SECONDS,
        max_bytes: int = DEFAULT_JWKS_MAX_BYTES,
        egress: JwksEgress | None = None,
    ) -> None:
        self._timeout_seconds = timeout_seconds
        self._max_bytes = max_bytes
        # Where a fetch may connect (default: public addresses only, `_egress`).
        self._egress = egress if egress is not None else JwksEgress()

    def __repr__(self) -> str:
        return f"JwksFetcher(timeout_seconds={self._timeout_seconds}, max_bytes={self._max_bytes})"

    async def fetch(self, url: str, ca_pem: str = "") -> list[VerificationKey]:
        """The usable keys at `url`; `JwksError` on any failure."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise JwksError("jwks_url must be an http or https URL")
        try:
            self._egress.check(url)
        except EgressRefusedError as error:
            raise JwksRefusedError(str(error)) from None
        context: ssl.SSLContext | bool = ssl_context(ca_pem) if ca_pem else True
        try:
            body = await self._get(url, context)
        except JwksError:
            raise
        except EgressRefusedError as error:
            raise JwksRefusedError(str(error)) from None
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError, ValueError):
            raise JwksError("could not fetch the JWKS") from None
        try:
            return parse_jwks(orjson.loads(body))
        except (orjson.JSONDecodeError, ValueError):
            raise JwksError("the JWKS document holds no usable key") from None

    async def _get(self, url: str, context: ssl.SSLContext | bool) -> bytes:
        timeout = aiohttp.ClientTimeout(total=self._timeout_seconds)
        # No DNS cache: every fetch resolves again through the egress rule's resolver, so
        # the addresses it checked are the ones connected to (no rebinding in between).
        connector = aiohttp.TCPConnector(resolver=self._egress.resolver(), use_dns_cache=False)
        async with (
            # trust_env=False: no HTTP(S)_PROXY or .netrc from the server's environment.
            aiohttp.ClientSession(
                timeout=timeout, trust_env=False, auto_decompress=False, connector=connector
            ) as s,
            s.get(
                url,
                ssl=context,
                allow_redirects=False,
                headers={"Accept": "application/json", "Accept-Encoding": "identity"},
            ) as response,
        ):
            if response.status != 200:
                raise JwksError(f"the JWKS URL answered HTTP {response.status}")
            if response.headers.get("Content-Encoding", "identity") != "identity":
                raise JwksError("the JWKS URL answered a compressed body")
            if (response.content_length or 0) > self._max_bytes:
                raise JwksError("the JWKS document is too large")
            body = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > self._max_bytes:
                    raise JwksError("the JWKS document is too large")
            return bytes(body)


@dataclass(slots=True)
class _Entry:
    source: tuple[str, str]  # (url, ca_pem) the keys came from
    keys: list[VerificationKey] | None  # None: the last fetch failed
    fetched_ns: int


class JwksCache:
    """Key sets per mount, fresh for `ttl_seconds`; an unknown `kid` refetches at most once
    per `min_refetch_seconds`, and so does a failed fetch (a down or hostile URL is not hit
    by every login). Concurrent logins of one mount share one fetch."""

    __slots__ = (
        "_clock",
        "_entries",
        "_fetcher",
        "_inflight",
        "_min_refetch_ns",
        "_retry_age_ns",
        "_ttl_ns",
    )

    def __init__(
        self,
        fetcher: JwksFetcher,
        *,
        clock: Clock,
        ttl_seconds: int = DEFAULT_JWKS_TTL_SECONDS,
        min_refetch_seconds: int = DEFAULT_JWKS_MIN_REFETCH_SECONDS,
    ) -> None:
        self._fetcher = fetcher
        self._clock = clock
        self._ttl_ns = ttl_seconds * _NS
        self._min_refetch_ns = min_refetch_seconds * _NS
        if not 0 < min_refetch_seconds < ttl_seconds:
            raise ValueError("JWKS cache needs 0 < min_refetch_seconds < ttl_seconds")
        # An entry this old is due for a refetch after `min_refetch_seconds`.
        self._retry_age_ns = self._ttl_ns - self._min_refetch_ns
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Future[_Entry]] = {}

    def __repr__(self) -> str:
        return f"JwksCache(entries={len(self._entries)})"

    @property
    def fetcher(self) -> JwksFetcher:
        """The fetcher (a config write checks its URL with it, uncached)."""
        return self._fetcher

    def forget(self, key: Hashable) -> None:
        """Drop what is cached for `key` (config rewritten, mount disabled)."""
        self._entries.pop(key, None)

    async def keys(
        self, key: Hashable, url: str, ca_pem: str, *, kid: str | None
    ) -> list[VerificationKey]:
        """The keys of `url` that may have signed a token with `kid` (all, without a kid)."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry.source != (url, ca_pem):
            entry = None
        age = now - entry.fetched_ns if entry is not None else None
        if entry is None or age is None or age >= self._ttl_ns:
            entry = await self._refresh(key, url, ca_pem)
        elif entry.keys is None:
            if age >= self._min_refetch_ns:
                entry = await self._refresh(key, url, ca_pem)
        elif kid is not None and not _with_kid(entry.keys, kid) and age >= self._min_refetch_ns:
            entry = await self._refresh(key, url, ca_pem)
        if entry.keys is None:
            raise JwksError("could not fetch the JWKS")
        return _with_kid(entry.keys, kid) if kid is not None else list(entry.keys)

    async def _refresh(self, key: Hashable, url: str, ca_pem: str) -> _Entry:
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            previous = self._entries.get(key)
            try:
                entry = _Entry((url, ca_pem), await self._fetcher.fetch(url, ca_pem), self._clock())
            except JwksError:
                now = self._clock()
                if previous is not None and previous.keys and previous.source == (url, ca_pem):
                    # Stale if error: an outage of the URL keeps the keys it last served, and
                    # the next attempt comes `min_refetch_seconds` from now.
                    entry = _Entry(previous.source, previous.keys, now - self._retry_age_ns)
                else:
                    entry = _Entry((url, ca_pem), None, now)
            self._store(key, entry)
            future.set_result(entry)
            return entry
        except BaseException:
            # Cancelled mid-fetch: the waiters fail too (they retry with their next login).
            future.set_exception(JwksError("could not fetch the JWKS"))
            future.exception()  # retrieved: no "exception never retrieved" warning
            raise
        finally:
            del self._inflight[key]

    def _store(self, key: Hashable, entry: _Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > _MAX_ENTRIES:
            self._entries.popitem(last=False)


def _with_kid(keys: list[VerificationKey], kid: str) -> list[VerificationKey]:
    return [key for key in keys if key.kid == kid]
