"""The `jwt` auth method: logins with signed JWTs (workload identity, OAuth access tokens).

`JwtEngine` is registered in `engines/auth/_registry.AUTH_METHODS`. The modules, each one job:
`_config` and `_role` (what the endpoints accept, store and read back), `_keys` (PEM and JWK
keys and the algorithms each admits), `_jwks` (the bounded JWKS fetch and its cache),
`_verify` (signature via PyJWT) and `_claims` (OpenBao's claim checks), `_engine` (routes).
"""

from __future__ import annotations

from tenantvault.engines.auth.jwt._engine import JwtEngine

__all__ = ["JwtEngine"]
