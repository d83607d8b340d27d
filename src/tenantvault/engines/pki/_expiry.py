"""`sys/pki/expiring`: the certificates and CAs of a namespace's pki mounts that expire soon.

Tenant-scoped by construction: it walks only the caller's own mount table (the Core hands it
the storage tenant of the request), so a tenant sees the certificates of its own mounts and
nothing else. It answers metadata only (mount, serial, subject, times), never a key.
Revoked certificates are left out: they are already out of service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from cryptography import x509

from tenantvault._clock import Clock, system_clock
from tenantvault._durations import parse_duration
from tenantvault._exceptions import NotFoundError, UnsupportedOperationError
from tenantvault._request import Operation, Response
from tenantvault.engines._route import Call, Route
from tenantvault.engines.pki._store import PkiStore
from tenantvault.engines.pki._x509 import format_serial, load_certificates

if TYPE_CHECKING:
    from tenantvault._router import Router

__all__ = ["EXPIRING_PATH", "PkiExpiry"]

EXPIRING_PATH: Final = "pki/expiring"
_DEFAULT_WINDOW_SECONDS: Final = 30 * 24 * 3600


def _common_name(certificate: x509.Certificate) -> str:
    values = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


class PkiExpiry:
    """The sys/ endpoint listing what expires within a window across a namespace's pki mounts."""

    def __init__(self, router: Router, *, clock: Clock = system_clock) -> None:
        self._router = router
        self._clock = clock

    @staticmethod
    def handles(rest: str) -> bool:
        """Whether a sys/-relative path is this endpoint's."""
        return rest == EXPIRING_PATH or rest.startswith("pki/")

    def route(self, operation: Operation, rest: str, *, storage_tenant: str, uid: str) -> Route:
        """`GET sys/pki/expiring?within=<duration>` (default 720h): needs `read` on it."""
        if rest != EXPIRING_PATH:
            raise NotFoundError("unsupported path")
        if operation is not Operation.READ:
            raise UnsupportedOperationError()

        async def run(call: Call) -> Response:
            raw = call.data.get("within")
            window = (
                _DEFAULT_WINDOW_SECONDS
                if raw in (None, "")
                else parse_duration(raw, field="within")
            )
            return Response(data=await self._expiring(storage_tenant, uid, window))

        return Route("sys/" + EXPIRING_PATH, "read", run, parameters=frozenset({"within"}))

    async def _expiring(self, storage_tenant: str, uid: str, window: int) -> dict[str, Any]:
        now = self._clock() // 1_000_000_000
        horizon = now + window
        table = await self._router.table(storage_tenant, uid)
        found: list[dict[str, Any]] = []
        for path, mount in sorted(table.mounts.items()):
            if mount.type != "pki":
                continue
            store = PkiStore(mount.storage)
            ca_serials: set[str] = set()
            for issuer in await store.issuers():
                certificate = load_certificates(issuer["certificate"])[0]
                serial = format_serial(certificate.serial_number)
                ca_serials.add(serial)
                entry = self._entry(path, certificate, now, is_ca=True)
                entry["issuer_id"] = issuer["issuer_id"]
                if entry["expiration"] <= horizon:
                    found.append(entry)
            for key in await store.cert_serials():
                record = await store.cert(key)
                serial = key.replace("-", ":")
                if record is None or serial in ca_serials or record.get("revocation_time_ns"):
                    continue
                if record["not_after"] > horizon:
                    continue
                certificate = load_certificates(record["certificate"])[0]
                found.append(self._entry(path, certificate, now, is_ca=False))
        found.sort(key=lambda entry: (entry["expiration"], entry["mount"], entry["serial_number"]))
        return {"certificates": found, "within": window}

    @staticmethod
    def _entry(
        path: str, certificate: x509.Certificate, now: int, *, is_ca: bool
    ) -> dict[str, Any]:
        expiration = int(certificate.not_valid_after_utc.timestamp())
        return {
            "common_name": _common_name(certificate),
            "expiration": expiration,
            "expired": expiration <= now,
            "is_ca": is_ca,
            "mount": path,
            "not_after": certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "serial_number": format_serial(certificate.serial_number),
        }
