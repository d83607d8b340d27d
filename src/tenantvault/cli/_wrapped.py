"""`-wrap-ttl`: how a wrapped answer is shown, whatever command asked for it.

With `-wrap-ttl` (or VAULT_WRAP_TTL) every request of the run asks for response wrapping, as
in the Vault CLI; the server then answers a `wrap_info` instead of the response, and the
command shows that (its wrapping token is the one secret printed, like `vault -wrap-ttl`)
instead of the output it would have shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantvault.cli._output import Section, View, human_duration

__all__ = ["Wrapped", "wrap_view"]


class Wrapped(Exception):
    """The answer was wrapped and has been shown; the command ends successfully."""


def wrap_view(document: Mapping[str, Any]) -> View:
    """Vault's table of a wrapped answer (`wrapping_token`, ...); JSON: the whole answer."""
    info = document.get("wrap_info")
    info = info if isinstance(info, Mapping) else {}
    fields: dict[str, Any] = {
        "wrapping_token": info.get("token"),
        "wrapping_accessor": info.get("accessor"),
        "wrapping_token_ttl": human_duration(info.get("ttl")),
        "wrapping_token_creation_time": info.get("creation_time"),
        "wrapping_token_creation_path": info.get("creation_path"),
    }
    if info.get("wrapped_accessor"):
        fields["wrapped_accessor"] = info["wrapped_accessor"]
    return View(
        document=dict(document), sections=[Section(rows=list(fields.items()))], fields=fields
    )
