"""One mount-relative operation forwarded upstream, and the upstream's answer in our terms.

The embedded engine's route is kept for everything the Core checks (ACL path, capability,
declared parameters, optional needs) and for path validation, so a request is authorized
and audited exactly as on the embedded store; only its handler (and its existence check)
is replaced by a call upstream. Upstream answers become the same `Response` or error the
embedded engine gives: 404 with the deleted version's envelope, 404 without a body, 400
check-and-set, 405; transport and upstream failures are the client's `BackendError`s.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from tenantvault._exceptions import (
    CheckAndSetError,
    InvalidRequestError,
    NotFoundError,
    TenantVaultError,
)
from tenantvault._request import Operation, Response
from tenantvault.engines._route import Call, Route
from tenantvault.upstream._client import UpstreamResponse, map_status
from tenantvault.upstream._tenancy import Placement
from tenantvault.upstream.engines._gateway import Gateway

__all__ = [
    "MERGE_PATCH",
    "METHODS",
    "Send",
    "answer",
    "forwarded",
    "query_params",
    "raise_for",
    "send_as_is",
]

# The HTTP method of each logical operation, as a Vault client sends it.
METHODS: Final[Mapping[Operation, str]] = {
    Operation.READ: "GET",
    Operation.LIST: "LIST",
    Operation.CREATE: "POST",
    Operation.UPDATE: "POST",
    Operation.PATCH: "PATCH",
    Operation.DELETE: "DELETE",
}

# Vault reads a PATCH body only as a JSON merge patch.
MERGE_PATCH: Final = {"Content-Type": "application/merge-patch+json"}

_MULTIERROR: Final = re.compile(r"1 error occurred:\n\t\* (.*?)\n*", re.DOTALL)

# (method, body or None, query or None, idempotent) -> the upstream's answer.
Send = Callable[
    [str, Mapping[str, Any] | None, Mapping[str, str] | None, bool | None],
    Awaitable[UpstreamResponse],
]


def raise_for(response: UpstreamResponse) -> None:
    """Raise the error the embedded engine gives for the upstream's 4xx answer."""
    if response.ok:
        return
    errors = response.errors
    body = response.body
    if response.status == 404:
        if body is None:
            raise NotFoundError(empty=True)  # OpenBao: a PATCH of a missing key
        if "data" in body:
            # A deleted or destroyed version: the envelope carries its metadata.
            raise NotFoundError(body={"data": body["data"]})
    if response.status == 500 and errors:
        # OpenBao answers some refusals of the request with 500 and its multierror text
        # (transit: a signing version too high); the embedded engines answer them 400.
        texts = [_unwrap(text) for text in errors]
        raise InvalidRequestError(texts[0], errors=texts)
    if response.status == 400 and any("check-and-set" in text for text in errors):
        raise CheckAndSetError(errors[0], errors=errors)
    error: TenantVaultError = map_status(response.status, errors)
    raise error


def _unwrap(text: str) -> str:
    """The message inside Go's multierror text ("1 error occurred:\\n\\t* <message>\\n\\n")."""
    match = _MULTIERROR.fullmatch(text)
    return match.group(1) if match else text


def answer(response: UpstreamResponse) -> Response:
    """The `Response` of an upstream 2xx answer, or of a 400 that carries a whole envelope
    (a transit batch with failed items); an error for anything else."""
    body = response.body
    if response.status == 400 and body is not None and isinstance(body.get("data"), dict):
        return _response(body, status=400)
    raise_for(response)
    if response.status == 204 or body is None:
        return Response.no_content()
    # 207: a transit batch's partial_failure_response_code.
    return _response(body, status=response.status)


def _response(body: Mapping[str, Any], *, status: int) -> Response:
    data = body.get("data")
    warnings = body.get("warnings")
    kept = [w for w in warnings if isinstance(w, str)] if isinstance(warnings, list) else []
    return Response(
        data=data if isinstance(data, dict) else None, warnings=kept or None, status=status
    )


def query_params(data: Mapping[str, Any]) -> dict[str, str]:
    """A read's parameters as a query string, as a Vault client sends them."""
    return {
        name: ("true" if value is True else "false" if value is False else str(value))
        for name, value in data.items()
        if value is not None
    }


def forwarded(
    inner: Route,
    operation: Operation,
    send: Send,
    *,
    exists: Callable[[], Awaitable[bool]] | None = None,
    idempotent: bool | None = None,
    adjust: Callable[[Response], Response] | None = None,
    before: Callable[[Call], Awaitable[None]] | None = None,
    translate: Callable[[TenantVaultError], TenantVaultError] | None = None,
    prepare: Callable[[dict[str, Any]], list[str]] | None = None,
) -> Route:
    """`inner` with its handler forwarding `operation` upstream through `send`.

    `exists` replaces the route's existence check (when it has one); `adjust` rewrites a
    successful answer (transit key names in the prefix strategy); `before` runs checks the
    embedded handler would make before touching anything (transit's create-on-encrypt);
    `translate` rewrites an upstream refusal into the embedded engine's; `prepare` may
    change the data sent upstream and returns the warnings the answer carries for it.
    """
    method = METHODS[operation]

    async def handler(call: Call) -> Response:
        if before is not None:
            await before(call)
        data = dict(call.data)
        warnings = prepare(data) if prepare is not None else []
        if method in ("GET", "LIST", "DELETE"):
            response = await send(method, None, query_params(data) or None, idempotent)
        else:
            response = await send(method, data, None, idempotent)
        try:
            result = answer(response)
        except TenantVaultError as error:
            if translate is None:
                raise
            raise translate(error) from None
        if warnings:
            result.warnings = [*(result.warnings or []), *warnings]
        return adjust(result) if adjust is not None else result

    return replace(
        inner,
        handler=handler,
        exists=_existence(exists)
        if inner.exists is not None and exists is not None
        else inner.exists,
    )


def _existence(exists: Callable[[], Awaitable[bool]]) -> Callable[[str], Awaitable[bool]]:
    """A route's existence check (`Route.exists` takes the tenant, already bound here)."""

    async def check(_tenant: str) -> bool:
        return await exists()

    return check


async def send_as_is(
    gateway: Gateway, tenant: str, method: str, placement: Placement, data: Mapping[str, Any]
) -> UpstreamResponse:
    """A request sent upstream as the client sent it: GET, LIST and DELETE with `data` as
    their query string, the others with it as their JSON body (PATCH as a merge patch)."""
    if method in ("GET", "LIST", "DELETE"):
        return await gateway.send(tenant, method, placement, params=query_params(data) or None)
    headers = MERGE_PATCH if method == "PATCH" else None
    return await gateway.send(tenant, method, placement, json=dict(data), headers=headers)
