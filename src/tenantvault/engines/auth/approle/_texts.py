"""OpenBao's texts for the AppRole endpoints that more than one module answers with."""

from __future__ import annotations

from typing import Final

from tenantvault._go_text import multierror

__all__ = ["INVALID_CREDENTIALS", "UNSUPPORTED", "role_missing"]

INVALID_CREDENTIALS: Final = "invalid role or secret ID"
# The approle backend's answer to a path it does not serve (go-multierror wrapped).
UNSUPPORTED: Final = multierror(["unsupported path"])


def role_missing(name: str, *, plain: bool = False) -> str:
    """`role "<name>" does not exist`; `plain`: as a plain (multierror-wrapped) error."""
    text = f'role "{name}" does not exist'
    return multierror([text]) if plain else text
