"""Audit entries are byte-identical to Vault's layout as we render it, whatever the fast paths
(issue 16): the one-loop redactor, the OpenSSL HMAC state, the `auth` and `request` blocks a
response entry reuses from its request entry, and the two-part sealing.

The reference below is the plain rendering (every value hashed with `hmac.new`, every block
built anew per entry, the line serialized whole); hypothesis draws the events.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tenantvault._clock import format_time
from tenantvault.audit._chain import ChainState, seal_entry
from tenantvault.audit._events import AuditEvent, Shared, outcome_of
from tenantvault.audit._redact import Redactor

SALT = b"render-test-salt-0123456789abcdef"


def _hash(value: str | bytes) -> str:
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return "hmac-sha256:" + hmac.new(SALT, data, hashlib.sha256).hexdigest()


def _redact(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return _hash(value)
    if isinstance(value, bytes | bytearray):
        return _hash(bytes(value))
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= 128:
        return _hash(repr(type(value)))
    if isinstance(value, Mapping):
        return {str(key): _redact(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(item, depth + 1) for item in value]
    return _hash(type(value).__name__)


def _reference(event: AuditEvent) -> dict[str, Any]:
    """The entry of `event`, every block built from the event alone."""
    request: dict[str, Any] = {
        "id": event.request_id,
        "operation": event.operation,
        "tenant": event.tenant or "",
        "namespace": {
            "id": event.tenant_uid if event.tenant else "",
            "path": f"{event.tenant}/" if event.tenant else "",
        },
        "mount": event.mount,
        "path": event.path,
        "remote_address": event.remote_address or "",
        "data": _redact(event.request_data) if event.request_data else None,
    }
    if event.wrap_ttl:
        request["wrap_ttl"] = event.wrap_ttl
    if event.refused:
        request["http"] = {
            "refused": True,
            "method": event.method,
            "raw_path": _hash(event.raw_path) if event.raw_path else "",
            "claimed_namespace": event.claimed_namespace,
        }
    entry: dict[str, Any] = {
        "time": format_time(event.time_ns),
        "time_ns": event.time_ns,
        "type": event.type,
        "auth": {
            "client_token": _hash(event.token) if event.token else "",
            "accessor": _hash(event.accessor) if event.accessor else "",
            "display_name": event.display_name,
            "policies": list(event.policies),
            "token_type": "service" if event.accessor else "",
            "tenant": event.tenant or "",
            "metadata": _redact(event.token_meta) if event.token_meta else None,
        },
        "request": request,
    }
    if event.type == "response":
        auth = None
        if event.response_auth is not None:
            auth = dict(event.response_auth)
            for name in ("client_token", "accessor"):
                if auth.get(name):
                    auth[name] = _hash(str(auth[name]))
            if auth.get("metadata"):
                auth["metadata"] = _redact(auth["metadata"])
        entry["response"] = {
            "status": event.status,
            "outcome": outcome_of(event.status),
            "data": _redact(event.response_data) if event.response_data else None,
            "auth": auth,
            "warnings": event.warnings,
        }
        if event.wrap_info is not None:
            wrap_info = dict(event.wrap_info)
            for name in ("token", "accessor", "wrapped_accessor"):
                if wrap_info.get(name):
                    wrap_info[name] = _hash(str(wrap_info[name]))
            entry["response"]["wrap_info"] = wrap_info
        entry["error"] = event.error
    return entry


_TEXT = st.text(max_size=12)
_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
    | st.binary(max_size=8)
)
_DATA = st.recursive(
    _LEAF,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(_TEXT, inner, max_size=4)
        | st.dictionaries(st.integers(0, 9), inner, max_size=2)
    ),
    max_leaves=10,
)
_BODY = st.none() | st.dictionaries(_TEXT, _DATA, max_size=4)


@st.composite
def _pairs(draw: st.DrawFn) -> tuple[AuditEvent, AuditEvent]:
    """A request entry's event and its response entry's, as the broker builds them."""
    tenant = draw(st.none() | st.sampled_from(["acme", "beta"]))
    common: dict[str, Any] = {
        "request_id": draw(_TEXT),
        "operation": draw(st.sampled_from(["read", "update", "list", ""])),
        "tenant": tenant,
        "tenant_uid": draw(_TEXT) if tenant else "",
        "mount": draw(_TEXT),
        "path": draw(_TEXT),
        "remote_address": draw(st.none() | _TEXT),
        "token": draw(st.none() | _TEXT),
        "accessor": draw(_TEXT),
        "policies": tuple(draw(st.lists(_TEXT, max_size=3))),
        "display_name": draw(_TEXT),
        "token_meta": draw(st.none() | st.dictionaries(_TEXT, _TEXT, max_size=2)),
        "request_data": draw(_BODY),
        "wrap_ttl": draw(st.sampled_from([0, 300])),
        "refused": draw(st.booleans()),
        "method": draw(st.sampled_from(["", "GET"])),
        "raw_path": draw(st.binary(max_size=8)),
        "claimed_namespace": draw(_TEXT),
    }
    time_ns = draw(st.integers(1, 2**62))
    request = AuditEvent(type="request", time_ns=time_ns, **common)
    # The pipeline may have learned more by the response entry (a request that failed early
    # is recorded with what was known): sometimes the response's request block differs.
    if draw(st.booleans()):
        common["path"] = draw(_TEXT)
    response = AuditEvent(
        type="response",
        time_ns=time_ns + draw(st.integers(0, 3 * 10**9)),
        status=draw(st.sampled_from([200, 204, 400, 403, 500])),
        response_data=draw(_BODY),
        response_auth=draw(
            st.none()
            | st.fixed_dictionaries(
                {"client_token": _TEXT, "accessor": _TEXT, "policies": st.lists(_TEXT)},
                optional={"metadata": st.dictionaries(_TEXT, _TEXT, max_size=2)},
            )
        ),
        wrap_info=draw(
            st.none()
            | st.fixed_dictionaries(
                {"token": _TEXT, "accessor": _TEXT, "wrapped_accessor": _TEXT, "ttl": st.just(60)}
            )
        ),
        warnings=draw(st.none() | st.lists(_TEXT, max_size=2)),
        error=draw(_TEXT),
        **common,
    )
    return request, response


@given(pair=_pairs())
def test_entries_are_byte_identical_to_the_plain_rendering(
    pair: tuple[AuditEvent, AuditEvent],
) -> None:
    request, response = pair
    shared: dict[Redactor, Shared] = {}
    request.shared_auth = response.shared_auth = shared
    redactor = Redactor(SALT)
    state, expected_state = ChainState(), ChainState()
    for event in (request, response):
        line = seal_entry(state, event.render(redactor))
        expected = _reference(event)
        assert line == seal_entry(expected_state, expected)
        assert line == orjson.dumps(expected, option=orjson.OPT_SORT_KEYS) + b"\n"


@given(value=_DATA)
def test_the_redactor_hashes_what_hmac_new_hashes(value: Any) -> None:
    assert Redactor(SALT).redact({"v": value}) == _redact({"v": value})
    assert Redactor(SALT).redact(value) == _redact(value)


def test_a_response_entry_reuses_only_a_request_block_that_cannot_have_changed() -> None:
    """The request block is shared when all of it is immutable; request data (a mapping an
    engine could change in place) is hashed again for the response entry."""
    redactor = Redactor(SALT)
    shared: dict[Redactor, Shared] = {}
    fields: dict[str, Any] = {
        "request_id": "r1",
        "operation": "read",
        "tenant": "acme",
        "tenant_uid": "uid",
        "mount": "secret",
        "path": "secret/data/app",
        "remote_address": "127.0.0.1",
        "token": "tvs.token",
        "accessor": "acc",
        "shared_auth": shared,
    }
    first = AuditEvent(type="request", time_ns=1, **fields).render(redactor)
    second = AuditEvent(type="response", time_ns=2, status=200, **fields).render(redactor)
    assert second["request"] is first["request"]
    assert second["auth"] is first["auth"]
    body = {"password": "hunter2"}
    written = AuditEvent(type="request", time_ns=1, **{**fields, "shared_auth": {}})
    written.request_data = body
    first = written.render(redactor)
    body["password"] = "changed in place"
    response = AuditEvent(type="response", time_ns=2, status=200, **fields)
    response.shared_auth, response.request_data = written.shared_auth, body
    second = response.render(redactor)
    assert second["request"] is not first["request"]
    assert second["request"]["data"] == {"password": _hash("changed in place")}


def test_one_entry_renders_as_recorded() -> None:
    """A pinned line: the layout itself (and the reference above) cannot drift unnoticed."""
    event = AuditEvent(
        type="response",
        time_ns=1_796_183_054_056_390_790,
        request_id="8045b743-e83a-47e3-8bae-1c3c979ba882",
        operation="read",
        tenant="bench",
        tenant_uid="569945ec25bd4a6ba317070f63bb0fd5",
        mount="secret",
        path="secret/data/bench/read",
        remote_address="127.0.0.1",
        token="tvs.example",
        accessor="accessor-1",
        policies=("default", "p"),
        display_name="token",
        status=200,
        response_data={"data": {"username": "svc"}, "metadata": {"version": 1, "x": None}},
    )
    line = seal_entry(ChainState(), event.render(Redactor(SALT)))
    assert line == (
        b'{"auth":{"accessor":"'
        + _hash("accessor-1").encode()
        + b'","client_token":"'
        + _hash("tvs.example").encode()
        + b'","display_name":"token","metadata":null,"policies":["default","p"],'
        b'"tenant":"bench","token_type":"service"},"error":"","hash":"'
        + orjson.loads(line)["hash"].encode()
        + b'","prev_hash":"'
        + b"0" * 64
        + b'","request":{"data":null,'
        b'"id":"8045b743-e83a-47e3-8bae-1c3c979ba882","mount":"secret","namespace":'
        b'{"id":"569945ec25bd4a6ba317070f63bb0fd5","path":"bench/"},"operation":"read",'
        b'"path":"secret/data/bench/read","remote_address":"127.0.0.1","tenant":"bench"},'
        b'"response":{"auth":null,"data":{"data":{"username":"'
        + _hash("svc").encode()
        + b'"},"metadata":{"version":1,"x":null}},"outcome":"success","status":200,'
        b'"warnings":null},"seq":1,"time":"2026-12-02T03:44:14.056390790Z",'
        b'"time_ns":1796183054056390790,"type":"response"}\n'
    )
