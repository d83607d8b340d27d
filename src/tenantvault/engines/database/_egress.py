"""Where a tenant's connection configs may connect: the operator's `--database-allow` list.

A `connection_url` comes from a tenant admin, so without a list the server connects wherever
that admin points it (as Vault does), loopback and internal addresses included. With a list
(`HOST[:PORT]` entries, port 5432 when left out), a config whose URL names any other host or
port is refused when written (400) and when used (a config stored before the list changed).
The URL's host is compared as written, never resolved: the operator vouches for what the
names they allow resolve to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tenantvault._allow_list import check_allow_host, is_allowed_host
from tenantvault._exceptions import InvalidRequestError
from tenantvault.engines.database._postgres import DEFAULT_PORT, connection_target

__all__ = ["FLAG", "DatabaseAllowList", "NotAllowedError"]

FLAG: Final = "--database-allow"


class NotAllowedError(InvalidRequestError):
    """The config's URL points somewhere the operator has not allowed (400)."""

    def __init__(self) -> None:
        super().__init__(
            f"connection_url points to a host or port the operator has not allowed (serve {FLAG})"
        )


class DatabaseAllowList:
    """The operator's allowed database hosts; empty: every host (Vault's behaviour)."""

    def __init__(self, entries: tuple[str, ...] = ()) -> None:
        for entry in entries:
            check_allow_host(entry, flag=FLAG, default_port=DEFAULT_PORT)
        self._entries = entries

    def check(self, details: Mapping[str, Any]) -> None:
        """Refuse (`NotAllowedError`) a checked config's URL outside the list."""
        if not self._entries:
            return
        host, port = connection_target(str(details.get("connection_url") or ""))
        if not is_allowed_host(host, port, self._entries, default_port=DEFAULT_PORT):
            raise NotAllowedError()
