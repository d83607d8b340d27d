"""The rotator protocol (AWS Secrets Manager's four steps), and the `random` and `database`
rotators (`webhook` is in `_webhook`).

A rotator makes the pending value (`create`), applies it where it is used (`set`), proves
it works (`test`) and is told when it becomes current (`finish`; the KV write itself is the
runner's). Each step may run again after a failure (a retry resumes with the same pending
value, as AWS's steps and Vault's WAL do), so each must be idempotent. A step that fails
raises `PhaseError` with a message fit for a status, an audit entry and a log: never a
value, a webhook secret or a response body.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from tenantvault._exceptions import InvalidRequestError, TenantVaultError
from tenantvault._fields import get_bool, get_int, get_str
from tenantvault._password_policy import parse_policy
from tenantvault._paths import parse_path, validate_name
from tenantvault._request import Operation
from tenantvault.rotation._secrets import SecretAccess

__all__ = ["DatabaseRotator", "PhaseContext", "PhaseError", "RandomRotator", "Rotator"]


class PhaseError(Exception):
    """A rotation step failed; the message names the step's problem, never a value."""


@dataclass(frozen=True, slots=True)
class PhaseContext:
    """What a rotator knows of the rotation it serves. `tenant` is '' in the root namespace."""

    tenant: str
    mount: str
    path: str
    field: str
    rotation_id: str
    params: Mapping[str, Any] = dataclasses.field(repr=False)
    secrets: SecretAccess = dataclasses.field(repr=False)


class Rotator(Protocol):
    """One kind of rotation: named in a config's `rotator`."""

    def check(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The params this rotator accepts, normalized; `InvalidRequestError` otherwise."""
        ...

    def public(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The params as a status shows them: without any secret."""
        ...

    async def create(self, context: PhaseContext, current: Mapping[str, Any]) -> dict[str, Any]:
        """The pending value: `{field: new value}`."""
        ...

    async def set(self, context: PhaseContext, pending: dict[str, Any]) -> dict[str, Any]:
        """Apply `pending` where it is used; the pending value (a rotator may learn it here)."""
        ...

    async def test(self, context: PhaseContext, pending: Mapping[str, Any]) -> None:
        """Prove `pending` works."""
        ...

    async def finish(self, context: PhaseContext) -> None:
        """`pending` is about to become the current version."""
        ...


# -- random ---------------------------------------------------------------------------------

_CLASSES: Final = {
    "lowercase": string.ascii_lowercase,
    "uppercase": string.ascii_uppercase,
    "digits": string.digits,
    # AWS's GetRandomPassword punctuation, minus the characters its template excludes
    # because they break connection strings and shells: / @ " ' \
    "symbols": "!#$%&()*+,-.:;<=>?[]^_`{|}~",
}
_DEFAULT_CLASSES: Final = {"lowercase": True, "uppercase": True, "digits": True, "symbols": False}
_MIN_LENGTH: Final = 8
_MAX_LENGTH: Final = 1024


class RandomRotator:
    """A random string from the chosen character classes, one of each at least; or, with
    `params.password_policy`, from the tenant's password policy of that name (generated and
    checked through the Core's `sys/policies/password/<name>`, in the secret's tenant)."""

    def check(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - {"length", "password_policy", *_CLASSES})
        if unknown:
            raise InvalidRequestError(f"unknown params for the random rotator: {unknown}")
        policy = get_str(params, "password_policy")
        if policy is not None:
            if set(params) != {"password_policy"}:
                raise InvalidRequestError(
                    "password_policy decides the length and characters: give it alone"
                )
            validate_name(policy, kind="password policy name")
            return {"password_policy": policy}
        length = get_int(params, "length", default=32, minimum=_MIN_LENGTH)
        if length is None or length > _MAX_LENGTH:
            raise InvalidRequestError(f"length must be between {_MIN_LENGTH} and {_MAX_LENGTH}")
        chosen: dict[str, Any] = {"length": length}
        for name, default in _DEFAULT_CLASSES.items():
            chosen[name] = get_bool(params, name, default=default)
        if not any(chosen[name] for name in _CLASSES):
            raise InvalidRequestError("the random rotator needs at least one character class")
        return chosen

    def public(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(params)

    @staticmethod
    def _alphabets(params: Mapping[str, Any]) -> list[str]:
        return [chars for name, chars in _CLASSES.items() if params.get(name)]

    @staticmethod
    async def _policy_call(context: PhaseContext, suffix: str) -> Mapping[str, Any]:
        name = context.params["password_policy"]
        try:
            response = await context.secrets.call(
                Operation.READ, f"sys/policies/password/{name}{suffix}", None
            )
        except TenantVaultError as error:
            raise PhaseError(f"the password policy could not be used ({error.status})") from None
        return response.data or {}

    async def create(self, context: PhaseContext, current: Mapping[str, Any]) -> dict[str, Any]:
        if "password_policy" in context.params:
            password = (await self._policy_call(context, "/generate")).get("password")
            if not isinstance(password, str) or not password:
                raise PhaseError("the password policy generated no password")
            return {context.field: password}
        alphabets = self._alphabets(context.params)
        everything = "".join(alphabets)
        length = int(context.params["length"])
        # One of each class, the rest from all of them, shuffled by the CSPRNG.
        chars = [secrets.choice(chars) for chars in alphabets]
        chars += [secrets.choice(everything) for _ in range(length - len(chars))]
        for index in range(len(chars) - 1, 0, -1):
            other = secrets.randbelow(index + 1)
            chars[index], chars[other] = chars[other], chars[index]
        return {context.field: "".join(chars)}

    async def set(self, context: PhaseContext, pending: dict[str, Any]) -> dict[str, Any]:
        return pending  # a random value is used only where the secret is read

    async def test(self, context: PhaseContext, pending: Mapping[str, Any]) -> None:
        value = pending.get(context.field)
        if "password_policy" in context.params:
            # The policy as it is now: a value it no longer allows is not promoted.
            text = (await self._policy_call(context, "")).get("policy")
            try:
                policy = parse_policy(str(text))
            except InvalidRequestError:
                raise PhaseError("the password policy no longer parses") from None
            if not isinstance(value, str) or not policy.allows(value):
                raise PhaseError("the pending value does not satisfy the password policy")
            return
        alphabets = self._alphabets(context.params)
        if not isinstance(value, str) or len(value) != int(context.params["length"]):
            raise PhaseError("the pending value does not have the configured length")
        if not all(any(c in chars for c in value) for chars in alphabets):
            raise PhaseError("the pending value lacks a configured character class")

    async def finish(self, context: PhaseContext) -> None:
        return None


# -- database -------------------------------------------------------------------------------

_ENGINE_MODULE: Final = "tenantvault.engines.database"


def has_database_engine() -> bool:
    """Whether this build has the database secrets engine the rotator drives."""
    return importlib.util.find_spec(_ENGINE_MODULE) is not None


class DatabaseRotator:
    """A static role of the tenant's database engine (`params.mount`, `params.role`): `set`
    is the engine's `rotate-role` (it generates the password and changes it in the
    database), `test` reads it back from `static-creds`, and the password becomes the
    secret's `field`."""

    def check(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if not has_database_engine():
            raise InvalidRequestError(
                "the database rotator needs the database secrets engine, "
                "which this server does not have"
            )
        unknown = sorted(set(params) - {"mount", "role"})
        if unknown:
            raise InvalidRequestError(f"unknown params for the database rotator: {unknown}")
        mount = (get_str(params, "mount") or "database").strip("/")
        role = get_str(params, "role")
        if not role:
            raise InvalidRequestError("the database rotator needs params.role")
        parse_path(mount)
        parse_path(role)
        return {"mount": mount + "/", "role": role}

    def public(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(params)

    async def create(self, context: PhaseContext, current: Mapping[str, Any]) -> dict[str, Any]:
        # The engine makes the password in `set`: nothing is pending before that.
        return {}

    async def _static_password(self, context: PhaseContext) -> str:
        params = context.params
        try:
            response = await context.secrets.call(
                Operation.READ, f"{params['mount']}static-creds/{params['role']}", None
            )
        except TenantVaultError as error:
            raise PhaseError(f"reading the static role failed ({error.status})") from None
        password = (response.data or {}).get("password")
        if not isinstance(password, str) or not password:
            raise PhaseError("the static role has no password")
        return password

    async def set(self, context: PhaseContext, pending: dict[str, Any]) -> dict[str, Any]:
        params = context.params
        try:
            await context.secrets.call(
                Operation.UPDATE, f"{params['mount']}rotate-role/{params['role']}", {}
            )
        except TenantVaultError as error:
            raise PhaseError(f"rotate-role failed ({error.status})") from None
        return {context.field: await self._static_password(context)}

    async def test(self, context: PhaseContext, pending: Mapping[str, Any]) -> None:
        if await self._static_password(context) != pending.get(context.field):
            raise PhaseError("the static role's password changed again during the rotation")

    async def finish(self, context: PhaseContext) -> None:
        return None
