"""AppRole login: a role-id and (if the role binds one) a secret-id become a `LoginResult`;
the Core mints the token. Failed attempts count against the mount's `LoginThrottle`."""

from __future__ import annotations

from tenantvault._exceptions import InvalidRequestError
from tenantvault._request import Response
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call
from tenantvault.engines.auth._cidr import address_allowed
from tenantvault.engines.auth._errors import PlainError
from tenantvault.engines.auth._login import LoginResult
from tenantvault.engines.auth._settings import AuthSettings
from tenantvault.engines.auth._throttle import LoginThrottle
from tenantvault.engines.auth.approle._role import BATCH, Role
from tenantvault.engines.auth.approle._store import AppRoleStore, SecretIdEntry
from tenantvault.engines.auth.approle._texts import INVALID_CREDENTIALS

__all__ = ["AppRoleLogin"]


class AppRoleLogin:
    """The login handler of every approle mount, with the failed-login throttle."""

    def __init__(self, settings: AuthSettings) -> None:
        self._clock = settings.clock
        self._throttle = LoginThrottle(
            clock=settings.clock,
            failures=settings.login_failures,
            window_seconds=settings.login_window_seconds,
        )

    async def login(self, call: Call, mount: Mount) -> Response:
        raw_role_id = call.data.get("role_id")
        role_id = raw_role_id.strip() if isinstance(raw_role_id, str) else ""
        if not role_id:
            raise PlainError("missing role_id")  # Vault: a plain error (500)
        store = await AppRoleStore.open(mount.storage)
        role = await store.role_by_role_id(role_id)
        address = call.client_address
        # Failures are counted per (mount, role, address); unknown role-ids share one key
        # per address, so guessing role-ids is limited as well.
        key = (mount.uuid, role.name if role is not None else "", address or "")
        async with self._throttle.attempt(key):
            if role is None:
                raise InvalidRequestError(INVALID_CREDENTIALS)
            entry = await self._check_secret_id(call, store, role, address)
            shown = address or ""
            if role.secret_id_bound_cidrs and not address_allowed(
                address, role.secret_id_bound_cidrs
            ):
                raise InvalidRequestError(
                    f'source address "{shown}" unauthorized by CIDR restrictions on the role: '
                    "%!w(<nil>)"
                )
        bound = list(entry.token_bound_cidrs) if entry and entry.token_bound_cidrs else []
        bound = bound or list(role.token_bound_cidrs)
        if role.token_strictly_bind_ip and address:
            bound = [address]
        metadata = dict(entry.metadata) if entry is not None else {}
        metadata["role_name"] = role.name
        return Response(
            login=LoginResult(
                policies=tuple(role.token_policies),
                display_name="",  # the Core names the mount (`approle`, `acme-auth-approle`)
                metadata=metadata,
                no_default_policy=role.token_no_default_policy,
                ttl_seconds=role.token_ttl,
                max_ttl_seconds=role.token_max_ttl,
                explicit_max_ttl_seconds=role.token_explicit_max_ttl,
                period_seconds=role.token_period,
                num_uses=role.token_num_uses,
                bound_cidrs=tuple(bound),
                token_type="batch" if role.token_type == BATCH else "service",
            )
        )

    async def _check_secret_id(
        self, call: Call, store: AppRoleStore, role: Role, address: str | None
    ) -> SecretIdEntry | None:
        """The secret-id's entry after taking one use of it (None if the role binds none)."""
        if not role.bind_secret_id:
            return None
        raw = call.data.get("secret_id")
        secret_id = raw.strip() if isinstance(raw, str) else ""
        if not secret_id:
            raise InvalidRequestError("missing secret_id")
        entry = await store.secret_id(role.name, secret_id)
        if entry is None or entry.is_expired(self._clock()):
            raise InvalidRequestError(INVALID_CREDENTIALS)
        # The CIDR binding before the use is taken (as OpenBao on transactional storage,
        # which rolls the decrement back): a refused address cannot burn a secret-id's uses.
        if entry.cidr_list and not address_allowed(address, entry.cidr_list):
            shown = address or ""
            if entry.num_uses > 0:
                raise InvalidRequestError(
                    f'source address "{shown}" unauthorized by CIDR restrictions on the '
                    "secret ID: %!w(<nil>)"
                )
            raise InvalidRequestError(
                f'source address "{shown}" unauthorized through CIDR restrictions on the secret ID'
            )
        used = await store.consume(role.name, secret_id, self._clock())
        if used is None:
            raise InvalidRequestError(INVALID_CREDENTIALS)
        return used
