"""Response wrapping through the Python API, on every backend (issue 11): `wrap_ttl=` on any
request, `Tenant.wrapping` (wrap, lookup, unwrap, rewrap), single use, expiry on a fake clock,
tenant isolation, and the stored response sealed under its own token."""

from __future__ import annotations

import pytest

import tenantvault
from tenantvault import InvalidRequestError, PermissionDeniedError, WrapInfo
from tenantvault._wrapping import INVALID_WRAPPING_TOKEN, parse_wrap_ttl
from tenantvault.testing import core_of
from tests.conftest import FakeClock, canary


async def test_any_request_can_be_wrapped_and_unwrapped_once(
    tv: tenantvault.TenantVault, acme: tenantvault.Tenant
) -> None:
    secret = canary("py-")
    await acme.kv.put("app", {"password": secret})
    response = await tv.request("read", "secret/data/app", namespace="acme", wrap_ttl="5m")
    assert response.data is None
    info = WrapInfo.from_data(response.wrap_info or {})
    assert (info.ttl, info.creation_path) == (300, "secret/data/app")
    assert secret not in repr(info)
    assert info.token not in repr(info)
    unwrapped = await acme.wrapping.unwrap(info.token)
    assert (unwrapped.data or {})["data"] == {"password": secret}
    with pytest.raises(InvalidRequestError, match=INVALID_WRAPPING_TOKEN):
        await acme.wrapping.unwrap(info.token)


async def test_wrap_lookup_rewrap_unwrap(acme: tenantvault.Tenant) -> None:
    info = await acme.wrapping.wrap({"k": "v"}, ttl=60)
    assert await acme.wrapping.lookup(info.token) == {
        "creation_path": "sys/wrapping/wrap",
        "creation_time": info.creation_time,
        "creation_ttl": 60,
    }
    moved = await acme.wrapping.rewrap(info.token)
    assert moved.token != info.token
    assert moved.ttl == 60
    with pytest.raises(InvalidRequestError):
        await acme.wrapping.lookup(info.token)
    assert (await acme.wrapping.unwrap(moved.token)).data == {"k": "v"}


async def test_the_wrapping_token_alone_unwraps_as_its_holder(
    tv: tenantvault.TenantVault, acme: tenantvault.Tenant
) -> None:
    """The tool-server pattern in-process: a handle holding only the wrapping token."""
    wrapped = await tv.request(
        "update", "auth/token/create", {"policies": ["default"]}, namespace="acme", wrap_ttl=120
    )
    info = WrapInfo.from_data(wrapped.wrap_info or {})
    holder = tv.with_token(info.token)
    unwrapped = await holder.tenant("acme").wrapping.unwrap(info.token)
    assert (unwrapped.auth or {})["accessor"] == info.wrapped_accessor
    with pytest.raises(InvalidRequestError):
        await holder.request("update", "sys/wrapping/unwrap")


async def test_an_expired_wrapping_token_is_refused(
    acme: tenantvault.Tenant, clock: FakeClock
) -> None:
    info = await acme.wrapping.wrap({"k": "v"}, ttl="1m")
    clock.advance(61)
    with pytest.raises(InvalidRequestError, match=INVALID_WRAPPING_TOKEN):
        await acme.wrapping.lookup(info.token)
    with pytest.raises(InvalidRequestError, match=INVALID_WRAPPING_TOKEN):
        await acme.wrapping.unwrap(info.token)


async def test_another_tenant_cannot_see_or_unwrap_it(
    tv: tenantvault.TenantVault, acme: tenantvault.Tenant
) -> None:
    await tv.create_tenant("other")
    other = tv.tenant("other")
    info = await acme.wrapping.wrap({"k": "v"}, ttl=60)
    for attempt in (other.wrapping.lookup, other.wrapping.unwrap, other.wrapping.rewrap):
        with pytest.raises(InvalidRequestError, match=INVALID_WRAPPING_TOKEN):
            await attempt(info.token)
    assert (await acme.wrapping.unwrap(info.token)).data == {"k": "v"}


async def test_deleting_the_tenant_destroys_its_wrapped_responses(
    tv: tenantvault.TenantVault, acme: tenantvault.Tenant
) -> None:
    info = await acme.wrapping.wrap({"k": "v"}, ttl=60)
    await tv.delete_tenant("acme")
    await tv.create_tenant("acme")
    with pytest.raises((InvalidRequestError, PermissionDeniedError)):
        await tv.tenant("acme").wrapping.unwrap(info.token)


async def test_the_stored_response_opens_only_with_its_token(
    tv: tenantvault.TenantVault, acme: tenantvault.Tenant
) -> None:
    secret = canary("sealed-")
    info = await acme.wrapping.wrap({"k": secret}, ttl=60)
    core = core_of(tv)
    record = await core.tokens.lookup(info.token)
    assert record is not None
    stored = await core.backend.read("acme", "wrapping", f"response/{record.token_hash}")
    assert stored is not None
    assert secret.encode() not in stored.value


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("0", None),
        (0, None),
        ("300", 300),
        (300, 300),
        ("5m", 300),
        ("+5", 5),
        ("1.5m", 90),
        ("500ms", 1),
        ("2d", 172800),
        (" 7 ", 7),
    ],
)
def test_the_wrap_ttl_grammar(value: str | int | None, seconds: int | None) -> None:
    assert parse_wrap_ttl(value) == seconds


@pytest.mark.parametrize("value", ["-1", "-5s", "abc", "5.5", "1x", "9223372037", -3])
def test_the_wrap_ttl_grammar_refuses(value: str | int) -> None:
    with pytest.raises(InvalidRequestError, match="error parsing X-Vault-Wrap-TTL header: "):
        parse_wrap_ttl(value)
