"""The pki engine's `config/crl` and delta CRLs over HTTP: settings read back as written,
OpenBao's refusals, and what each setting does to the CRLs a client fetches (expiry, disable,
auto_rebuild with its grace period, delta CRLs with their rebuild interval). Texts and shapes
were checked against OpenBao 2.7.2; tests/integration/test_pki_crl_differential.py re-checks
them live."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.conftest import FakeClock
from tests.server.conftest import Vault
from tests.server.test_pki import ROLE, cert_of, mount_pki, ok, pki_vault, root_ca

__all__ = ["pki_vault"]  # the fixture, shared with test_pki

DEFAULTS = {
    "allow_expired_cert_revocation": False,
    "auto_rebuild": False,
    "auto_rebuild_grace_period": "12h",
    "delta_rebuild_interval": "15m",
    "disable": False,
    "enable_delta": False,
    "expiry": "72h",
    "ocsp_disable": False,
    "ocsp_expiry": "12h",
}


@pytest.fixture
async def timed(pki_vault: Vault) -> Vault:
    """A server on the test's clock, with a pki mount, a root CA and the `web` role."""
    await mount_pki(pki_vault)
    await root_ca(pki_vault)
    await ok(await pki_vault.root("POST", "pki/roles/web", json=ROLE))
    return pki_vault


async def _issue(vault: Vault, name: str = "a.example.com", ttl: str = "24h") -> int:
    data = (
        await ok(await vault.root("POST", "pki/issue/web", json={"common_name": name, "ttl": ttl}))
    )["data"]
    return cert_of(data["certificate"]).serial_number


def _colons(serial: int) -> str:
    """A serial in Vault's colon form."""
    return ":".join(f"{byte:02x}" for byte in serial.to_bytes((serial.bit_length() + 7) // 8))


async def _revoke(vault: Vault, serial: int) -> dict[str, Any]:
    return await ok(await vault.root("POST", "pki/revoke", json={"serial_number": _colons(serial)}))


async def _crl(vault: Vault, path: str = "pki/crl") -> x509.CertificateRevocationList:
    response = await vault.root("GET", path)
    assert response.status_code == 200, response.text
    return x509.load_der_x509_crl(response.content)


def _lifetime(crl: x509.CertificateRevocationList) -> timedelta:
    assert crl.next_update_utc is not None
    return crl.next_update_utc - crl.last_update_utc


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def _base(crl: x509.CertificateRevocationList) -> int:
    extension = crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    assert extension.critical
    return extension.value.crl_number


def _serials(crl: x509.CertificateRevocationList) -> set[int]:
    return {entry.serial_number for entry in crl}


async def _configure(vault: Vault, **fields: Any) -> dict[str, Any]:
    return await ok(await vault.root("POST", "pki/config/crl", json=fields))


async def test_config_reads_back_as_written(timed: Vault) -> None:
    """Defaults first; durations read back in the form written (a number as its digits);
    fields not sent keep their values; Enterprise-only fields are ignored with the Core's
    warning, as OpenBao 2.7 ignores them."""
    assert (await ok(await timed.root("GET", "pki/config/crl")))["data"] == DEFAULTS
    written = await _configure(timed, expiry="90m", ocsp_expiry=0, disable="true")
    assert written["data"] == {**DEFAULTS, "expiry": "90m", "ocsp_expiry": "0", "disable": True}
    again = await _configure(timed, expiry=7200, unified_crl=True)
    assert again["warnings"] == ["Endpoint ignored these unrecognized parameters: [unified_crl]"]
    assert again["data"] == {**DEFAULTS, "expiry": "7200", "ocsp_expiry": "0", "disable": True}
    assert (await ok(await timed.root("GET", "pki/config/crl")))["data"] == again["data"]


async def test_empty_durations_read_back_as_openbao_reads_them(timed: Vault) -> None:
    """An empty `expiry` reads back as 72h; an empty `delta_rebuild_interval` as 15m only in
    the first record written, "" after a later write (OpenBao's record versions); the
    write's own answer shows what it stored."""
    first = await _configure(timed, expiry="", delta_rebuild_interval="", ocsp_expiry="")
    assert (first["data"]["expiry"], first["data"]["delta_rebuild_interval"]) == ("", "")
    read = (await ok(await timed.root("GET", "pki/config/crl")))["data"]
    assert (read["expiry"], read["delta_rebuild_interval"], read["ocsp_expiry"]) == (
        "72h",
        "15m",
        "",
    )
    await _configure(timed, delta_rebuild_interval="")
    read = (await ok(await timed.root("GET", "pki/config/crl")))["data"]
    assert read["delta_rebuild_interval"] == ""


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"expiry": "bogus"}, 'given expiry could not be decoded: time: invalid duration "bogus"'),
        (
            {"expiry": "5x"},
            'given expiry could not be decoded: time: unknown unit "x" in duration "5x"',
        ),
        (
            {"delta_rebuild_interval": "1h5"},
            "given delta_rebuild_interval could not be decoded: time: missing unit in "
            'duration "1h5"',
        ),
        ({"ocsp_expiry": "-1s"}, "ocsp_expiry must be greater than or equal to 0 got: -1s"),
        (
            {"disable": "maybe"},
            "Field validation failed: error converting input for field \"disable\": '' cannot "
            "parse value as 'bool': strconv.ParseBool: invalid syntax",
        ),
        (
            {"enable_delta": True},
            "Delta CRLs cannot be enabled when auto rebuilding is disabled as the complete CRL "
            "is always regenerated!",
        ),
        (
            {"auto_rebuild": True, "expiry": "1h", "auto_rebuild_grace_period": "2h"},
            "CRL auto-rebuilding grace period (2h) must be strictly shorter than CRL expiry (1h) "
            "value when auto-rebuilding of CRLs is enabled",
        ),
        (
            {
                "auto_rebuild": True,
                "enable_delta": True,
                "expiry": "13h",
                "delta_rebuild_interval": "13h",
            },
            "CRL delta rebuild window (13h) must be strictly shorter than CRL expiry (13h) value "
            "when delta CRLs are enabled",
        ),
    ],
)
async def test_config_refusals(timed: Vault, fields: dict[str, Any], error: str) -> None:
    """Each refused write answers 400 with OpenBao's text and changes nothing."""
    response = await timed.root("POST", "pki/config/crl", json=fields)
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == [error]
    assert (await ok(await timed.root("GET", "pki/config/crl")))["data"] == DEFAULTS


async def test_expiry_is_the_crl_lifetime(timed: Vault) -> None:
    """`expiry` sets nextUpdate minus thisUpdate of the next CRL signed (72h before); a
    negative one signs a CRL that is already due rather than failing."""
    first = await _crl(timed)
    assert _lifetime(first) == timedelta(hours=72)
    await _configure(timed, expiry="2h")
    await ok(await timed.root("GET", "pki/crl/rotate"))
    rotated = await _crl(timed)
    assert _lifetime(rotated) == timedelta(hours=2)
    assert _number(rotated) > _number(first)
    # Go signs a negative lifetime as it is; X.509 wants nextUpdate >= thisUpdate.
    await _configure(timed, expiry="-5s")
    await ok(await timed.root("GET", "pki/crl/rotate"))
    assert _lifetime(await _crl(timed)) == timedelta(0)


async def test_disable_signs_an_empty_crl_and_keeps_it(timed: Vault) -> None:
    """Disabling re-signs an empty CRL at once; revokes and rotations leave it as it is;
    enabling again lists every revocation, those made while disabled included."""
    before = await _issue(timed)
    await _revoke(timed, before)
    assert _serials(await _crl(timed)) == {before}
    await _configure(timed, disable=True)
    empty = await _crl(timed)
    assert _serials(empty) == set()
    during = await _issue(timed, "b.example.com")
    await _revoke(timed, during)
    await ok(await timed.root("GET", "pki/crl/rotate"))
    assert await _crl(timed) == empty  # the same CRL, byte for byte
    await _configure(timed, disable=False)
    assert _serials(await _crl(timed)) == {before, during}


async def test_auto_rebuild_waits_for_the_grace_period(timed: Vault, clock: FakeClock) -> None:
    """With auto_rebuild a revoke leaves the CRL alone; the first fetch (or revoke) within
    the grace period before nextUpdate signs a new one listing it."""
    await _configure(timed, auto_rebuild=True, expiry="2h", auto_rebuild_grace_period="30m")
    await ok(await timed.root("GET", "pki/crl/rotate"))  # a CRL with the new 2h lifetime
    serial = await _issue(timed)
    await _revoke(timed, serial)
    stale = await _crl(timed)
    assert serial not in _serials(stale)
    clock.advance(89 * 60)
    assert serial not in _serials(await _crl(timed))
    clock.advance(2 * 60)
    fresh = await _crl(timed)
    assert serial in _serials(fresh)
    assert _number(fresh) > _number(stale)
    assert _lifetime(fresh) == timedelta(hours=2)


async def test_delta_crl_lists_revocations_since_the_complete_one(timed: Vault) -> None:
    """With delta CRLs, a revoke reaches the delta CRL (after `crl/rotate-delta`) and not the
    complete CRL; the delta names the complete CRL's number in a critical DeltaCRLIndicator;
    `crl/rotate` moves the revocation to the complete CRL and the next delta is empty again.
    No CRL number is used twice across both kinds."""
    await _configure(timed, auto_rebuild=True, enable_delta=True)
    serial = await _issue(timed)
    await _revoke(timed, serial)
    rotated = await ok(await timed.root("GET", "pki/crl/rotate-delta"))
    assert rotated["data"] == {"success": True}
    assert rotated["warnings"] is None
    complete = await _crl(timed)
    delta = await _crl(timed, "pki/crl/delta")
    assert serial not in _serials(complete)
    assert _serials(delta) == {serial}
    assert _base(delta) == _number(complete)
    assert _number(delta) > _number(complete)
    numbers = [_number(complete), _number(delta)]
    await ok(await timed.root("GET", "pki/crl/rotate"))
    complete = await _crl(timed)
    delta = await _crl(timed, "pki/crl/delta")
    assert serial in _serials(complete)
    assert _serials(delta) == set()
    assert _base(delta) == _number(complete)
    numbers += [_number(complete), _number(delta)]
    assert numbers == sorted(set(numbers))
    pem = (await ok(await timed.root("GET", "pki/issuer/default/crl/delta")))["data"]["crl"]
    assert x509.load_pem_x509_crl(pem.encode()) == delta
    special = (await ok(await timed.root("GET", "pki/cert/delta-crl")))["data"]
    assert special["revocation_time"] == 0
    assert x509.load_pem_x509_crl(special["certificate"].encode()) == delta
    files = await timed.root("GET", "pki/crl/delta/pem")
    assert files.headers["content-type"] == "application/x-pem-file"
    assert x509.load_pem_x509_crl(files.content) == delta
    der = await timed.root("GET", "pki/issuer/default/crl/delta/der")
    assert der.headers["content-type"] == "application/pkix-crl"
    assert x509.load_der_x509_crl(der.content) == delta


async def test_delta_is_rebuilt_after_its_interval(timed: Vault, clock: FakeClock) -> None:
    """A delta fetch signs a new delta for new revocations only once
    `delta_rebuild_interval` has passed since the last one."""
    await _configure(timed, auto_rebuild=True, enable_delta=True, delta_rebuild_interval="10m")
    first = await _issue(timed)
    await _revoke(timed, first)
    assert _serials(await _crl(timed, "pki/crl/delta")) == {first}
    second = await _issue(timed, "b.example.com")
    await _revoke(timed, second)
    clock.advance(9 * 60)
    assert _serials(await _crl(timed, "pki/crl/delta")) == {first}
    clock.advance(2 * 60)
    assert _serials(await _crl(timed, "pki/crl/delta")) == {first, second}


async def test_delta_without_delta_crls(timed: Vault) -> None:
    """Delta CRLs off: the delta CRL is still served (empty, indicating the complete CRL),
    even after a revoke; `crl/rotate-delta` is OpenBao's no-op with its warning."""
    serial = await _issue(timed)
    await _revoke(timed, serial)
    complete = await _crl(timed)
    delta = await _crl(timed, "pki/crl/delta")
    assert serial in _serials(complete)
    assert _serials(delta) == set()
    assert _base(delta) == _number(complete)
    rotated = await ok(await timed.root("GET", "pki/crl/rotate-delta"))
    assert rotated["data"] == {"success": True}
    assert rotated["warnings"] == [
        "requested rebuild of delta CRL when delta CRL is not enabled; this is a no-op"
    ]


async def test_delta_fetches_without_a_ca(vault: Vault) -> None:
    """No issuer yet: the delta files answer 204 with their types, the JSON forms OpenBao's
    500 "no default issuer currently configured"."""
    await mount_pki(vault)
    for path, kind in (
        ("crl/delta", "application/pkix-crl"),
        ("crl/delta/pem", "application/x-pem-file"),
    ):
        response = await vault.request("GET", f"pki/{path}")
        assert response.status_code == 204
        assert response.headers["content-type"] == kind
    for path in ("cert/delta-crl", "issuer/default/crl/delta", "issuer/default/crl/delta/der"):
        response = await vault.request("GET", f"pki/{path}")
        assert response.status_code == 500
        assert response.json()["errors"] == ["no default issuer currently configured"]


async def test_expired_certificates_need_allow_expired_cert_revocation(
    timed: Vault, clock: FakeClock
) -> None:
    """An expired certificate's revoke is refused with OpenBao's warning, unless
    `allow_expired_cert_revocation` is set; then it is revoked and on the CRL."""
    serial = await _issue(timed, ttl="1h")
    clock.advance(2 * 3600)
    refused = await _revoke(timed, serial)
    assert refused["data"] is None
    assert refused["warnings"] == [
        f"certificate with serial {_colons(serial)}"
        " already expired; refusing to add to CRL. Enable 'AllowExpiredCertRevocation' to "
        "allow revoking expired certificates."
    ]
    await _configure(timed, allow_expired_cert_revocation=True)
    assert (await _revoke(timed, serial))["data"]["state"] == "revoked"
    assert serial in _serials(await _crl(timed))


async def test_concurrent_builds_never_share_a_number(timed: Vault) -> None:
    """Revokes, `crl/rotate`, `crl/rotate-delta` and delta fetches at once: every CRL number
    seen names one CRL only, complete or delta, and the final pair lists every revocation
    between them."""
    await _configure(timed, auto_rebuild=True, enable_delta=True)
    serials = [await _issue(timed, f"s{index}.example.com") for index in range(6)]
    seen: dict[int, bytes] = {}

    async def look(path: str) -> None:
        crl = await _crl(timed, path)
        body = crl.public_bytes(serialization.Encoding.DER)
        assert seen.setdefault(_number(crl), body) == body, f"number {_number(crl)} twice"

    async def rotate(path: str) -> None:
        await ok(await timed.root("GET", path))

    work: list[Coroutine[Any, Any, object]] = [_revoke(timed, serial) for serial in serials]
    work += [rotate("pki/crl/rotate-delta") for _ in range(3)] + [rotate("pki/crl/rotate")]
    work += [look("pki/crl/delta") for _ in range(4)] + [look("pki/crl") for _ in range(4)]
    await asyncio.gather(*work)
    await ok(await timed.root("GET", "pki/crl/rotate-delta"))
    await look("pki/crl")
    await look("pki/crl/delta")
    complete, delta = await _crl(timed), await _crl(timed, "pki/crl/delta")
    assert _base(delta) == _number(complete)
    assert _serials(complete) | _serials(delta) == set(serials)
    assert not _serials(complete) & _serials(delta)
