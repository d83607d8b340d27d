"""Revocation, CRLs, fetching stored certificates and tidying the certificate store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tenantvault._cas import retry_on_conflict
from tenantvault._clock import format_time
from tenantvault._durations import parse_duration
from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
    TenantVaultError,
)
from tenantvault._fields import get_bool, get_int, get_str
from tenantvault._request import Response
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call
from tenantvault.engines.pki._common import (
    PkiHandlers,
)
from tenantvault.engines.pki._crl_config import load_crl_config
from tenantvault.engines.pki._crls import current_delta
from tenantvault.engines.pki._store import PkiStore, is_serial, serial_key
from tenantvault.engines.pki._tidy_status import (
    TIDY_DEFAULTS,
    TIDY_KINDS,
    finished_status,
    inactive_status,
    settings_shown,
)
from tenantvault.engines.pki._x509 import (
    certificate_der,
    crl_der,
    format_serial,
    load_certificates,
)

__all__ = ["Revocations"]

_CERT_DER: Final = "application/pkix-cert"
_CERT_PEM: Final = "application/pem-certificate-chain"
_CRL_DER: Final = "application/pkix-crl"
_CRL_PEM: Final = "application/x-pem-file"
# The default issuer's files and their types (OpenBao labels the PEM chain pkix-cert, sic).
_FILE_TYPES: Final = {
    "ca": _CERT_DER,
    "ca/pem": _CERT_PEM,
    "ca_chain": _CERT_DER,
    "crl": _CRL_DER,
    "crl/pem": _CRL_PEM,
    "crl/delta": _CRL_DER,
    "crl/delta/pem": _CRL_PEM,
}


def _file(body: bytes, content_type: str) -> Response:
    """A raw answer: a certificate or CRL file, no envelope."""
    return Response(body=body, content_type=content_type)


def _bare(pem: str) -> str:
    """A PEM as OpenBao's legacy fetches (`ca/pem`, `cert/<serial>`, `crl/pem`) answer it:
    no final newline (the per-issuer ones, `issuer/<ref>/pem`, end with one)."""
    return pem.rstrip("\n")


def _chain(pems: list[str]) -> str:
    """A chain as one text, OpenBao's legacy way: newline-separated, no final newline."""
    return "\n".join(_bare(pem) for pem in pems)


def _no_file(content_type: str) -> Response:
    """No such file yet (no CA, no such serial): 204 with the file's type, as OpenBao."""
    return Response(status=204, content_type=content_type)


async def _fetched_issuer(store: PkiStore, reference: str) -> dict[str, Any]:
    """The issuer a fetch names; OpenBao's plain 500 if there is none (these fetches answer
    the lookup's error as it is, where `issuer/<ref>` wraps it in a multierror)."""
    issuer = await store.resolve_issuer(reference)
    if issuer is None:
        if reference == "default":
            raise TenantVaultError("no default issuer currently configured")
        raise TenantVaultError(f"unable to find PKI issuer for reference: {reference}")
    return issuer


class Revocations(PkiHandlers):
    """`revoke`, `crl/rotate`, `cert/<serial>`, `certs`, `tidy` and `tidy-status`."""

    async def read_special(self, call: Call, store: PkiStore, mount: Mount, which: str) -> Response:
        """`cert/ca`, `cert/ca_chain`, `cert/crl`: the default issuer's PEMs."""
        issuer = await store.resolve_issuer("default")
        if issuer is None:
            message = "no default issuer currently configured"
            if which in ("crl", "delta-crl"):
                raise TenantVaultError(message)  # OpenBao: a plain 500 here
            raise InvalidRequestError(message)
        answer: dict[str, Any] = {"revocation_time": 0, "revocation_time_rfc3339": ""}
        if which == "ca":
            answer["certificate"] = _bare(issuer["certificate"])
        elif which == "ca_chain":
            joined = _chain(issuer["ca_chain"])
            answer["ca_chain"] = joined
            answer["certificate"] = joined
        else:
            answer["certificate"] = _bare(await self._crl_text(store, issuer, which != "crl"))
        return Response(data=dict(sorted(answer.items())))

    async def read_raw(self, call: Call, store: PkiStore, mount: Mount, which: str) -> Response:
        """`ca`, `ca/pem`, `ca_chain`, `crl`, `crl/pem`, `crl/delta`, `crl/delta/pem`: the
        default issuer's certificate, chain, CRL or delta CRL as a file (DER or PEM) with
        OpenBao's content types; 204 without a CA."""
        issuer = await store.resolve_issuer("default")
        if issuer is None:
            return _no_file(_FILE_TYPES[which])
        if which in ("ca", "ca/pem"):
            pem = _bare(issuer["certificate"])
            if which == "ca/pem":
                return _file(pem.encode(), _CERT_PEM)
            return _file(certificate_der(pem), _CERT_DER)
        if which == "ca_chain":
            # OpenBao labels the PEM chain application/pkix-cert (sic).
            return _file(_chain(issuer["ca_chain"]).encode(), _CERT_DER)
        crl_pem = _bare(await self._crl_text(store, issuer, which.startswith("crl/delta")))
        if which.endswith("/pem"):
            return _file(crl_pem.encode(), _CRL_PEM)
        return _file(crl_der(crl_pem), _CRL_DER)

    async def _crl_text(self, store: PkiStore, issuer: dict[str, Any], delta: bool) -> str:
        """The PEM of the issuer's complete CRL, or of its delta CRL (`_crls`)."""
        if not delta:
            return str((await self._current_crl(store, issuer))["crl"])
        record = await current_delta(
            store, issuer, lambda: self._signing_key(store, issuer), self._clock
        )
        return str(record["delta"])

    async def read_issuer_file(
        self, call: Call, store: PkiStore, mount: Mount, reference: str, form: str
    ) -> Response:
        """`issuer/<ref>/pem`, `/der` (files) and `/json`: one issuer's certificate."""
        issuer = await _fetched_issuer(store, reference)
        pem = issuer["certificate"].rstrip("\n") + "\n"
        if form == "pem":
            return _file(pem.encode(), _CERT_PEM)
        if form == "der":
            return _file(certificate_der(pem), _CERT_DER)
        return Response(
            data={
                "ca_chain": [entry.rstrip("\n") + "\n" for entry in issuer["ca_chain"]],
                "certificate": pem,
                "issuer_id": issuer["issuer_id"],
                "issuer_name": issuer["issuer_name"],
            }
        )

    async def read_issuer_crl(
        self,
        call: Call,
        store: PkiStore,
        mount: Mount,
        reference: str,
        form: str,
        delta: bool = False,
    ) -> Response:
        """`issuer/<ref>/crl` (JSON), `/crl/pem` and `/crl/der` (files): one issuer's CRL;
        `issuer/<ref>/crl/delta…` its delta CRL."""
        issuer = await _fetched_issuer(store, reference)
        crl_pem = (await self._crl_text(store, issuer, delta)).rstrip("\n") + "\n"
        if form == "pem":
            return _file(crl_pem.encode(), _CRL_PEM)
        if form == "der":
            return _file(crl_der(crl_pem), _CRL_DER)
        return Response(data={"crl": crl_pem})

    async def read_cert_file(
        self, call: Call, store: PkiStore, mount: Mount, serial: str, form: str
    ) -> Response:
        """`cert/<serial>/raw` (DER) and `/raw/pem`: a stored certificate, or the default
        issuer's for `ca`, as a file; 204 when there is none (as OpenBao)."""
        if serial == "ca":
            found = await store.resolve_issuer("default")
        else:
            found = await store.cert(serial)
        if found is None:
            return _no_file(_CERT_PEM if form == "pem" else _CERT_DER)
        pem = _bare(found["certificate"])
        if form == "pem":
            return _file(pem.encode(), _CERT_PEM)
        return _file(certificate_der(pem), _CERT_DER)

    async def read_cert(self, call: Call, store: PkiStore, mount: Mount, serial: str) -> Response:
        """`GET cert/<serial>`: a stored certificate and its revocation state."""
        record = await store.cert(serial)
        if record is None:
            raise NotFoundError()
        revoked_ns = int(record.get("revocation_time_ns") or 0)
        answer: dict[str, Any] = {
            "certificate": _bare(record["certificate"]),
            "revocation_time": revoked_ns // 1_000_000_000,
            "revocation_time_rfc3339": format_time(revoked_ns),
        }
        if revoked_ns:
            answer["issuer_id"] = record["issuer_id"]
        return Response(data=answer)

    async def list_certs(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`LIST certs`: the serials of the stored certificates."""
        serials = await store.cert_serials()
        if not serials:
            raise NotFoundError()
        return Response(data={"keys": [serial.replace("-", ":") for serial in serials]})

    async def list_revoked(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`LIST certs/revoked`: the serials of the revoked certificates still stored."""
        serials = await store.revoked_serials()
        if not serials:
            raise NotFoundError()
        return Response(data={"keys": [serial.replace("-", ":") for serial in serials]})

    async def rotate_crl(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`crl/rotate`: re-sign every issuer's CRL."""
        for issuer in await store.issuers():
            if issuer["key_id"]:
                await self._rebuild_crl(store, issuer, force=False)
        return Response(data={"success": True})

    async def revoke(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`POST revoke`: revoke a certificate by serial or PEM."""
        serial = get_str(call.data, "serial_number", default="") or ""
        pem = get_str(call.data, "certificate", default="") or ""
        if serial and pem:
            raise InvalidRequestError(
                "Must provide either the certificate or the serial to revoke; not both."
            )
        if not serial and not pem:
            raise InvalidRequestError(
                "The serial number or certificate to revoke must be provided."
            )
        if pem:
            parsed = load_certificates(pem)
            if not parsed:
                raise InvalidRequestError("certificate could not be parsed")
            serial = format_serial(parsed[0].serial_number)
        return await self.revoke_serial(store, serial)

    async def revoke_serial(self, store: PkiStore, serial: str) -> Response:
        """Revoke one stored certificate and re-sign its issuer's CRL (Vault's texts)."""
        for issuer in await store.issuers():
            number = load_certificates(issuer["certificate"])[0].serial_number
            if serial_key(format_serial(number)) == serial_key(serial):
                raise InvalidRequestError(
                    f"adding issuer (id: {issuer['issuer_id']}) to its own CRL is not allowed"
                )
        if not is_serial(serial):
            raise InvalidRequestError(f"certificate with serial {serial} not found.")

        config = await load_crl_config(store)

        async def stamp() -> tuple[int, str, bool] | None:
            """Check-and-set the revocation time on the certificate record: (time, issuer,
            new); None if it expired. Concurrent revokes of one serial agree on one time."""
            record, revision = await store.cert_versioned(serial)
            if record is None:
                raise InvalidRequestError(f"certificate with serial {serial} not found.")
            if record.get("revocation_time_ns"):
                return int(record["revocation_time_ns"]), record["issuer_id"], False
            now_ns = self._clock()
            # OpenBao's two seconds of wiggle room: NotAfter has whole seconds.
            expired = record["not_after"] < now_ns // 1_000_000_000 + 2
            if expired and not config.allow_expired_cert_revocation:
                return None
            record["revocation_time_ns"] = now_ns
            await store.put_cert(serial, record, expected_revision=revision)
            return now_ns, record["issuer_id"], True

        stamped = await retry_on_conflict(stamp, what="the certificate")
        if stamped is None:
            return Response(
                warnings=[
                    f"certificate with serial {serial} already expired; refusing to add to CRL. "
                    "Enable 'AllowExpiredCertRevocation' to allow revoking expired certificates."
                ]
            )
        revoked_ns, issuer_id, new = stamped
        # A revocation stamped by a request that died before marking it is finished by the
        # next revoke of the same serial: the mark, then a CRL that lists it.
        if new or not await store.is_marked_revoked(serial):
            await store.mark_revoked(serial, issuer_id)
            signer = await store.issuer(issuer_id)
            if signer is not None and signer["key_id"]:
                # With `auto_rebuild` the CRL waits for its grace period (or `crl/rotate`).
                if config.auto_rebuild:
                    await self._current_crl(store, signer)
                else:
                    await self._rebuild_crl(store, signer, force=False)
        return Response(
            data={
                "revocation_time": revoked_ns // 1_000_000_000,
                "revocation_time_rfc3339": format_time(revoked_ns),
                "state": "revoked",
            }
        )

    async def tidy(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`POST tidy`: delete certificates (and revocations) past NotAfter + safety_buffer."""
        data = call.data
        raw = data.get("safety_buffer")
        buffer = 72 * 3600 if raw in (None, "") else parse_duration(raw, field="safety_buffer")
        if buffer <= 0:
            raise InvalidRequestError("safety_buffer must be greater than zero")
        settings: dict[str, Any] = {**TIDY_DEFAULTS, "safety_buffer": buffer}
        for name in TIDY_KINDS:
            settings[name] = bool(get_bool(data, name, default=False))
        for name in ("revoked_safety_buffer", "issuer_safety_buffer", "acme_account_safety_buffer"):
            if data.get(name) not in (None, ""):
                settings[name] = parse_duration(data[name], field=name)
        if data.get("pause_duration") not in (None, ""):
            settings["pause_duration"] = parse_duration(
                data["pause_duration"], field="pause_duration"
            )
        if data.get("page_size") not in (None, ""):
            page_size = get_int(data, "page_size")
            if page_size is None or page_size <= 5:
                raise InvalidRequestError("page_size must be greater than five")
            settings["page_size"] = page_size
        if not settings["tidy_cert_store"] and not settings["tidy_revoked_certs"]:
            return Response(
                status=202,
                warnings=[
                    "Manual tidy requested but no tidy operations were set. Enable at least one "
                    "tidy operation to be run (tidy_cert_store / tidy_revoked_certs / "
                    "tidy_invalid_certs / tidy_revoked_cert_issuer_associations / "
                    "tidy_expired_issuers / tidy_move_legacy_ca_bundle / tidy_acme)."
                ],
            )
        await self.run_tidy(store, settings)
        return Response(
            status=202,
            warnings=[
                "Tidy operation successfully started. Any information from the operation will "
                "be printed to OpenBao's server logs."
            ],
        )

    async def run_tidy(self, store: PkiStore, settings: Mapping[str, Any]) -> None:
        """One tidy with `settings` (a full tidy config, `TIDY_DEFAULTS`' keys): delete the
        certificates past NotAfter + `safety_buffer` (`tidy_cert_store`: those not revoked;
        `tidy_revoked_certs`: the revoked ones and their marks, past the revoked buffer),
        rebuild the CRLs they were on, and store the report: `POST tidy` and auto-tidy both."""
        shown = settings_shown(settings)
        cert_store, revoked = bool(shown["tidy_cert_store"]), bool(shown["tidy_revoked_certs"])
        started = self._clock()
        cutoff = started // 1_000_000_000 - int(shown["safety_buffer"])
        revoked_cutoff = started // 1_000_000_000 - int(shown["revoked_safety_buffer"])
        deleted = revoked_deleted = 0
        revoked_set = set(await store.revoked_serials())
        touched: set[str] = set()
        for serial in await store.cert_serials():
            record = await store.cert(serial)
            if record is None:
                continue
            if serial in revoked_set:
                if revoked and record["not_after"] < revoked_cutoff:
                    await store.unmark_revoked(serial)
                    await store.delete_cert(serial)
                    revoked_deleted += 1
                    touched.add(record["issuer_id"])
            elif cert_store and record["not_after"] < cutoff:
                await store.delete_cert(serial)
                deleted += 1
        for issuer_id in touched:
            issuer = await store.issuer(issuer_id)
            if issuer is not None and issuer["key_id"]:
                await self._rebuild_crl(store, issuer, force=False)
        await store.put_tidy_status(
            finished_status(
                settings,
                started=format_time(started),
                finished=format_time(self._clock()),
                deleted=deleted,
                revoked_deleted=revoked_deleted,
            )
        )

    async def tidy_status(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`GET tidy-status`: what the last tidy did (every field null before the first)."""
        status = await store.tidy_status()
        if status is None:
            status = inactive_status(mount.uuid)
        else:
            status["internal_backend_uuid"] = mount.uuid
        return Response(data=status)
