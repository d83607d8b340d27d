"""The remote transport of the Python API: `tenantvault.open("https://…", token=…)` sends each
`Request` over the Vault HTTP API and turns the answer back into a `Response` or our error.

It rides on the upstream client (`upstream/_client.py`): one pooled aiohttp session, a timeout
on every call, retries for idempotent calls only, TLS settings, plain `http://` for loopback
addresses only. So the remote handle is the same `TenantVault` as an embedded one, with the
same facades; only the function that carries a `Request` differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from tenantvault._exceptions import (
    CheckAndSetError,
    ConfigurationError,
    DecryptionError,
    InvalidPathError,
    NotFoundError,
    PayloadTooLargeError,
    TenantVaultError,
    UnsupportedMediaTypeError,
)
from tenantvault._paths import check_request_path
from tenantvault._request import Operation, Request, Response
from tenantvault.upstream._client import (
    UpstreamClient,
    UpstreamResponse,
    UpstreamSettings,
    map_status,
)

__all__ = ["REMOTE_SCHEMES", "RemoteTransport", "is_remote_url"]

REMOTE_SCHEMES: Final = ("http", "https")
_MERGE_PATCH: Final = "application/merge-patch+json"
_METHODS: Final = {
    Operation.READ: "GET",
    Operation.LIST: "LIST",
    Operation.CREATE: "POST",
    Operation.UPDATE: "POST",
    Operation.PATCH: "PATCH",
    Operation.DELETE: "DELETE",
}
# Keys of Vault's success envelope; a body without them is a raw answer (sys/health, ...).
_ENVELOPE: Final = frozenset(
    {
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "auth",
        "warnings",
    }
)
# The 400s with a type of their own in our error tree, known by Vault's (and our) wording:
# the HTTP answer carries a status and a text, the Python API promises a class.
_CAS_TEXT: Final = "check-and-set parameter"
_PATH_TEXTS: Final = (
    "invalid path",
    "invalid tenant id",
    "invalid key name",
    "cannot write to a path ending in '/'",
)
_DECRYPTION_TEXTS: Final = ("invalid ciphertext", "cipher: message authentication failed")


def is_remote_url(url: str) -> bool:
    """Whether `url` names a server (`http(s)://`) rather than a store (`memory://`, ...)."""
    return url.split("://", 1)[0] in REMOTE_SCHEMES and "://" in url


class RemoteTransport:
    """Carries requests to one server; `send` is what a `TenantVault` handle calls."""

    def __init__(
        self, url: str, *, ca_file: Path | None = None, timeout_seconds: float = 60.0
    ) -> None:
        try:
            settings = UpstreamSettings(url, ca_file=ca_file, timeout_seconds=timeout_seconds)
        except ConfigurationError as error:
            # The upstream's wording ("vault+http://") is not this API's.
            raise ConfigurationError(
                str(error)
                .replace("vault+http://", "http://")
                .replace("vault+https://", "https://")
                .replace("upstream ", "server ")
            ) from None
        self._client = UpstreamClient(settings)

    def __repr__(self) -> str:
        return "<RemoteTransport>"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, request: Request) -> Response:
        """One request over HTTP; 4xx answers raise our `RequestError` types."""
        # The server's grammar, here too: the HTTP stack would otherwise resolve 'a/../b' to
        # 'b' and drop a leading '/' (a repaired path, sent as another one).
        check_request_path(request.path)
        method = _METHODS[request.operation]
        headers: dict[str, str] = {}
        params: dict[str, str] | None = None
        body: Mapping[str, Any] | None = None
        if request.operation is Operation.READ:
            if request.data:
                params = {key: str(value) for key, value in request.data.items()}
        else:
            body = request.data
        if request.operation is Operation.PATCH:
            headers["Content-Type"] = _MERGE_PATCH
        if request.wrap_ttl_seconds:
            headers["X-Vault-Wrap-TTL"] = f"{request.wrap_ttl_seconds}s"
        answer = await self._client.request(
            method,
            request.path,
            token=request.token,
            namespace=request.namespace,
            json=body,
            headers=headers or None,
            params=params,
        )
        if answer.ok or _is_partial_answer(answer):
            return _response(answer)
        raise _error(answer)


def _error(answer: UpstreamResponse) -> TenantVaultError:
    """Our error for a 4xx answer: one table for this direction (the server's, reversed)."""
    errors = answer.errors
    message = errors[0] if errors else ""
    if answer.status == 400 and message:
        if _CAS_TEXT in message:
            return CheckAndSetError(message, errors=errors)
        if message.startswith(_PATH_TEXTS):
            return InvalidPathError(message, errors=errors)
        if message.startswith(_DECRYPTION_TEXTS):
            return DecryptionError(message, errors=errors)
    if answer.status == 404:
        body = answer.body
        # Vault's 404 for a deleted version carries the whole envelope (its metadata).
        envelope = body if body is not None and _ENVELOPE & body.keys() else None
        return NotFoundError(message, body=envelope, empty=body is None)
    if answer.status == 413:
        return PayloadTooLargeError(message or "request too large")
    if answer.status == 415:
        return UnsupportedMediaTypeError(message or "unsupported media type")
    return map_status(answer.status, errors)


def _is_partial_answer(answer: UpstreamResponse) -> bool:
    """A 400 that is still an answer: a transit batch with per-item errors in its data."""
    body = answer.body
    return answer.status == 400 and body is not None and isinstance(body.get("data"), dict)


def _response(answer: UpstreamResponse) -> Response:
    body = answer.body
    if body is None:
        return Response(status=answer.status)
    if not _ENVELOPE & body.keys():
        return Response(data=dict(body), status=answer.status, raw=True)
    data = body.get("data")
    return Response(
        data=data if isinstance(data, dict) else None,
        auth=body.get("auth") if isinstance(body.get("auth"), dict) else None,
        warnings=body.get("warnings") if isinstance(body.get("warnings"), list) else None,
        status=answer.status,
        request_id=str(body.get("request_id") or ""),
        lease_duration=int(body.get("lease_duration") or 0),
        wrap_info=body.get("wrap_info") if isinstance(body.get("wrap_info"), dict) else None,
        lease_id=str(body.get("lease_id") or ""),
        renewable=bool(body.get("renewable")),
        top_level={key: value for key, value in body.items() if key not in _ENVELOPE} or None,
    )
