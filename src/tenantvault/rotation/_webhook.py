"""The `webhook` rotator: one signed HTTP POST of JSON per phase to a tenant's own hook.

`params.url` must lie under a prefix the operator allow-listed (`serve
--rotation-webhook-allow`), so a tenant cannot make the server call anything else (no SSRF);
redirects are not followed, each call has a time limit and the answer a size limit. The body
is signed with `X-Tenantvault-Signature: sha256=<hex HMAC-SHA256 of the raw body>` under
`params.secret`, which is sealed in the rotation record and never shown again. `create` sends
the secret's current data and expects `{"data": {<field>: <new value>, ...}}` back; `set` and
`test` send the pending value; `finish` only the ids. Any answer but 2xx fails the phase.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import orjson

from tenantvault._exceptions import InvalidRequestError
from tenantvault._fields import get_str
from tenantvault.rotation._rotators import PhaseContext, PhaseError
from tenantvault.rotation._settings import RotationSettings, is_allowed_url

__all__ = ["SIGNATURE_HEADER", "WebhookRotator", "sign"]

SIGNATURE_HEADER: Final = "X-Tenantvault-Signature"
_MIN_SECRET_LENGTH: Final = 16
_MAX_URL_LENGTH: Final = 2048


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`: `sha256=<hex HMAC-SHA256>`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookRotator:
    """Calls the tenant's hook for every phase (see the module docstring)."""

    def __init__(self, settings: RotationSettings) -> None:
        self._settings = settings

    def check(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - {"url", "secret"})
        if unknown:
            raise InvalidRequestError(f"unknown params for the webhook rotator: {unknown}")
        url = get_str(params, "url")
        secret = get_str(params, "secret")
        if not url:
            raise InvalidRequestError("the webhook rotator needs params.url")
        # The URL is not echoed: a tenant may have put a token in its query string.
        if len(url) > _MAX_URL_LENGTH or not is_allowed_url(url, self._settings.webhook_allow):
            raise InvalidRequestError(
                "params.url is not under a webhook prefix the operator allowed"
            )
        if not secret or len(secret) < _MIN_SECRET_LENGTH:
            raise InvalidRequestError(
                f"the webhook rotator needs params.secret of at least {_MIN_SECRET_LENGTH} "
                "characters"
            )
        return {"url": url, "secret": secret}

    def public(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"url": params.get("url", "")}

    def _body(self, context: PhaseContext, phase: str, **extra: Any) -> bytes:
        return orjson.dumps(
            {
                "phase": phase,
                "rotation_id": context.rotation_id,
                "tenant": context.tenant,
                "mount": context.mount,
                "path": context.path,
                "field": context.field,
                **extra,
            }
        )

    async def _post(self, context: PhaseContext, phase: str, body: bytes) -> bytes:
        """POST `body`; the answer's bytes if it is 2xx and small enough, else `PhaseError`."""
        url = str(context.params["url"])
        # Checked again at every call: the operator may have narrowed the list since.
        if not is_allowed_url(url, self._settings.webhook_allow):
            raise PhaseError("the webhook url is no longer under an allowed prefix")
        limit = self._settings.webhook_max_response_bytes
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(str(context.params["secret"]), body),
        }
        timeout = aiohttp.ClientTimeout(total=self._settings.webhook_timeout_seconds)
        try:
            # A session per call: no cookies or connections carried from one tenant's hook
            # to another's, and nothing left open when a rotation is cancelled.
            async with (
                aiohttp.ClientSession(timeout=timeout, trust_env=False) as session,
                session.post(url, data=body, headers=headers, allow_redirects=False) as answer,
            ):
                if not 200 <= answer.status < 300:
                    raise PhaseError(f"the webhook answered HTTP {answer.status} to {phase}")
                if (answer.content_length or 0) > limit:
                    raise PhaseError(f"the webhook's answer to {phase} is too large")
                payload = await answer.content.read(limit + 1)
        except TimeoutError:
            raise PhaseError(f"the webhook did not answer {phase} in time") from None
        except aiohttp.ClientError as error:
            # The exception type only: its text can repeat the URL.
            raise PhaseError(
                f"the webhook could not be reached for {phase} ({type(error).__name__})"
            ) from None
        if len(payload) > limit:
            raise PhaseError(f"the webhook's answer to {phase} is too large")
        return payload

    async def create(self, context: PhaseContext, current: Mapping[str, Any]) -> dict[str, Any]:
        payload = await self._post(
            context, "create", self._body(context, "create", current=dict(current))
        )
        try:
            answer = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise PhaseError("the webhook's answer to create is not JSON") from None
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or context.field not in data:
            raise PhaseError(f"the webhook's answer to create has no data.{context.field}")
        value = data[context.field]
        if value is None or value == current.get(context.field):
            raise PhaseError("the webhook's answer to create is not a new value")
        # Only the rotated field: the other keys of the secret are carried over unchanged.
        return {context.field: value}

    async def set(self, context: PhaseContext, pending: dict[str, Any]) -> dict[str, Any]:
        await self._post(context, "set", self._body(context, "set", pending=pending))
        return pending

    async def test(self, context: PhaseContext, pending: Mapping[str, Any]) -> None:
        await self._post(context, "test", self._body(context, "test", pending=dict(pending)))

    async def finish(self, context: PhaseContext) -> None:
        await self._post(context, "finish", self._body(context, "finish"))
