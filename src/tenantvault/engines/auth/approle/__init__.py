"""The AppRole auth method: machine login with a role id and a secret id (Vault's approle)."""

from __future__ import annotations

from tenantvault.engines.auth.approle._engine import AppRoleEngine

__all__ = ["AppRoleEngine"]
