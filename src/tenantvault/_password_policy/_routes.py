"""`sys/policies/password/*`: Vault's password policy endpoints, per tenant.

`LIST sys/policies/password`, `POST|GET|DELETE sys/policies/password/<name>` and `GET
sys/policies/password/<name>/generate`, with OpenBao's statuses and texts (each error wrapped
in go-multierror's "1 error occurred" as OpenBao's handler returns it). A generated password
is the answer's only secret: the audit trail HMACs response data as it does any secret's.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
    TenantVaultError,
    UnsupportedOperationError,
)
from tenantvault._fields import get_str
from tenantvault._go_text import multierror
from tenantvault._password_policy._rules import check_stored, parse_policy
from tenantvault._password_policy._store import PasswordPolicyStore
from tenantvault._paths import validate_name
from tenantvault._request import Operation, Response
from tenantvault.engines._route import Call, Route

__all__ = ["PasswordPolicyRoutes"]

_BASE: Final = "policies/password"
_POLICY: Final = frozenset({"policy"})
_NONE: Final[frozenset[str]] = frozenset()


def _wrapped(error: TenantVaultError) -> TenantVaultError:
    """The error as OpenBao's handler returns it (its text inside a multierror list)."""
    return type(error)(multierror([error.message]))


def _missing() -> NotFoundError:
    return NotFoundError(multierror(["policy does not exist"]))


def _decoded(raw: str) -> str:
    """The policy text, base64-decoded when it is valid base64 (as OpenBao tries)."""
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return raw


class PasswordPolicyRoutes:
    """Routes of `sys/policies/password/*` over the tenants' password policy store."""

    def __init__(self, store: PasswordPolicyStore) -> None:
        self._store = store

    @staticmethod
    def handles(rest: str) -> bool:
        """Whether a `sys/`-relative path is one of these endpoints."""
        return rest == _BASE or rest.startswith(_BASE + "/")

    def route(self, operation: Operation, rest: str) -> Route:
        """The route of `sys/<rest>`."""
        name = rest.removeprefix(_BASE).strip("/")
        if not name:
            if operation is not Operation.LIST:
                raise _wrapped(UnsupportedOperationError())
            return Route(f"sys/{_BASE}/", "list", self._list, mount="sys", parameters=_NONE)
        if operation is Operation.LIST:
            raise _wrapped(UnsupportedOperationError())
        generate = name.endswith("/generate")
        name = name.removesuffix("/generate")
        validate_name(name, kind="password policy name")
        acl = f"sys/{rest.strip('/')}"
        if generate:
            if operation is not Operation.READ:
                raise _wrapped(UnsupportedOperationError())

            async def run_generate(call: Call) -> Response:
                return await self._generate(call, name)

            return Route(acl, "read", run_generate, mount="sys", parameters=_NONE)
        if operation is Operation.READ:

            async def run_read(call: Call) -> Response:
                text = await self._store.read_text(call.tenant, name)
                if text is None:
                    raise _missing()
                return Response(data={"policy": text})

            return Route(acl, "read", run_read, mount="sys", parameters=_NONE)
        if operation is Operation.DELETE:

            async def run_delete(call: Call) -> Response:
                await self._store.delete(call.tenant, name)
                return Response.no_content()

            return Route(acl, "delete", run_delete, mount="sys", parameters=_NONE)
        if operation in (Operation.UPDATE, Operation.CREATE):

            async def run_write(call: Call) -> Response:
                return await self._write(call, name)

            async def exists(tenant: str) -> bool:
                return await self._store.read_text(tenant, name) is not None

            return Route(
                acl,
                "create" if operation is Operation.CREATE else None,
                run_write,
                exists=exists if operation is Operation.UPDATE else None,
                mount="sys",
                parameters=_POLICY,
            )
        raise _wrapped(UnsupportedOperationError())

    async def _list(self, call: Call) -> Response:
        keys = await self._store.list(call.tenant)
        if not keys:
            raise NotFoundError()
        return Response(data={"keys": keys})

    async def _write(self, call: Call, name: str) -> Response:
        raw = get_str(call.data, "policy") or ""
        if not raw:
            raise InvalidRequestError(multierror(["missing policy"]))
        text = _decoded(raw)
        try:
            check_stored(parse_policy(text))
        except InvalidRequestError as error:
            raise _wrapped(error) from None
        await self._store.write(call.tenant, name, text)
        return Response.no_content()

    async def _generate(self, call: Call, name: str) -> Response:
        policy = await self._store.read(call.tenant, name)
        if policy is None:
            raise _missing()
        try:
            password = policy.generate()
        except TenantVaultError as error:
            raise _wrapped(
                type(error)(f"failed to generate password from policy: {error.message}")
            ) from None
        return Response(data={"password": password})
