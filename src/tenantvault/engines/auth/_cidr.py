"""CIDR bindings: parse a role's or token's CIDR list once, and check a client address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from tenantvault._exceptions import InvalidRequestError

__all__ = ["address_allowed", "is_subset", "parse_cidrs"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_cidrs(raw: Any, *, field: str) -> list[str]:
    """A CIDR list from a request (comma-separated string or list), canonical and validated.

    A bare address is accepted as a /32 (/128), as Vault's `parseutil.ParseAddrs` does.
    """
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        items: list[Any] = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, list):
        items = raw
    else:
        raise InvalidRequestError(f"invalid value for {field}: expected a list of CIDR blocks")
    cidrs: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            if item == "":
                continue
            raise InvalidRequestError(f"invalid value for {field}: expected a list of CIDR blocks")
        try:
            network = ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            # Vault's text; the value is the caller's own configuration, not a secret.
            raise InvalidRequestError(f'invalid CIDR block "{item.strip()}"') from None
        cidrs.append(str(network))
    return cidrs


def _networks(cidrs: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def address_allowed(address: str | None, cidrs: Iterable[str]) -> bool:
    """Whether `address` is inside one of `cidrs` (an empty list binds nothing: True).

    An unknown address (an in-process call) never satisfies a binding: fail closed.
    """
    networks = _networks(cidrs)
    if not networks:
        return True
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 (dual-stack listeners)
    return any(ip.version == net.version and ip in net for net in networks)


def is_subset(inner: Iterable[str], outer: Iterable[str]) -> bool:
    """Whether every block of `inner` lies inside some block of `outer` (empty outer: any)."""
    outers = _networks(outer)
    if not outers:
        return True
    return all(
        any(
            net.version == big.version
            and net.network_address in big
            and net.broadcast_address in big
            for big in outers
        )
        for net in _networks(inner)
    )
