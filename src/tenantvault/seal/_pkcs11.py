"""The PKCS#11 seal (auto-unseal): the master key is wrapped by a key that never leaves an HSM.

`seal.json` holds the master key as the HSM wrapped it — AES-GCM under a secret key
(`CKM_AES_GCM`) or RSA-OAEP under a key pair's public half (`CKM_RSA_PKCS_OAEP`, opened by
the private half). At every start the HSM unwraps it and the server unseals itself; without
the HSM (token removed, wrong PIN, key gone) the server refuses to start, saying which. The
master key is never written anywhere else: the store is opened with it in memory.

At `sys/init` Vault's recovery keys are handed out instead of unseal keys: Shamir shares of
a recovery key the server keeps only a check of (sealed under that key).

Library: `python-pkcs11` (the `[hsm]` extra), imported only when this seal is used.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tenantvault import _b64
from tenantvault._exceptions import ConfigurationError, IntegrityError, InvalidRequestError
from tenantvault.crypto import AeadKey, encode_aad, random_key
from tenantvault.seal import _shamir
from tenantvault.seal._seal import InitResult, SealStatus
from tenantvault.seal._shamir_seal import (
    BAD_COMBINATION as _BAD_COMBINATION,
)
from tenantvault.seal._shamir_seal import check_seal_config, write_seal_file
from tenantvault.seal._stored import StoredSeal

__all__ = ["MECHANISMS", "Pkcs11Seal", "Pkcs11Settings"]

MECHANISMS: Final = ("CKM_AES_GCM", "CKM_RSA_PKCS_OAEP")
_MASTER_KEY_AAD: Final = encode_aad("tenantvault:seal:pkcs11-master-key")
_RECOVERY_CHECK: Final = b"tenantvault recovery key check"
_RECOVERY_AAD: Final = encode_aad("tenantvault:seal:recovery-check")
_GCM_NONCE_BYTES: Final = 12
# Vault's defaults for `recovery_shares` / `recovery_threshold` when init names none.
_DEFAULT_RECOVERY: Final = (5, 3)


@dataclass(frozen=True, slots=True)
class Pkcs11Settings:
    """Where the wrapping key is: the module, the token (label or slot), the PIN, the key."""

    library: Path
    key_label: str
    pin: str = field(repr=False)
    token_label: str | None = None
    slot: int | None = None
    mechanism: str = "CKM_AES_GCM"

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise ConfigurationError(
                "the PKCS#11 mechanism must be CKM_AES_GCM or CKM_RSA_PKCS_OAEP"
            )
        if (self.token_label is None) == (self.slot is None):
            raise ConfigurationError("name the PKCS#11 token by its label or its slot (one)")

    @property
    def token_name(self) -> str:
        return (
            f"label {self.token_label!r}" if self.token_label is not None else f"slot {self.slot}"
        )


class _Hsm:
    """One PKCS#11 session per operation (blocking: the seal runs these off the loop)."""

    def __init__(self, settings: Pkcs11Settings) -> None:
        self._settings = settings

    def _session(self) -> Any:
        try:
            import pkcs11
        except ModuleNotFoundError:
            raise ConfigurationError(
                "the pkcs11 seal needs python-pkcs11: pip install 'tenantvault[hsm]'"
            ) from None
        settings = self._settings
        try:
            library = pkcs11.lib(str(settings.library))
        except (pkcs11.PKCS11Error, OSError):
            raise ConfigurationError(
                f"cannot load the PKCS#11 library {settings.library}"
            ) from None
        try:
            if settings.token_label is not None:
                token = library.get_token(token_label=settings.token_label)
            else:
                slots = [slot for slot in library.get_slots() if slot.slot_id == settings.slot]
                if not slots:
                    raise pkcs11.exceptions.NoSuchToken()
                token = slots[0].get_token()
        except (pkcs11.exceptions.NoSuchToken, pkcs11.exceptions.TokenNotPresent):
            raise ConfigurationError(
                f"the HSM token ({settings.token_name}) is not present"
            ) from None
        except pkcs11.PKCS11Error as error:
            raise ConfigurationError(
                f"the HSM token ({settings.token_name}) cannot be reached: {type(error).__name__}"
            ) from None
        try:
            return token.open(user_pin=settings.pin)
        except pkcs11.exceptions.PinIncorrect:
            raise ConfigurationError(
                f"the HSM refused the PIN for its token ({settings.token_name})"
            ) from None
        except pkcs11.PKCS11Error as error:
            raise ConfigurationError(
                f"cannot log in to the HSM token ({settings.token_name}): {type(error).__name__}"
            ) from None

    def _key(self, session: Any, *, private: bool) -> Any:
        import pkcs11
        from pkcs11 import KeyType, ObjectClass

        settings = self._settings
        if settings.mechanism == "CKM_AES_GCM":
            key_type, object_class = KeyType.AES, ObjectClass.SECRET_KEY
        else:
            key_type = KeyType.RSA
            object_class = ObjectClass.PRIVATE_KEY if private else ObjectClass.PUBLIC_KEY
        try:
            return session.get_key(
                label=settings.key_label, key_type=key_type, object_class=object_class
            )
        except (pkcs11.exceptions.NoSuchKey, pkcs11.exceptions.MultipleObjectsReturned):
            raise ConfigurationError(
                f"no single {settings.mechanism} key labelled {settings.key_label!r} on the HSM "
                f"token ({settings.token_name})"
            ) from None

    def wrap(self, secret: bytes) -> bytes:
        """`secret`, encrypted by the HSM key (AES-GCM: nonce ‖ ciphertext ‖ tag)."""
        import pkcs11
        from pkcs11 import MGF, Mechanism
        from pkcs11.mechanisms import GCMParams

        with self._session() as session:
            key = self._key(session, private=False)
            try:
                if self._settings.mechanism == "CKM_AES_GCM":
                    nonce = secrets.token_bytes(_GCM_NONCE_BYTES)
                    params = GCMParams(nonce, _MASTER_KEY_AAD, 128)
                    return nonce + bytes(
                        key.encrypt(secret, mechanism=Mechanism.AES_GCM, mechanism_param=params)
                    )
                # SoftHSM and most HSMs offer OAEP with SHA-1 and MGF1-SHA-1 (safe for OAEP).
                oaep = (Mechanism.SHA_1, MGF.SHA1, None)
                return bytes(
                    key.encrypt(secret, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep)
                )
            except pkcs11.PKCS11Error as error:
                raise ConfigurationError(
                    f"the HSM could not wrap the master key: {type(error).__name__}"
                ) from None

    def unwrap(self, blob: bytes) -> bytes:
        """The secret `wrap` encrypted; `ConfigurationError` if the HSM key does not open it."""
        import pkcs11
        from pkcs11 import MGF, Mechanism
        from pkcs11.mechanisms import GCMParams

        with self._session() as session:
            key = self._key(session, private=True)
            try:
                if self._settings.mechanism == "CKM_AES_GCM":
                    nonce, sealed = blob[:_GCM_NONCE_BYTES], blob[_GCM_NONCE_BYTES:]
                    params = GCMParams(nonce, _MASTER_KEY_AAD, 128)
                    return bytes(
                        key.decrypt(sealed, mechanism=Mechanism.AES_GCM, mechanism_param=params)
                    )
                oaep = (Mechanism.SHA_1, MGF.SHA1, None)
                return bytes(
                    key.decrypt(blob, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep)
                )
            except pkcs11.PKCS11Error:
                raise ConfigurationError(
                    "the HSM key did not open the sealed master key (another key, or a "
                    "tampered seal file)"
                ) from None


@dataclass(frozen=True, slots=True)
class _Config:
    mechanism: str
    key_label: str
    wrapped_master_key: bytes = field(repr=False)
    recovery_shares: int
    recovery_threshold: int
    recovery_check: bytes = field(repr=False)


class Pkcs11Seal(StoredSeal[_Config]):
    """Auto-unseal through an HSM: initialized once, unsealed at every start by the HSM."""

    def __init__(self, data_dir: Path, settings: Pkcs11Settings) -> None:
        super().__init__(data_dir)
        self._settings = settings
        self._hsm = _Hsm(settings)

    def __repr__(self) -> str:
        return f"<Pkcs11Seal {'sealed' if self._sealed else 'unsealed'}>"

    def _read(self, path: Path) -> _Config | None:
        return _read_config(path)

    def status(self) -> SealStatus:
        config = self._config
        return SealStatus(
            type="pkcs11",
            initialized=config is not None,
            sealed=self._sealed,
            threshold=0 if config is None else config.recovery_threshold,
            shares=0 if config is None else config.recovery_shares,
            progress=0,
            nonce="",
            recovery_seal=True,
        )

    async def auto_unseal(self) -> None:
        """Unwrap the master key with the HSM and unseal (at start)."""
        async with self._lock:
            config = self._config
            if config is None or not self._sealed or self._on_unseal is None:
                return
            master_key = await asyncio.to_thread(self._hsm.unwrap, config.wrapped_master_key)
            await self._on_unseal(master_key)
            self._sealed = False

    async def initialize(
        self, shares: int, threshold: int, *, recovery_shares: int = 0, recovery_threshold: int = 0
    ) -> InitResult:
        """Vault's init with auto-unseal: recovery key shares, no unseal keys; unsealed after."""
        if shares or threshold:
            raise InvalidRequestError(
                "parameters secret_shares,secret_threshold not applicable to seal type pkcs11"
            )
        if not recovery_shares and not recovery_threshold:
            recovery_shares, recovery_threshold = _DEFAULT_RECOVERY
        check_seal_config(recovery_shares, recovery_threshold)
        async with self._lock:
            if self._config is not None:
                raise InvalidRequestError("Vault is already initialized")
            if self._on_init is None or self._on_unseal is None:
                raise ConfigurationError("the seal is not bound to a server")
            master_key, recovery_key = random_key(), random_key()
            wrapped = await asyncio.to_thread(self._hsm.wrap, master_key)
            parts = (
                [recovery_key]
                if recovery_shares == 1
                else _shamir.split(recovery_key, recovery_shares, recovery_threshold)
            )
            config = _Config(
                self._settings.mechanism,
                self._settings.key_label,
                wrapped,
                recovery_shares,
                recovery_threshold,
                AeadKey(recovery_key).seal(_RECOVERY_CHECK, _RECOVERY_AAD),
            )
            root_token = await self._on_init(master_key)
            await asyncio.to_thread(write_seal_file, self._path, _document(config))
            self._config = config
            await self._on_unseal(master_key)
            self._sealed = False
            return InitResult([], root_token, recovery_shares=parts)

    async def unseal(self, key: bytes) -> None:
        """Nothing to give: the HSM unseals (Vault answers an auto-unsealed server's status)."""
        if self._config is None:
            raise InvalidRequestError("Vault is not initialized")

    @property
    def quorum(self) -> int:
        """Recovery shares needed (0 before init)."""
        return 0 if self._config is None else self._config.recovery_threshold

    def check_shares(self, parts: list[bytes]) -> None:
        """`InvalidRequestError` unless `parts` rebuild the recovery key (generate-root)."""
        config = self._config
        if config is None:
            raise InvalidRequestError("Vault is not initialized")
        try:
            recovery_key = parts[0] if config.recovery_threshold == 1 else _shamir.combine(parts)
            if AeadKey(recovery_key).open(config.recovery_check, _RECOVERY_AAD) == _RECOVERY_CHECK:
                return
        except (ValueError, IntegrityError):
            pass
        raise InvalidRequestError(_BAD_COMBINATION)

    def reset(self) -> None:
        if not self._sealed:
            raise InvalidRequestError("vault is unsealed")


def _document(config: _Config) -> dict[str, Any]:
    return {
        "type": "pkcs11",
        "mechanism": config.mechanism,
        "key_label": config.key_label,
        "wrapped_master_key": _b64.encode(config.wrapped_master_key),
        "recovery_shares": config.recovery_shares,
        "recovery_threshold": config.recovery_threshold,
        "recovery_check": _b64.encode(config.recovery_check),
    }


def _read_config(path: Path) -> _Config | None:
    try:
        document: Any = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"cannot read the seal file {path}") from error
    if not isinstance(document, dict) or document.get("type") != "pkcs11":
        raise ConfigurationError(
            f"the seal file {path} is not a pkcs11 seal's (seal migration is not supported)"
        )
    try:
        return _Config(
            str(document["mechanism"]),
            str(document["key_label"]),
            _b64.decode(document["wrapped_master_key"]),
            int(document["recovery_shares"]),
            int(document["recovery_threshold"]),
            _b64.decode(document["recovery_check"]),
        )
    except (KeyError, TypeError, ValueError):
        raise ConfigurationError(f"the seal file {path} is malformed") from None
