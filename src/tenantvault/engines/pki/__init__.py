"""The pki engine type: Vault's PKI secrets engine, one certificate authority set per mount."""

from tenantvault.engines.pki._auto_tidy import AutoTidy, run_auto_tidy
from tenantvault.engines.pki._engine import PKIEngine
from tenantvault.engines.pki._expiry import PkiExpiry

__all__ = ["AutoTidy", "PKIEngine", "PkiExpiry", "run_auto_tidy"]
