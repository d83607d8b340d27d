"""Audit events: what happened, captured once per request, rendered per sink with its own salt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tenantvault._clock import format_time
from tenantvault.audit._redact import Redactor

__all__ = ["AuditEvent", "Shared", "outcome_of"]

Outcome = Literal["success", "denied", "invalid", "error"]

# The last second `_entry_time` rendered: every entry of that second shares its date and time.
_second: tuple[int, str] = (-1, "")


def _entry_time(ns: int) -> str:
    """`format_time(ns)`, with the date and time of day formatted once per second (strftime
    was the costliest call of an entry)."""
    global _second  # a one-entry cache, shared by threads: a tuple swap is atomic
    seconds, nanos = divmod(ns, 1_000_000_000)
    cached_second, stamp = _second
    if cached_second != seconds or ns <= 0:
        whole = format_time(seconds * 1_000_000_000)
        if not whole:
            return format_time(ns)
        stamp = whole[:-11]  # without ".000000000Z"
        _second = (seconds, stamp)
    return f"{stamp}.{nanos:09d}Z"


def outcome_of(status: int) -> Outcome:
    """The query-friendly outcome of an HTTP-like status."""
    if status < 400:
        return "success"
    if status == 403:
        return "denied"
    if status < 500:
        return "invalid"
    return "error"


@dataclass(slots=True)
class AuditEvent:
    """One request or response entry before redaction. Never logged or repr'd with values."""

    type: Literal["request", "response"]
    time_ns: int
    request_id: str
    operation: str
    tenant: str | None
    mount: str
    path: str
    remote_address: str | None
    token: str | None = field(default=None, repr=False)
    accessor: str = field(default="", repr=False)
    policies: tuple[str, ...] = ()
    display_name: str = ""
    token_meta: Mapping[str, str] | None = field(default=None, repr=False)
    request_data: Mapping[str, Any] | None = field(default=None, repr=False)
    status: int = 0
    response_data: Mapping[str, Any] | None = field(default=None, repr=False)
    response_auth: Mapping[str, Any] | None = field(default=None, repr=False)
    # A wrapped response (`_wrapping`): only its wrap_info is recorded, never what it wraps.
    wrap_info: Mapping[str, Any] | None = field(default=None, repr=False)
    # The wrap TTL the request asked for (X-Vault-Wrap-TTL), 0 if it asked for none.
    wrap_ttl: int = 0
    warnings: list[str] | None = None
    error: str = ""
    # The tenant's incarnation id: a tenant deleted and created again under the same name is
    # another tenant, and its queries must never reach its predecessor's entries.
    tenant_uid: str = ""
    # A request the HTTP layer refused before translation (`Refusal`): its method, its raw
    # path (rendered only as an HMAC: it may hold a secret put in the URL by mistake) and the
    # namespace it claimed (a claim, never its tenant: the entry belongs to no tenant).
    refused: bool = False
    method: str = ""
    raw_path: bytes = field(default=b"", repr=False)
    claimed_namespace: str = ""
    # Where the request's entries share what they render alike, by redactor (one per sink):
    # the response entry's `auth` block is the request entry's, HMACs and all, and so is its
    # `request` block when nothing in it can have changed (see `Shared`).
    shared_auth: dict[Redactor, Shared] | None = field(default=None, repr=False)

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.status) if self.type == "response" else "success"

    def _auth(self, redactor: Redactor) -> dict[str, Any]:
        hash_ = redactor.hash
        return {
            "client_token": hash_(self.token) if self.token else "",
            "accessor": hash_(self.accessor) if self.accessor else "",
            "display_name": self.display_name,
            "policies": list(self.policies),
            "token_type": "service" if self.accessor else "",
            "tenant": self.tenant or "",
            "metadata": redactor.redact(self.token_meta) if self.token_meta else None,
        }

    def _request_key(self) -> tuple[Any, ...] | None:
        """What the `request` block is made of, if all of it is immutable (no request data:
        a mapping could have changed in place between the two entries); None otherwise."""
        if self.request_data or self.refused:
            return None
        return (
            self.request_id,
            self.operation,
            self.tenant,
            self.tenant_uid,
            self.mount,
            self.path,
            self.remote_address,
            self.wrap_ttl,
        )

    def _request(self, redactor: Redactor) -> dict[str, Any]:
        tenant = self.tenant
        request: dict[str, Any] = {
            "id": self.request_id,
            "operation": self.operation,
            "tenant": tenant or "",
            # Vault's layout: the namespace's id next to its path (the store indexes the id).
            "namespace": {
                "id": self.tenant_uid if tenant else "",
                "path": f"{tenant}/" if tenant else "",
            },
            "mount": self.mount,
            "path": self.path,
            "remote_address": self.remote_address or "",
            "data": redactor.redact(self.request_data) if self.request_data else None,
        }
        if self.wrap_ttl:
            request["wrap_ttl"] = self.wrap_ttl  # as OpenBao records it
        if self.refused:
            request["http"] = {
                "refused": True,
                "method": self.method,
                "raw_path": redactor.hash(self.raw_path) if self.raw_path else "",
                "claimed_namespace": self.claimed_namespace,
            }
        return request

    def render(self, redactor: Redactor) -> dict[str, Any]:
        """Vault's JSON-lines layout, every sensitive string replaced by its salted HMAC."""
        shared = self.shared_auth
        known = shared.get(redactor) if shared is not None else None
        key = self._request_key()
        if known is None:
            auth = self._auth(redactor)
            request = self._request(redactor)
            if shared is not None:
                shared[redactor] = Shared(auth, key, request)
        else:
            # The blocks are shared, never changed: sealing adds keys to the entry only.
            auth = known.auth
            if key is not None and key == known.request_key:
                request = known.request
            else:
                request = self._request(redactor)
        entry: dict[str, Any] = {
            "time": _entry_time(self.time_ns),
            "time_ns": self.time_ns,
            "type": self.type,
            "auth": auth,
            "request": request,
        }
        if self.type == "response":
            entry["response"] = self._response(redactor)
            entry["error"] = self.error
        return entry

    def _response(self, redactor: Redactor) -> dict[str, Any]:
        hash_ = redactor.hash
        response_auth = None
        if self.response_auth is not None:
            response_auth = dict(self.response_auth)
            for name in ("client_token", "accessor"):
                if response_auth.get(name):
                    response_auth[name] = hash_(str(response_auth[name]))
            if response_auth.get("metadata"):
                response_auth["metadata"] = redactor.redact(response_auth["metadata"])
        response: dict[str, Any] = {
            "status": self.status,
            "outcome": outcome_of(self.status),
            "data": redactor.redact(self.response_data) if self.response_data else None,
            "auth": response_auth,
            "warnings": self.warnings,
        }
        if self.wrap_info is not None:
            # As OpenBao: the wrapping token, its accessor and the wrapped token's accessor
            # as HMACs; TTL, time and path as they are.
            wrap_info = dict(self.wrap_info)
            for name in ("token", "accessor", "wrapped_accessor"):
                if wrap_info.get(name):
                    wrap_info[name] = hash_(str(wrap_info[name]))
            response["wrap_info"] = wrap_info
        return response


@dataclass(slots=True)
class Shared:
    """What one sink rendered of a request's first entry, for its second to reuse.

    `request_key` is what the `request` block was made of (None: not reusable).
    """

    auth: dict[str, Any]
    request_key: tuple[Any, ...] | None
    request: dict[str, Any]
