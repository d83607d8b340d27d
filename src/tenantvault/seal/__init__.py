"""Vault's seal for the embedded store: the file seal (a key file) and the Shamir seal (key
shares; the master key in memory only), with Vault's seal endpoints."""

from __future__ import annotations

from tenantvault.seal._backend import SealedBackend
from tenantvault.seal._endpoints import answer_sealed, seal_gate
from tenantvault.seal._seal import (
    SEALED_MESSAGE,
    FileSeal,
    InitResult,
    Seal,
    SealedError,
    SealStatus,
)
from tenantvault.seal._shamir_seal import ShamirSeal
from tenantvault.seal._stored import SEAL_FILENAME

__all__ = [
    "SEALED_MESSAGE",
    "SEAL_FILENAME",
    "FileSeal",
    "InitResult",
    "Seal",
    "SealStatus",
    "SealedBackend",
    "SealedError",
    "ShamirSeal",
    "answer_sealed",
    "seal_gate",
]
