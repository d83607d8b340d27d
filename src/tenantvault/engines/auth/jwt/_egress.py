"""Where a tenant's `jwks_url` may make the server connect: the operator's allow-list, or
else only public addresses (no blind SSRF into the server's own network).

A tenant admin writes `jwks_url`; the server then GETs it. Without a rule that is a request
the tenant aims at anything the server can reach: a cloud metadata endpoint, an admin port
on loopback, a service on the private network. So:

- With `serve --jwt-jwks-allow PREFIX` (repeatable), a `jwks_url` must be under one of the
  prefixes (compared as parsed URLs: scheme, host, port, then the path at a segment
  boundary, the rule of `--rotation-webhook-allow`). The operator vouches for those hosts,
  so their addresses are not restricted further (an IdP on the private network works).
- Without an allow-list (the default), any http(s) URL, but the fetch connects only to
  global unicast addresses: loopback, private (RFC 1918, fc00::/7), link-local (so
  169.254.169.254), shared (100.64/10), unspecified, reserved and multicast addresses are
  refused, also inside IPv4-mapped, 6to4 and NAT64 IPv6 addresses, and Teredo ones.
  The check runs on the addresses the connection will use — the resolver hands aiohttp only
  addresses it checked, with no DNS cache — so a name that resolves to a public address at
  config write and to 127.0.0.1 at login (DNS rebinding) is refused at login.

Both rules apply at config write and again at every fetch (the operator may have narrowed
the list since the config was written).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Final

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from tenantvault._allow_list import check_allow_prefix as check_shared_prefix
from tenantvault._allow_list import is_allowed_url

__all__ = ["JwksEgress", "check_allow_prefix", "is_public_address"]

_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
NOT_ALLOWED: Final = "jwks_url is not under a prefix the operator allowed (--jwt-jwks-allow)"
NOT_PUBLIC: Final = (
    "jwks_url must reach a public address (loopback, private and link-local addresses "
    "need the operator's --jwt-jwks-allow)"
)


class EgressRefusedError(Exception):
    """The URL or an address it resolves to is not one the server may connect to."""


def check_allow_prefix(prefix: str) -> None:
    """A `--jwt-jwks-allow` entry (`ConfigurationError` if it is not a URL prefix)."""
    check_shared_prefix(prefix, flag="--jwt-jwks-allow")


def is_public_address(text: str) -> bool:
    """Whether the address `text` is global unicast, also what an IPv6 form embeds."""
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None:
            return False  # tunnels to an address we cannot see
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            address = embedded
    return address.is_global and not address.is_multicast


class _PublicOnlyResolver(AbstractResolver):
    """Resolves like the system, then refuses the name unless every address is public."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        # All or nothing: a name with one private address among public ones is refused too.
        if not results or not all(is_public_address(r["host"]) for r in results):
            raise EgressRefusedError(NOT_PUBLIC)
        return results

    async def close(self) -> None:
        await self._inner.close()


class JwksEgress:
    """The operator's rule for JWKS fetches (see the module docstring)."""

    __slots__ = ("_allow",)

    def __init__(self, allow: tuple[str, ...] = ()) -> None:
        for prefix in allow:
            check_allow_prefix(prefix)
        self._allow = allow

    def __repr__(self) -> str:
        return f"JwksEgress(allow={len(self._allow)} prefixes)"

    def check(self, url: str) -> None:
        """Refuse (`EgressRefusedError`) a URL outside the rule, before any connection."""
        if self._allow:
            if not is_allowed_url(url, self._allow):
                raise EgressRefusedError(NOT_ALLOWED)
            return
        try:
            host = URL(url).host or ""
        except ValueError:
            raise EgressRefusedError(NOT_PUBLIC) from None
        try:
            ipaddress.ip_address(host.strip("[]").partition("%")[0])
        except ValueError:
            return  # a name: the resolver checks what it resolves to, at connect time
        # An address literal never reaches a resolver: it is checked here.
        if not is_public_address(host.strip("[]")):
            raise EgressRefusedError(NOT_PUBLIC)

    def resolver(self) -> AbstractResolver | None:
        """The resolver a fetch connects through (None: the system's, for allowed hosts)."""
        return None if self._allow else _PublicOnlyResolver()
