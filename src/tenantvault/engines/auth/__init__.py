"""Auth methods: mounts under `auth/` that turn a credential into a tenant token.

How to write an auth method (AppRole in `approle/` is the worked example)
========================================================================

An auth method is an `Engine` (`engines/_protocol.py`) like kv or transit: one object per
type, serving every mount of that type. Register it once, in `_registry.AUTH_METHODS`
(`type` → factory taking an `AuthSettings`: the clock and the login limits); then
`POST sys/auth/<path> {"type": "<type>"}` adds a row `auth/<path>/` to the tenant's mount
table (the same table as secrets engines), and every request under `auth/<path>/` is routed
to `engine.route(operation, rest, mount)` with the mount-relative `rest` ("login",
"role/app", ...). `auth/token/` is built in, always there and never disabled.

Storage. The engine reaches storage only through `mount.storage` (a `MountStorage` sealed
under the mount's own key, bound to one tenant and one mount). Disabling the mount deletes
its key and records, calls `engine.destroy(mount)`, and revokes every token it issued.

Two kinds of routes:

1. Management routes (`role/...`, `config`, ...): ordinary `Route`s. They declare an ACL
   path `auth/<path>/<rest>` and a capability; the Core checks the caller's token.

2. Login routes: `Route(acl_path, "update", handler, mints_token="login", parameters=...)`.
   - They run *without a token*: a token sent with the request is ignored, as in Vault.
     The tenant is the namespace the request names (header or `/v1/<tenant>/auth/...`),
     so a login can only ever mint a token in the tenant whose mount table holds the role.
   - A login route declares nothing else (no sudo, extra or mount access): the Core refuses
     such a route rather than guess.
   - Every attempt is audited like any request (request and response entries; every string
     of the request data, so also a secret-id or a JWT, appears only as its salted HMAC).
   - The handler gets `call.data` (only the declared parameters), `call.client_address`
     (the peer address, None in-process: it never satisfies a CIDR binding) and no token
     views. It decides the identity and answers `Response(login=LoginResult(...))`:
     policies, TTLs, num_uses, period, bound CIDRs, token type, metadata, display name.
     It may add `warnings`. It never mints: the Core (`_login.mint_login`) adds `default`
     (unless `no_default_policy`), applies the mount's TTL limits (`sys/auth/<p>/tune`),
     refuses `root`, mints an orphan token in the mount's tenant (path `auth/<p>/login`,
     `token_bound_cidrs` enforced by the token store on every later request) and answers
     Vault's `auth` block.
   - Refuse with the exceptions of `tenantvault._exceptions` (400 `InvalidRequestError`
     with Vault's text, 403 `PermissionDeniedError`), `_errors.PlainError` where Vault
     answers a plain error (500 with the text).
   - Rate-limit failures: hold a `LoginThrottle` (built from `AuthSettings`: its clock,
     `login_failures`, `login_window_seconds`) and run the credential check inside
     `async with throttle.attempt((mount.uuid, role, call.client_address or ""))`. It
     answers 429 once a key failed `failures` times within the window (also for the right
     credential), and counts every `InvalidRequestError`/`PermissionDeniedError` raised
     inside. Use the same key for a known and an unknown role only if that is what you mean.
   - CIDR helpers: `_cidr.parse_cidrs` (request input → canonical list, Vault's errors) and
     `_cidr.address_allowed(call.client_address, cidrs)`.

   - `display_name` in the `LoginResult` is the method's own part (JWT: the user claim,
     AppRole: ""); the Core puts the mount point in front, as Vault (`approle`,
     `acme-auth-approle`, `acme-auth-jwt-<user>`).

Renewal. Every auth method implements `renew(mount, record) -> RenewTerms`
(`_renew.RenewingEngine`): when a token it issued is renewed (auth/token/renew, renew-self,
renew-accessor) the token store asks the Core's hook (`_renew.Renewals`), which finds the
issuing mount by `record.issuer` and asks the engine. Raise to refuse (Vault: the role is
gone, `_renew.role_gone`); answer the role's *current* token TTL, max TTL and period, which
the Core caps by the mount's tuned TTLs. Find the role from `record.meta` (what the login's
`LoginResult.metadata` recorded).

Audit. The Core audits every login attempt; nothing to do in the engine. Never put a
credential into an error message, a warning or a `repr`.

Not yet: tokens are service tokens even when a role asks for `batch`; there is no identity
store, so `entity_id` is empty; a renewal that is capped answers no warning (Vault adds
"TTL of ... exceeded the effective max_ttl ...").
"""

from __future__ import annotations

from tenantvault.engines.auth._errors import LoginThrottledError, PlainError
from tenantvault.engines.auth._login import LoginResult, TokenType
from tenantvault.engines.auth._throttle import (
    DEFAULT_LOGIN_FAILURES,
    DEFAULT_LOGIN_WINDOW_SECONDS,
    LoginThrottle,
)

__all__ = [
    "DEFAULT_LOGIN_FAILURES",
    "DEFAULT_LOGIN_WINDOW_SECONDS",
    "LoginResult",
    "LoginThrottle",
    "LoginThrottledError",
    "PlainError",
    "TokenType",
]
