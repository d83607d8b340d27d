"""Key terms: the keys that wrap tenants' data keys, rotated by `sys/rotate` as Vault's
barrier keyring.

The embedded store keeps its terms in one record sealed under the master key. The newest
term wraps every new tenant data key; older terms are kept so existing tenants stay readable
until the re-wrap service (`services._rewrap`) has moved them to the newest term. Once
nothing uses an older term and the retention has passed since the rotation, the older terms
are destroyed: a tenant key wrapped before the rotation (in a backup, or a deleted tenant's)
can no longer be unwrapped with the current terms.

Term 0 is not a stored key: it names a tenant key wrapped by the master key itself (stores
made before terms existed); re-wrapping moves those to the newest term too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol, runtime_checkable

from tenantvault import _b64
from tenantvault._exceptions import IntegrityError
from tenantvault.crypto import AeadKey, encode_aad, random_key

__all__ = ["KEYRING_AAD", "KeyRotation", "KeyTerms", "RewrapReport"]

KEYRING_AAD: Final = encode_aad("tenantvault:keyring")


@dataclass(slots=True)
class _Term:
    key: bytes = field(repr=False)
    installed_ns: int


@dataclass(frozen=True, slots=True)
class RewrapReport:
    """One pass of the re-wrap service: tenant keys moved, terms destroyed."""

    rewrapped: int
    destroyed_terms: tuple[int, ...]


class KeyTerms:
    """The store's key terms: `active` wraps new tenant keys; the others only unwrap."""

    def __init__(self, terms: dict[int, _Term]) -> None:
        self._terms = dict(terms)
        self._ciphers: dict[int, AeadKey] = {}

    def __repr__(self) -> str:
        return f"<KeyTerms active={self.active} terms={sorted(self._terms)}>"

    @classmethod
    def new(cls, now_ns: int) -> KeyTerms:
        """Term 1, fresh from the CSPRNG."""
        return cls({1: _Term(random_key(), now_ns)})

    @property
    def active(self) -> int:
        return max(self._terms)

    @property
    def terms(self) -> list[int]:
        return sorted(self._terms)

    def installed_ns(self, term: int) -> int:
        return self._terms[term].installed_ns

    def cipher(self, term: int) -> AeadKey:
        """The AEAD key of `term`; `IntegrityError` for a term that is gone."""
        cached = self._ciphers.get(term)
        if cached is None:
            entry = self._terms.get(term)
            if entry is None:
                raise IntegrityError(f"key term {term} is not in the keyring")
            cached = self._ciphers[term] = AeadKey(entry.key)
        return cached

    def rotate(self, now_ns: int) -> int:
        """Add a term after the newest; return it."""
        term = self.active + 1
        self._terms[term] = _Term(random_key(), now_ns)
        return term

    def destroy_below(self, term: int) -> tuple[int, ...]:
        """Forget every term older than `term` (their keys leave memory with this object)."""
        gone = tuple(number for number in sorted(self._terms) if number < term)
        for number in gone:
            del self._terms[number]
            self._ciphers.pop(number, None)
        return gone

    # -- storage form ----------------------------------------------------------------------

    def seal(self, master: AeadKey) -> bytes:
        document = {
            str(number): {"key": _b64.encode(entry.key), "installed": entry.installed_ns}
            for number, entry in self._terms.items()
        }
        return master.seal(json.dumps(document).encode(), KEYRING_AAD)

    @classmethod
    def open(cls, master: AeadKey, sealed: bytes) -> KeyTerms:
        """The terms sealed by `seal`; `IntegrityError` if tampered with or malformed."""
        document: Any = json.loads(master.open(sealed, KEYRING_AAD))
        try:
            terms = {
                int(number): _Term(_b64.decode(entry["key"]), int(entry["installed"]))
                for number, entry in document.items()
            }
        except (KeyError, TypeError, ValueError, AttributeError):
            raise IntegrityError("the stored keyring is not valid") from None
        if not terms or min(terms) < 1:
            raise IntegrityError("the stored keyring is not valid")
        return cls(terms)


def install_time(ns: int) -> str:
    """Vault's `install_time`: RFC 3339 with nanoseconds, UTC."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


@runtime_checkable
class KeyRotation(Protocol):
    """A store whose tenant keys are wrapped by rotatable key terms (the embedded store)."""

    async def key_status(self) -> dict[str, Any]:
        """Vault's `sys/key-status`: `term`, `install_time`, `encryptions`."""
        ...

    async def rotate_key(self) -> int:
        """Add a key term for new tenant keys (`sys/rotate`); return it."""
        ...

    async def rewrap_keys(self, *, retention_seconds: float) -> RewrapReport:
        """Move tenant keys to the newest term; destroy older terms once unused and retained
        `retention_seconds` past the rotation that replaced them."""
        ...
