"""Concurrent PKI revocations on every backend (memory, sqlite, OpenBao's KV as the record
store): no revocation is lost from the CRL and no CRL number is published twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import tenantvault
from tests.conftest import FakeClock

# Enough revokers to interleave on every backend, few enough to stay fast over HTTP.
REVOKERS = 12


async def _pki(tv: tenantvault.TenantVault) -> list[str]:
    """Tenant `acme` with a pki mount, a CA, a role and REVOKERS leaves; their serials."""
    await tv.create_tenant("acme")
    await tv.request(
        "update",
        "sys/mounts/pki",
        {"type": "pki", "config": {"max_lease_ttl": "87600h"}},
        namespace="acme",
    )
    await tv.request(
        "update",
        "pki/root/generate/internal",
        {"common_name": "Root CA", "ttl": "8760h", "key_type": "ec"},
        namespace="acme",
    )
    await tv.request(
        "update",
        "pki/roles/web",
        {"allowed_domains": ["example.com"], "allow_subdomains": True, "key_type": "ec"},
        namespace="acme",
    )
    serials = []
    for number in range(REVOKERS):
        issued = await tv.request(
            "update", "pki/issue/web", {"common_name": f"s{number}.example.com"}, namespace="acme"
        )
        serials.append(str((issued.data or {})["serial_number"]))
    return serials


async def _crl(tv: tenantvault.TenantVault) -> x509.CertificateRevocationList:
    response = await tv.request("read", "pki/cert/crl", namespace="acme")
    data: dict[str, Any] = response.data or {}
    return x509.load_pem_x509_crl(str(data["certificate"]).encode())


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


async def test_concurrent_revokes_all_reach_the_crl_with_distinct_numbers(
    tv: tenantvault.TenantVault,
) -> None:
    """REVOKERS revokes at once: each succeeds, the final CRL lists every serial, each
    revocation published its own CRL number (the last is the first + REVOKERS), and a reader
    polling meanwhile never sees one number on two different CRLs nor a number go back."""
    serials = await _pki(tv)
    first = _number(await _crl(tv))
    done = asyncio.Event()
    seen: dict[int, bytes] = {}
    order: list[int] = []

    async def poll() -> None:
        while not done.is_set():
            crl = await _crl(tv)
            number = _number(crl)
            body = crl.public_bytes(Encoding.DER)
            assert seen.setdefault(number, body) == body, f"CRL number {number} published twice"
            order.append(number)
            await asyncio.sleep(0)

    poller = asyncio.create_task(poll())
    results = await asyncio.gather(
        *(
            tv.request("update", "pki/revoke", {"serial_number": serial}, namespace="acme")
            for serial in serials
        )
    )
    done.set()
    await poller
    assert all((result.data or {}).get("state") == "revoked" for result in results)
    final = await _crl(tv)
    listed = {revoked.serial_number for revoked in final}
    assert listed == {int(serial.replace(":", ""), 16) for serial in serials}
    assert _number(final) == first + REVOKERS
    assert order == sorted(order)


async def test_concurrent_revokes_of_one_serial_agree(
    tv: tenantvault.TenantVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same serial revoked by many at once, on a clock that moves a second at every
    reading: one revocation time for all (the first to stamp it), one CRL entry."""
    serials = await _pki(tv)

    def ticking(clock: FakeClock) -> int:
        clock.advance(1)  # revocation times have whole seconds
        return clock.now

    monkeypatch.setattr(FakeClock, "__call__", ticking)
    results = await asyncio.gather(
        *(
            tv.request("update", "pki/revoke", {"serial_number": serials[0]}, namespace="acme")
            for _ in range(REVOKERS)
        )
    )
    times = {(result.data or {})["revocation_time_rfc3339"] for result in results}
    assert len(times) == 1
    listed = [revoked.serial_number for revoked in await _crl(tv)]
    assert listed == [int(serials[0].replace(":", ""), 16)]
