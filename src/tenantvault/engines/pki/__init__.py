"""The pki engine type: Vault's PKI secrets engine, one certificate authority set per mount."""

from tenantvault.engines.pki._engine import PKIEngine
from tenantvault.engines.pki._expiry import PkiExpiry

__all__ = ["PKIEngine", "PkiExpiry"]
