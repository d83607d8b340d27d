"""The pki engine type: Vault's PKI secrets engine per mount (CAs, roles, issue, sign, CRL).

Each mount is its own set of certificate authorities: its issuers, their keys (sealed in the
mount's storage like every record, returned only by an `exported` generation), the
certificates it issued, its revocations and CRLs. Nothing here names another mount or tenant:
the storage a handler gets is the mount's own (`MountStorage`), so a same-named mount and role
in another tenant is another CA with other keys.

This module routes; the handlers live by job: `_authority` (roots, intermediates, issuers,
URLs), `_leaves` (roles, issue, sign), `_revocation` (revoke, CRLs, fetch, tidy), `_ocsp`
(the OCSP responder), `_import` (bundles, certificates and keys imported, `set-signed`),
`_keyring` (`keys`, `key/<ref>`, `config/keys`), `_removal` (`DELETE issuer/<ref>`,
`DELETE root`), `_crl_settings` (`config/crl`, `crl/rotate-delta`; the CRLs themselves,
complete and delta, are signed by `_crls`), `_verbatim` (`sign-verbatim`), `_auto_tidy`
(`config/auto-tidy`, `tidy-cancel` and the scheduler of the `pki-auto-tidy` service). A role with
`generate_lease` gets a lease from the Core (`LeasedSecret`); its end revokes the
certificate.

Paths, fields, statuses and texts are OpenBao 2.7's (reference/pki-engine.md, checked against
`bao server -dev`). The fetch endpoints (`ca`, `ca/pem`, `ca_chain`, `crl`, `crl/pem`,
`crl/delta…`, `cert/…`, `issuer/<ref>/pem|der|json|crl…`, `LIST issuers`) and OCSP answer
files with OpenBao's content types and need no token: the type declares OpenBao's
unauthenticated paths (`unauthenticated_paths`), which only the Core reads. CRL rebuilds and
revocation stamps are check-and-set writes, so concurrent revokes lose nothing and never
reuse a CRL number. Changes to a mount's CAs (generating, importing, renaming or deleting
issuers and keys, their defaults) take the mount's lock, as OpenBao's take its issuers lock:
each reads what the others wrote (a key imported while its certificate is imported links to
it, whichever lands second). The lock is this process's: across stateless instances in front
of one upstream store, CA administration is best run through one of them.
`config/crl`'s timed parts (`auto_rebuild`'s grace period, `delta_rebuild_interval`) act on
the next fetch or revoke instead of in a periodic function; OpenBao 2.7 has no unified or
cross-cluster CRLs, and neither do we (those fields are ignored with its warning).
Not served (yet): ACME, `unified-ocsp`, and managed or external keys.
Tidy runs to completion inside the request (OpenBao's runs in the background; both answer
202), so `tidy-status` is `Finished` right after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final
from weakref import WeakValueDictionary

from tenantvault._clock import Clock, system_clock
from tenantvault._exceptions import (
    InvalidRequestError,
    NotFoundError,
    UnsupportedOperationError,
)
from tenantvault._paths import validate_name
from tenantvault._request import OCSP_GET_FIELD, OCSP_REQUEST_FIELD, Operation, Response
from tenantvault.backends._protocol import Backend
from tenantvault.engines._protocol import Mount, MountSource
from tenantvault.engines._route import Call, Route
from tenantvault.engines._special import PathPatterns
from tenantvault.engines.pki._authority import Authorities
from tenantvault.engines.pki._auto_tidy import AUTO_TIDY_FIELDS, AutoTidy
from tenantvault.engines.pki._common import (
    ISSUE_FIELDS,
    ROOT_FIELDS,
    SUBJECT_FIELDS,
    TIDY_FIELDS,
    URL_FIELDS,
)
from tenantvault.engines.pki._crl_config import CRL_CONFIG_FIELDS
from tenantvault.engines.pki._crl_settings import CrlSettings
from tenantvault.engines.pki._import import Imports
from tenantvault.engines.pki._keyring import Keyring
from tenantvault.engines.pki._leaves import Leaves
from tenantvault.engines.pki._ocsp import Responder
from tenantvault.engines.pki._removal import Removals
from tenantvault.engines.pki._revocation import Revocations
from tenantvault.engines.pki._roles import ROLE_FIELDS
from tenantvault.engines.pki._store import PkiStore, is_serial
from tenantvault.engines.pki._verbatim import VERBATIM_FIELDS, Verbatim

__all__ = ["PKIEngine"]

Handler = Callable[[Call], Awaitable[Response]]

# OpenBao 2.7's PathsSpecial.Unauthenticated of pki (backend.go; ACME's not served here): what
# a TLS client, a CRL distribution point fetcher or a browser must reach without a token.
_UNAUTHENTICATED: Final = PathPatterns(
    (
        "cert/*",
        "ca/pem",
        "ca_chain",
        "ca",
        "crl/delta",
        "crl/delta/pem",
        "crl/pem",
        "crl",
        "issuer/+/crl/der",
        "issuer/+/crl/pem",
        "issuer/+/crl",
        "issuer/+/crl/delta/der",
        "issuer/+/crl/delta/pem",
        "issuer/+/crl/delta",
        "issuer/+/pem",
        "issuer/+/der",
        "issuer/+/json",
        "issuers/",  # LIST, matched with its trailing '/'
        "ocsp",
        "ocsp/*",
    )
)


class PKIEngine:
    """The registered `pki` type: one CA hierarchy per mount."""

    type: Final = "pki"

    def __init__(self, *, clock: Clock = system_clock) -> None:
        self._ca = Authorities(clock=clock)
        self._revocations = Revocations(clock=clock)
        self._leaves = Leaves(clock=clock)
        self._crl_settings = CrlSettings(clock=clock)
        self._verbatim = Verbatim(clock=clock)
        self._imports = Imports(clock=clock)
        self._keyring = Keyring(clock=clock)
        self._ocsp = Responder(clock=clock)
        self._removals = Removals(clock=clock)
        self.auto_tidy = AutoTidy(self._revocations, clock=clock)
        # One lock per mount (by uuid) while anyone holds it; gone with its last holder.
        self._ca_locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    def _ca_lock(self, mount: Mount) -> asyncio.Lock:
        lock = self._ca_locks.get(mount.uuid)
        if lock is None:
            lock = self._ca_locks[mount.uuid] = asyncio.Lock()
        return lock

    def attach(self, backend: Backend, mounts: MountSource) -> None:
        """Let auto-tidy find pki mounts with `mounts` and keep its tenant set in `backend`."""
        self.auto_tidy.attach(backend, mounts)

    @property
    def unauthenticated_paths(self) -> PathPatterns:
        """The CA, chain, CRL and certificate fetches, served without a token (as OpenBao)."""
        return _UNAUTHENTICATED

    def check_options(self, options: Mapping[str, str]) -> dict[str, str]:
        return dict(options)

    async def destroy(self, mount: Mount) -> None:
        return None  # no caches: every answer is read from the mount's records

    async def revoke_secret(self, mount: Mount, internal: Mapping[str, Any]) -> None:
        """A `generate_lease` certificate's lease ended or was revoked: revoke the certificate
        (as Vault does). Idempotent; a certificate already gone or expired is left alone."""
        store = PkiStore(mount.storage)
        serial = str(internal.get("serial_number", ""))
        if is_serial(serial) and await store.cert(serial) is not None:
            await self._revocations.revoke_serial(store, serial)

    async def renew_secret(
        self,
        mount: Mount,
        internal: Mapping[str, Any],
        *,
        increment_seconds: int,
        issued_ns: int,
        now_ns: int,
    ) -> Any:
        """Never called: certificate leases are not renewable (a certificate's NotAfter is
        fixed when it is signed)."""
        raise InvalidRequestError("lease is not renewable")

    def route(self, operation: Operation, path: str, mount: Mount) -> Route:
        """The route of a mount-relative path: its handler, capability and parameters."""
        store = PkiStore(mount.storage)
        parts = path.split("/") if path else []
        table = self._table(parts, store, mount)
        handler_for = table.get(
            operation if operation is not Operation.CREATE else Operation.UPDATE
        )
        if handler_for is None:
            if not table:
                raise NotFoundError("unsupported path")
            raise UnsupportedOperationError()
        handler, parameters, capability = handler_for
        acl = mount.path + path
        if operation is Operation.LIST and not acl.endswith("/"):
            acl += "/"
        if capability == "" and operation in (Operation.UPDATE, Operation.CREATE):
            # Roles have Vault's existence check: create for a new one, update otherwise.
            name = parts[1]

            async def exists(_tenant: str) -> bool:
                return await store.role(name) is not None

            return Route(
                acl,
                "create" if operation is Operation.CREATE else None,
                handler,
                exists=exists if operation is Operation.UPDATE else None,
                mount=mount.name,
                parameters=parameters,
            )
        return Route(acl, capability, handler, mount=mount.name, parameters=parameters)

    def _table(
        self, parts: list[str], store: PkiStore, mount: Mount
    ) -> dict[Operation, tuple[Handler, frozenset[str], str]]:
        """The handlers of one path by operation: (handler, parameters, capability)."""
        none: frozenset[str] = frozenset()
        read, update, delete, listing = (
            Operation.READ,
            Operation.UPDATE,
            Operation.DELETE,
            Operation.LIST,
        )
        count = len(parts)
        head = parts[0] if parts else ""

        def bind(method: Callable[..., Awaitable[Response]], *args: Any) -> Handler:
            async def run(call: Call) -> Response:
                return await method(call, store, mount, *args)

            return run

        def changing(method: Callable[..., Awaitable[Response]], *args: Any) -> Handler:
            """A handler that changes the mount's issuers or keys: one at a time per mount."""
            lock = self._ca_lock(mount)

            async def run(call: Call) -> Response:
                async with lock:
                    return await method(call, store, mount, *args)

            return run

        if count == 3 and head == "root" and parts[1] == "generate":
            return {update: (changing(self._ca.root_generate, parts[2]), ROOT_FIELDS, "update")}
        if count == 4 and parts[:3] == ["issuers", "generate", "root"]:
            return {update: (changing(self._ca.root_generate, parts[3]), ROOT_FIELDS, "update")}
        if parts == ["root", "sign-intermediate"]:
            return {
                update: (
                    bind(self._ca.sign_intermediate, "default"),
                    SUBJECT_FIELDS | {"csr", "use_csr_values", "issuer_ref"},
                    "update",
                )
            }
        if count == 3 and head == "issuer" and parts[2] == "sign-intermediate":
            return {
                update: (
                    bind(self._ca.sign_intermediate, parts[1]),
                    SUBJECT_FIELDS | {"csr", "use_csr_values"},
                    "update",
                )
            }
        kind = ""
        if count == 3 and parts[:2] == ["intermediate", "generate"]:
            kind = parts[2]
        elif count == 4 and parts[:3] == ["issuers", "generate", "intermediate"]:
            kind = parts[3]
        if kind:
            return {
                update: (
                    changing(self._ca.intermediate_generate, kind),
                    ROOT_FIELDS | {"add_basic_constraints"},
                    "update",
                )
            }
        if parts == ["intermediate", "set-signed"]:
            set_signed = changing(self._imports.import_issuers, "set-signed")
            return {update: (set_signed, frozenset({"certificate"}), "update")}
        if parts in (
            ["issuers", "import", "bundle"],
            ["issuers", "import", "cert"],
            ["config", "ca"],
        ):
            which = parts[2] if head == "issuers" else "config/ca"
            fields = frozenset(
                {"pem_bundle", "certificate"} if head == "issuers" else {"pem_bundle"}
            )
            return {update: (changing(self._imports.import_issuers, which), fields, "update")}
        if parts == ["keys", "import"]:
            fields = frozenset({"pem_bundle", "key_name"})
            return {update: (changing(self._imports.import_key), fields, "update")}
        if parts in (["keys"], ["keys", ""]):
            return {listing: (bind(self._keyring.list_keys), none, "list")}
        if count == 2 and head == "key" and parts[1]:
            return {
                read: (bind(self._keyring.read_key, parts[1]), none, "read"),
                update: (
                    changing(self._keyring.write_key, parts[1]),
                    frozenset({"key_name"}),
                    "update",
                ),
                delete: (changing(self._keyring.delete_key, parts[1]), none, "delete"),
            }
        if parts == ["config", "keys"]:
            return {
                read: (bind(self._keyring.read_keys_config), none, "read"),
                update: (
                    changing(self._keyring.write_keys_config),
                    frozenset({"default"}),
                    "update",
                ),
            }
        if parts == ["root"]:
            return {delete: (changing(self._removals.delete_root), none, "delete")}
        if parts == ["ocsp"]:
            fields = frozenset({OCSP_REQUEST_FIELD})
            # A read is RFC 6960's GET form with its base64 URL-escaped, which the HTTP
            # layer hands on as data (`OCSP_GET_FIELD`); a bare `GET ocsp` is unsupported.
            escaped = frozenset({OCSP_GET_FIELD})
            return {
                update: (bind(self._ocsp.query_post), fields, "update"),
                read: (bind(self._ocsp.query_escaped), escaped, "read"),
            }
        if count >= 2 and head == "ocsp":
            # The request is base64, whose alphabet has '/': all the rest of the path.
            return {read: (bind(self._ocsp.query_get, "/".join(parts[1:])), none, "read")}
        if parts == ["config", "issuers"] or parts == ["config", "issuers", ""]:
            fields = frozenset({"default", "default_follows_latest_issuer"})
            return {
                read: (bind(self._ca.read_issuers_config), none, "read"),
                update: (changing(self._ca.write_issuers_config), fields, "update"),
            }
        if parts == ["config", "crl"]:
            return {
                read: (bind(self._crl_settings.read_crl_config), none, "read"),
                update: (bind(self._crl_settings.write_crl_config), CRL_CONFIG_FIELDS, "update"),
            }
        if parts == ["crl", "rotate-delta"]:
            return {read: (bind(self._crl_settings.rotate_delta), none, "read")}
        if 4 <= count <= 5 and head == "issuer" and parts[1] and parts[2:4] == ["crl", "delta"]:
            form = parts[4] if count == 5 else ""
            if form in ("", "pem", "der"):
                fetch = bind(self._revocations.read_issuer_crl, parts[1], form, True)
                return {read: (fetch, none, "read")}
        if (head == "sign-verbatim" and count <= 2) or (
            head == "issuer" and 3 <= count <= 4 and parts[1] and parts[2] == "sign-verbatim"
        ):
            # `sign-verbatim(/<role>)`, `issuer/<ref>/sign-verbatim(/<role>)`: the role is optional.
            role = parts[-1] if count in (2, 4) else ""
            if role:
                validate_name(role)
            reference = parts[1] if head == "issuer" else None
            sign = bind(self._verbatim.sign_verbatim, role or None, reference)
            return {update: (sign, VERBATIM_FIELDS, "update")}
        if parts == ["config", "urls"]:
            return {
                read: (bind(self._ca.read_urls), none, "read"),
                update: (bind(self._ca.write_urls), URL_FIELDS, "update"),
            }
        if parts in (["issuers"], ["issuers", ""]):
            return {listing: (bind(self._ca.list_issuers), none, "list")}
        if count == 2 and head == "issuer" and parts[1]:
            fields = frozenset(
                {
                    "issuer_name",
                    "leaf_not_after_behavior",
                    "manual_chain",
                    "usage",
                    "revocation_signature_algorithm",
                    "issuing_certificates",
                    "crl_distribution_points",
                    "ocsp_servers",
                }
            )
            return {
                read: (bind(self._ca.read_issuer, parts[1]), none, "read"),
                update: (changing(self._ca.write_issuer, parts[1]), fields, "update"),
                delete: (changing(self._removals.delete_issuer, parts[1]), none, "delete"),
            }
        if count == 3 and head == "issuer" and parts[1] and parts[2] in ("pem", "der", "json"):
            fetch = bind(self._revocations.read_issuer_file, parts[1], parts[2])
            return {read: (fetch, none, "read")}
        if 3 <= count <= 4 and head == "issuer" and parts[1] and parts[2] == "crl":
            form = parts[3] if count == 4 else ""
            if form in ("", "pem", "der"):
                fetch = bind(self._revocations.read_issuer_crl, parts[1], form)
                return {read: (fetch, none, "read")}
        if parts in (
            ["ca"],
            ["ca", "pem"],
            ["ca_chain"],
            ["crl"],
            ["crl", "pem"],
            ["crl", "delta"],
            ["crl", "delta", "pem"],
        ):
            which = "/".join(parts)
            return {read: (bind(self._revocations.read_raw, which), none, "read")}
        if count == 2 and head == "cert" and parts[1] in ("ca", "ca_chain", "crl", "delta-crl"):
            return {read: (bind(self._revocations.read_special, parts[1]), none, "read")}
        if 3 <= count <= 4 and head == "cert" and (parts[1] == "ca" or is_serial(parts[1])):
            if parts[2:] in (["raw"], ["raw", "pem"]):
                form = "pem" if count == 4 else "der"
                fetch = bind(self._revocations.read_cert_file, parts[1], form)
                return {read: (fetch, none, "read")}
        if count == 2 and head == "cert" and is_serial(parts[1]):
            return {read: (bind(self._revocations.read_cert, parts[1]), none, "read")}
        if parts in (["certs", "revoked"], ["certs", "revoked", ""]):
            return {listing: (bind(self._revocations.list_revoked), none, "list")}
        if parts in (["certs"], ["certs", ""]):
            return {listing: (bind(self._revocations.list_certs), none, "list")}
        if parts == ["crl", "rotate"]:
            return {read: (bind(self._revocations.rotate_crl), none, "read")}
        if parts == ["revoke"]:
            return {
                update: (
                    bind(self._revocations.revoke),
                    frozenset({"serial_number", "certificate"}),
                    "update",
                )
            }
        if parts == ["tidy"]:
            return {update: (bind(self._revocations.tidy), TIDY_FIELDS, "update")}
        if parts == ["tidy-cancel"]:
            return {update: (bind(self.auto_tidy.cancel), none, "update")}
        if parts == ["config", "auto-tidy"]:
            return {
                read: (bind(self.auto_tidy.read_config), none, "read"),
                update: (bind(self.auto_tidy.write_config), AUTO_TIDY_FIELDS, "update"),
            }
        if parts == ["tidy-status"]:
            return {read: (bind(self._revocations.tidy_status), none, "read")}
        if parts in (["roles"], ["roles", ""]):
            return {listing: (bind(self._leaves.list_roles), none, "list")}
        if count == 2 and head == "roles" and parts[1]:
            name = parts[1]
            validate_name(name)
            return {
                read: (bind(self._leaves.read_role, name), none, "read"),
                update: (bind(self._leaves.write_role, name), ROLE_FIELDS, ""),
                delete: (bind(self._leaves.delete_role, name), none, "delete"),
                Operation.PATCH: (bind(self._leaves.patch_role, name), ROLE_FIELDS, "patch"),
            }
        if count == 2 and head in ("issue", "sign") and parts[1]:
            method = self._leaves.issue if head == "issue" else self._leaves.sign
            fields = ISSUE_FIELDS | ({"csr"} if head == "sign" else set())
            return {update: (bind(method, parts[1], None), frozenset(fields), "update")}
        if count == 4 and head == "issuer" and parts[2] in ("issue", "sign") and parts[3]:
            method = self._leaves.issue if parts[2] == "issue" else self._leaves.sign
            fields = ISSUE_FIELDS | ({"csr"} if parts[2] == "sign" else set())
            return {update: (bind(method, parts[3], parts[1]), frozenset(fields), "update")}
        return {}
