"""The Shamir seal: the master key lives only in memory, after a quorum of unseal key shares.

At `sys/init` a fresh master key and a fresh unseal key are drawn; the unseal key is split
into shares (`_shamir`) that are handed out once and never stored; the master key is stored
in `seal.json` in the data directory, sealed (AES-256-GCM) under the unseal key. `sys/unseal`
collects shares until the threshold, combines them, and opens the master key: a wrong share
fails that authenticated decryption, and the attempt starts over. `sys/seal` drops the master
key (the server closes the store, and every key cache with it).

Vault's texts and checks, in its order, because clients and operators match on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tenantvault import _b64
from tenantvault._exceptions import (
    ConfigurationError,
    IntegrityError,
    InvalidRequestError,
)
from tenantvault.crypto import KEY_SIZE, AeadKey, encode_aad, random_key
from tenantvault.seal import _shamir
from tenantvault.seal._seal import InitResult, SealStatus
from tenantvault.seal._stored import StoredSeal

__all__ = [
    "BAD_COMBINATION",
    "ShamirSeal",
    "check_seal_config",
    "decode_key_share",
    "replace_seal_file",
    "write_seal_file",
]

_ROOT_KEY_AAD: Final = encode_aad("tenantvault:seal:master-key")
# Vault's bounds on a submitted share: a 32-byte key, plus one byte of x coordinate.
_MIN_KEY_BYTES: Final = 16
_MAX_KEY_BYTES: Final = KEY_SIZE + 1
BAD_COMBINATION: Final = (
    "unable to retrieve stored keys: invalid key: failed to decrypt keys from storage: "
    "cipher: message authentication failed"
)


@dataclass(frozen=True, slots=True)
class _SealConfig:
    shares: int
    threshold: int
    sealed_master_key: bytes = field(repr=False)


def decode_key_share(text: str) -> bytes:
    """A share as `sys/unseal` takes it: hex, else standard base64; Vault's bounds."""
    try:
        key = bytes.fromhex(text)
    except ValueError:
        try:
            key = _b64.decode(text)
        except ValueError:
            raise InvalidRequestError("'key' must be a valid hex or base64 string") from None
    if len(key) < _MIN_KEY_BYTES:
        raise InvalidRequestError(
            f"invalid key: key is shorter than minimum {_MIN_KEY_BYTES} bytes"
        )
    if len(key) > _MAX_KEY_BYTES:
        raise InvalidRequestError(f"invalid key: key is longer than maximum {_MAX_KEY_BYTES} bytes")
    return key


def check_seal_config(
    shares: int, threshold: int, *, prefix: str = "invalid seal configuration: "
) -> None:
    """Vault's `SealConfig.Validate` for the shares asked at init (PGP keys: refused earlier)."""
    if shares < 1:
        raise InvalidRequestError(prefix + "shares must be at least one")
    if threshold < 1:
        raise InvalidRequestError(prefix + "threshold must be at least one")
    if shares > 1 and threshold == 1:
        raise InvalidRequestError(prefix + "threshold must be greater than one for multiple shares")
    if shares > _shamir.MAX_SHARES:
        raise InvalidRequestError(prefix + "shares must be less than 256")
    if threshold > shares:
        raise InvalidRequestError(prefix + "threshold cannot be larger than shares")


class ShamirSeal(StoredSeal["_SealConfig"]):
    """The seal state of one data directory: initialized or not, the shares collected so far."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self._parts: list[bytes] = []
        self._nonce = ""

    def __repr__(self) -> str:
        state = (
            "uninitialized" if self._config is None else "sealed" if self._sealed else "unsealed"
        )
        return f"<ShamirSeal {state}>"

    def _read(self, path: Path) -> _SealConfig | None:
        return _read_config(path)

    def status(self) -> SealStatus:
        config = self._config
        return SealStatus(
            type="shamir",
            initialized=config is not None,
            sealed=self._sealed,
            threshold=0 if config is None else config.threshold,
            shares=0 if config is None else config.shares,
            progress=len(self._parts),
            nonce=self._nonce,
        )

    # -- transitions -------------------------------------------------------------------------

    async def initialize(
        self, shares: int, threshold: int, *, recovery_shares: int = 0, recovery_threshold: int = 0
    ) -> InitResult:
        """Vault's `sys/init`: create the store under a new master key, hand out the shares.

        The server stays sealed afterwards, as Vault does with Shamir: unsealing proves the
        shares work before anything is written under them.
        """
        check_seal_config(shares, threshold)
        async with self._lock:
            if self._config is not None:
                raise InvalidRequestError("Vault is already initialized")
            if self._on_init is None:
                raise ConfigurationError("the seal is not bound to a server")
            master_key, unseal_key = random_key(), random_key()
            parts = [unseal_key] if shares == 1 else _shamir.split(unseal_key, shares, threshold)
            sealed = AeadKey(unseal_key).seal(master_key, _ROOT_KEY_AAD)
            config = _SealConfig(shares, threshold, sealed)
            # The store first, then the seal file: a crash in between leaves a store that
            # refuses to start without its seal file, never a seal file for no store.
            root_token = await self._on_init(master_key)
            await asyncio.to_thread(write_seal_file, self._path, _document(config))
            self._config = config
            return InitResult(parts, root_token)

    async def unseal(self, key: bytes) -> None:
        """Add one share; at the threshold, combine, open the master key and unseal."""
        async with self._lock:
            config = self._require_initialized()
            if not self._sealed:
                return
            if any(secrets.compare_digest(part, key) for part in self._parts):
                return  # the same share twice counts once, as in Vault
            if not self._parts:
                self._nonce = str(uuid.uuid4())
            self._parts.append(key)
            if len(self._parts) < config.threshold:
                return
            parts, self._parts, self._nonce = self._parts, [], ""
            master_key = _open_master_key(config, parts)
            if self._on_unseal is None:
                raise ConfigurationError("the seal is not bound to a server")
            await self._on_unseal(master_key)
            self._sealed = False

    @property
    def quorum(self) -> int:
        """Shares needed to rebuild the unseal key (0 before init)."""
        return 0 if self._config is None else self._config.threshold

    def check_shares(self, parts: list[bytes]) -> None:
        """`InvalidRequestError` unless `parts` rebuild the unseal key (generate-root)."""
        _open_master_key(self._require_initialized(), parts)

    async def rekey(self, parts: list[bytes], shares: int, threshold: int) -> list[bytes]:
        """New unseal key shares (`sys/rotate/root`): `parts` must rebuild the current unseal
        key; the master key is sealed under a fresh one, whose shares are returned once. The
        old shares stop working, also on copies of the data directory taken from now on."""
        async with self._lock:
            config = self._require_initialized()
            master_key = _open_master_key(config, parts, what="failed to read root key")
            unseal_key = random_key()
            new_parts = (
                [unseal_key] if shares == 1 else _shamir.split(unseal_key, shares, threshold)
            )
            sealed = AeadKey(unseal_key).seal(master_key, _ROOT_KEY_AAD)
            new_config = _SealConfig(shares, threshold, sealed)
            await asyncio.to_thread(replace_seal_file, self._path, _document(new_config))
            self._config = new_config
            return new_parts

    def reset(self) -> None:
        """Forget the shares of the attempt in progress (`reset: true`)."""
        self._require_initialized()
        if not self._sealed:
            raise InvalidRequestError("vault is unsealed")
        self._parts, self._nonce = [], ""


def _open_master_key(
    config: _SealConfig, parts: list[bytes], *, what: str = "unable to retrieve stored keys"
) -> bytes:
    if config.threshold == 1:
        unseal_key = parts[0]
    else:
        try:
            unseal_key = _shamir.combine(parts)
        except ValueError as error:
            raise InvalidRequestError(f"failed to compute combined key: {error}") from None
    failure = BAD_COMBINATION.replace("unable to retrieve stored keys", what)
    if len(unseal_key) != KEY_SIZE:
        raise InvalidRequestError(failure)
    try:
        return AeadKey(unseal_key).open(config.sealed_master_key, _ROOT_KEY_AAD)
    except IntegrityError:
        raise InvalidRequestError(failure) from None


def _read_config(path: Path) -> _SealConfig | None:
    try:
        document: Any = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"cannot read the seal file {path}") from error
    try:
        if document["type"] != "shamir":
            raise ConfigurationError(
                f"the seal file {path} is not a shamir seal's (seal migration is not supported)"
            )
        return _SealConfig(
            int(document["secret_shares"]),
            int(document["secret_threshold"]),
            _b64.decode(document["sealed_master_key"]),
        )
    except (KeyError, TypeError, ValueError):
        raise ConfigurationError(f"the seal file {path} is malformed") from None


def _document(config: _SealConfig) -> dict[str, Any]:
    return {
        "type": "shamir",
        "secret_shares": config.shares,
        "secret_threshold": config.threshold,
        "sealed_master_key": _b64.encode(config.sealed_master_key),
    }


def replace_seal_file(path: Path, document: dict[str, Any]) -> None:
    """Replace `path` atomically and durably (a rekey): the old file or the new, never half."""
    upcoming = path.with_name(path.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        upcoming.unlink()
    write_seal_file(upcoming, document)
    os.replace(upcoming, path)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_seal_file(path: Path, document: dict[str, Any]) -> None:
    """Write `path` (0600) durably and only if absent: a seal file is never replaced."""
    data = json.dumps(document, indent=2).encode() + b"\n"
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        try:
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)  # fails rather than replace an existing seal file
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except FileExistsError:
        raise InvalidRequestError("Vault is already initialized") from None
    except OSError as error:
        raise ConfigurationError(f"cannot write the seal file {path}") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
