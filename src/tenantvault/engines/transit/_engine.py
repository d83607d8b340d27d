"""The transit engine type: routes and handlers of encryption as a service, per mount.

Every tenant starts with `transit/` and may mount more; a mount's keys live in its own storage
(`_keys.KeyStore`), sealed under the mount's key (and, on the embedded store, the tenant's data
key), so key material dies with the mount and with the tenant. `_rotation` rotates keys whose
`auto_rotate_period` has passed, visiting only the tenants that hold such keys.

Behaviour, messages and status codes are OpenBao's transit (reference/vault-api.md §D.3), with
these deliberate differences: a caller can never supply a nonce (CVE-2023-4680: `nonce` is
refused with 400 in every mode; convergent nonces are derived); malformed input OpenBao
answers with 500 (bad batch shapes, undecodable `associated_data`, impossible key type
combinations, a sign request that fails) is a 400 here; an `hmac` key without `key_size` gets
32 bytes where OpenBao fails; key material is never exported (no export or backup endpoints).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from tenantvault import _b64
from tenantvault._cas import retry_on_conflict
from tenantvault._clock import Clock
from tenantvault._durations import parse_duration
from tenantvault._exceptions import (
    DecryptionError,
    InvalidRequestError,
    NotFoundError,
    UnsupportedOperationError,
)
from tenantvault._fields import get_bool, get_int, get_str
from tenantvault._paths import SecretPath, parse_path, validate_name
from tenantvault._records import decode_record
from tenantvault._request import Operation, Response
from tenantvault.backends._protocol import Backend
from tenantvault.crypto import (
    HMAC_ALGORITHMS,
    HMAC_MAX_KEY_SIZE,
    HMAC_MIN_KEY_SIZE,
    GoBase64Error,
    Keyring,
    KeyType,
    go_b64decode,
    random_bytes,
)
from tenantvault.engines._protocol import Mount, MountStorage
from tenantvault.engines._route import Call, Route
from tenantvault.engines._tools import (
    HASH_PARAMETERS,
    RANDOM_PARAMETERS,
    hash_answer,
    random_answer,
)
from tenantvault.engines.transit._keys import KEY_PREFIX, WRITE_ATTEMPTS, KeyStore
from tenantvault.engines.transit._portability import Portability
from tenantvault.engines.transit._rotation import MountSource, RotationScheduler

__all__ = ["TransitEngine"]

_DATAKEY_BITS: Final = {128: 16, 256: 32, 512: 64}
_MIN_AUTO_ROTATE_SECONDS: Final = 3600
_ENCRYPT_TYPES: Final = frozenset(
    {KeyType.AES128_GCM96, KeyType.AES256_GCM96, KeyType.CHACHA20_POLY1305}
)
# Vault key types tenantvault does not serve (asked for by name, they get a clear refusal).
_UNSERVED_TYPES: Final = frozenset(
    {
        "xchacha20-poly1305",
        "ecdsa-p256",
        "ecdsa-p384",
        "ecdsa-p521",
        "rsa-2048",
        "rsa-3072",
        "rsa-4096",
        "external-key",
    }
)
_NS: Final = 1_000_000_000
# Parsed mount-relative paths kept by `_parse` (each at most MAX_PATH_BYTES long).
_PARSED_PATHS: Final = 1024
# Resolved routes kept by `TransitEngine.route` (all but encrypt's, which hold one request's
# state); cleared whole when full.
_ROUTES: Final = 1024
_TRAILING_SEGMENTS: Final = {
    "encrypt": 0,
    "decrypt": 0,
    "rewrap": 0,
    "hmac": 1,
    "sign": 1,
    "verify": 1,
}

Handler = Callable[[Call], Awaitable[Response]]


# OpenBao quotes the submitted value in these three messages; we never echo input, which
# may be secret material sent to the wrong field and would then reach logs and audit.
_UNKNOWN_TYPE = "unknown key type"
_BAD_ALGORITHM = "unsupported algorithm"


def _decode(text: str) -> bytes:
    """Base64 as Vault decodes it; 400 with Go's message otherwise."""
    try:
        return go_b64decode(text)
    except GoBase64Error as error:
        raise InvalidRequestError(str(error)) from None


def _go_time(ns: int) -> str:
    """Go's RFC 3339 with nanoseconds, trailing zeros trimmed (`time.Time` in JSON)."""
    seconds, nanos = divmod(ns, _NS)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{stamp}{fraction}Z"


@functools.lru_cache(maxsize=_PARSED_PATHS)
def _parse(rest: str, allow_dir: bool) -> SecretPath:
    """`parse_path` of a mount-relative path, remembered: a pure function of its input, asked
    on every request for the same few paths (`encrypt/<key>`), and validating a path costs
    more than the rest of routing. Invalid paths raise and are never remembered."""
    return parse_path(rest, allow_dir=allow_dir)


def _key_type(name: str) -> KeyType:
    try:
        return KeyType(name)
    except ValueError:
        if name in _UNSERVED_TYPES:
            raise InvalidRequestError(f"key type {name} is not supported") from None
        raise InvalidRequestError(_UNKNOWN_TYPE) from None


def _version_arg(data: Mapping[str, Any]) -> int:
    """`key_version`: 0 means the latest; negative numbers get Vault's own message later."""
    return get_int(data, "key_version", default=0, minimum=-(2**53)) or 0


def _refuse_nonce(data: Mapping[str, Any]) -> None:
    """Callers never choose a nonce (CVE-2023-4680), not even in convergent mode."""
    if data.get("nonce") not in (None, ""):
        raise InvalidRequestError("nonce provided when not allowed")


# -- batch input -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    """One item of a batch (or the single request), as strings the way Vault reads them."""

    fields: dict[str, Any]
    reference: str = ""
    failure: InvalidRequestError | DecryptionError | None = None

    def text(self, name: str) -> str:
        value = self.fields.get(name)
        return value if isinstance(value, str) else ""

    @property
    def error(self) -> str:
        return self.failure.message if self.failure is not None else ""


def _each(
    items: list[_Item], work: Callable[[int, _Item], dict[str, Any]], *, failed: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run `work` on every item not already failed, in order; a user error fails only its own
    item (Vault's batch semantics), recorded as `failed` plus the item's `error`."""
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not item.failure:
            try:
                results.append(work(index, item))
                continue
            except (InvalidRequestError, DecryptionError) as error:
                item.failure = error
        results.append({**failed, "error": item.error})
    return results


def _batch(
    data: Mapping[str, Any],
    *,
    strings: Sequence[str],
    required: str | None = None,
    missing: str = "",
) -> list[_Item] | None:
    """The `batch_input` items, or None for a single request; 400 for a malformed batch."""
    raw = data.get("batch_input")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InvalidRequestError(
            "failed to parse batch input: source data must be an array or slice"
        )
    if not raw:
        raise InvalidRequestError("missing batch input to process")
    items: list[_Item] = []
    problems: list[str] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise InvalidRequestError(f"failed to parse batch input: [{index}] expected a map")
        _refuse_nonce(entry)
        fields: dict[str, Any] = {}
        for name in (*strings, "reference"):
            value = entry.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                problems.append(f"'[{index}].{name}' expected type 'string'")
                continue
            fields[name] = value
        if "key_version" in entry and entry["key_version"] is not None:
            try:
                fields["key_version"] = _version_arg(entry)
            except InvalidRequestError:
                problems.append(f"'[{index}].key_version' expected type 'int'")
        if required is not None and required not in fields and entry.get(required) is None:
            problems.append(f"'[{index}].{required}' {missing}")
        items.append(_Item(fields, reference=fields.get("reference", "")))
    if problems:
        raise InvalidRequestError("failed to parse batch input: " + "; ".join(problems))
    return items


def _crypt_items(
    data: Mapping[str, Any],
    field: str,
    *,
    missing: str,
    empty_ok: bool = False,
    rewrap: bool = False,
) -> tuple[list[_Item], bool, bool]:
    """The items of an encrypt, decrypt or rewrap request: its `batch_input`, or the request
    itself as one item. Returns them, whether it was a batch, and whether a context is set.

    `field` ("plaintext" or "ciphertext") is required, `missing` is Vault's 400 without it;
    `empty_ok`: an empty value counts as given (an empty plaintext is encrypted). A single
    rewrap carries no associated data. A context is set in every item or in none (Vault's
    rule): a batch mixing derived and non-derived use of a key is refused whole.
    """
    batch = _batch(
        data,
        strings=(field, "context", "associated_data"),
        required=None if rewrap else field,
        missing=missing,
    )
    items = batch
    if items is None:
        value = get_str(data, field)
        if value is None or not (value or empty_ok):
            raise InvalidRequestError(missing)
        items = [
            _Item(
                {
                    field: value,
                    "context": _one(data, "context"),
                    "associated_data": "" if rewrap else _one(data, "associated_data"),
                    "key_version": _version_arg(data),
                }
            )
        ]
    context_set = bool(items[0].text("context"))
    if any(bool(item.text("context")) != context_set for item in items):
        raise InvalidRequestError(
            "context should be set either in all the request blocks or in none"
        )
    return items, batch is not None, context_set


def _batch_status(
    data: Mapping[str, Any], *, failed: bool, succeeded: bool, warnings: list[str]
) -> int:
    """Vault's batch status: 400 when any item failed, unless overridden on a partial success."""
    if not failed:
        return 200
    status = 400
    if succeeded and data.get("partial_failure_response_code") is not None:
        code = get_int(data, "partial_failure_response_code", minimum=-(2**53)) or 0
        # Vault allows 1-599; a 1xx is not a final HTTP response, so it is refused here too.
        if 200 <= code <= 599:
            status = code
        else:
            warnings.append(
                "invalid HTTP response code override from partial_failure_response_code, "
                f"reverting to {status}"
            )
    return status


def _min_version(which: str, wanted: int, current: int, latest: int) -> int:
    """The new minimum `which` ("decryption", "encryption") version of a key; Vault's 400s.

    Raising it past the latest version would leave the key unable to decrypt (or encrypt)
    anything; an unchanged value is accepted as it is, as in Vault.
    """
    if wanted < 0:
        raise InvalidRequestError(f"min {which} version cannot be negative")
    if wanted != current and wanted > latest:
        raise InvalidRequestError(
            f"cannot set min {which} version of {wanted}, latest key version is {latest}"
        )
    return wanted


def _one(data: Mapping[str, Any], name: str) -> str:
    value = get_str(data, name)
    return value if value is not None else ""


# The top-level parameters of each transit endpoint (`Route.parameters`), after OpenBao's
# transit plugin; `batch_input` items are checked field by field by `_batch`. `key_version`
# on decrypt and `context` on a key read are ours (OpenBao warns about them).
_BATCH = frozenset({"batch_input", "partial_failure_response_code"})
_SIGNING = frozenset(
    {
        "input",
        "context",
        "key_version",
        "algorithm",
        "hash_algorithm",
        "prehashed",
        "signature_algorithm",
        "marshaling_algorithm",
        "salt_length",
        "batch_input",
    }
)
_PARAMETERS: dict[str, frozenset[str]] = {
    "encrypt": _BATCH
    | {
        "plaintext",
        "context",
        "associated_data",
        "key_version",
        "nonce",
        "type",
        "convergent_encryption",
    },
    "decrypt": _BATCH | {"ciphertext", "context", "associated_data", "key_version", "nonce"},
    "rewrap": _BATCH | {"ciphertext", "context", "key_version", "nonce"},
    "datakey": frozenset({"context", "nonce", "bits", "key_version", "associated_data"}),
    "random": RANDOM_PARAMETERS,
    "hash": HASH_PARAMETERS,
    "hmac": frozenset({"input", "algorithm", "key_version", "batch_input"}),
    "sign": _SIGNING,
    "verify": _SIGNING | {"signature", "hmac"},
}
_KEY_PARAMETERS: dict[str, frozenset[str]] = {
    "read": frozenset({"context"}),
    "delete": frozenset(),
    "create": frozenset(
        {
            "type",
            "derived",
            "convergent_encryption",
            "exportable",
            "allow_plaintext_backup",
            "auto_rotate_period",
            "key_size",
        }
    ),
    "config": frozenset(
        {
            "min_decryption_version",
            "min_encryption_version",
            "deletion_allowed",
            "exportable",
            "allow_plaintext_backup",
            "auto_rotate_period",
        }
    ),
    "rotate": frozenset(),
    "trim": frozenset({"min_available_version"}),
}
_RESTORE: Final = frozenset({"backup", "force", "name"})


class TransitEngine:
    """The transit engine type: serves every transit mount of every tenant."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        # The keys of every mount, with their parsed-keyring cache, and the scheduler that
        # rotates them: the engine's two other jobs, each in its own module.
        self.keys = KeyStore()
        # Reusable routes by (mount identity, operation, path), with the mount they are for.
        self._routes: dict[tuple[tuple[str, str], Operation, str], tuple[Mount, Route]] = {}
        self.rotation = RotationScheduler(self.keys, clock=clock)
        # Keys leaving and re-entering a mount: export, backup, restore, trim.
        self.portability = Portability(self.keys, describe=self._describe)
        # Shorthands (operator tooling and tests reach the key store through them).
        self.load = self.keys.load
        self.store_new = self.keys.store_new
        self.rotate_due_keys = self.rotation.rotate_due_keys

    # -- routing ---------------------------------------------------------------------------

    type: Final = "transit"

    def attach(self, backend: Backend, mounts: MountSource) -> None:
        """Where the rotation scheduler finds a tenant's transit mounts (`Router.mounts_in`)
        and keeps the set of tenants it visits, which the key store joins them to."""
        self.rotation.attach(backend, mounts)
        self.keys.join = self.rotation.join

    def check_options(self, options: Mapping[str, str]) -> dict[str, str]:
        if "version" in options:
            raise InvalidRequestError('secrets engine "transit" does not allow setting a version')
        return {k: v for k, v in options.items() if v != ""}

    async def destroy(self, mount: Mount) -> None:
        self.keys.forget_mount(mount.storage)
        identity = mount.storage.identity
        for slot in [slot for slot in self._routes if slot[0] == identity]:
            del self._routes[slot]

    def route(self, operation: Operation, rest: str, mount: Mount) -> Route:
        """Resolve `rest` (the path after the mount) for `operation`, validating it once.

        A route is a pure function of the mount, the operation and the path, so the routes
        of unchanged mounts are reused: building one (closures and an 18-field frozen
        `Route`) costs about as much as a decrypt's own work. A mount object stands
        for one version of its mount table (`Router.table`), so a hit needs that very
        object: any change to the table rebuilds the routes of its mounts.
        """
        slot = (mount.storage.identity, operation, rest)
        known = self._routes.get(slot)
        if known is not None and known[0] is mount:
            return known[1]
        route = self._resolve(operation, rest, mount)
        if len(self._routes) >= _ROUTES:
            self._routes.clear()
        self._routes[slot] = (mount, route)
        return route

    def _resolve(self, operation: Operation, rest: str, mount: Mount) -> Route:
        op = operation
        store = mount.storage
        base = mount.path
        path = _parse(rest, op is Operation.LIST)
        section, *args = path.segments
        write = op in (Operation.UPDATE, Operation.CREATE)
        acl = f"{base}{path.key}"

        def bound(acl: str, capability: str, handler: Handler) -> Route:
            # Every route bound here computes an answer from a stored key (or none: random,
            # hash) and stores nothing: its audit entries go in one group commit.
            return Route(
                acl,
                capability,
                handler,
                mount=mount.name,
                parameters=_PARAMETERS[section],
                pure=True,
            )

        if section == "keys" and op is Operation.LIST and not args:
            return Route(
                f"{base}keys/",
                "list",
                lambda call: self._list_keys(call, store),
                mount=mount.name,
                parameters=frozenset(),
            )
        if section in ("random", "hash") and len(args) <= 2:
            if not write:
                raise UnsupportedOperationError()
            sub = "/".join(args)
            if section == "random":
                return bound(acl, "update", lambda call: self._random(call, sub))
            return bound(acl, "update", lambda call: self._hash(call, sub))
        if section in ("export", "backup", "restore"):
            return self._route_portability(op, acl, section, args, mount)
        if section == "datakey" and len(args) == 2:
            kind, name = args[0], self._name(args[1])
            if not write:
                raise UnsupportedOperationError()
            return bound(acl, "update", lambda call: self._datakey(call, store, kind, name))
        if not args:
            raise NotFoundError("unsupported path")
        name, tail = self._name(args[0]), args[1:]
        if section == "keys" and len(tail) <= 1:
            return self._route_keys(op, acl, name, tail[0] if tail else "", mount)
        # hmac/, sign/ and verify/ take an optional algorithm after the key name.
        most = _TRAILING_SEGMENTS.get(section)
        if most is None or len(tail) > most:
            raise NotFoundError("unsupported path")
        if not write:
            raise UnsupportedOperationError()
        if section == "encrypt":
            # The existence check (create or update?) already loads the key, and the Core
            # hands what it found to the handler (`Call.existing`): the handler reuses it
            # instead of reading the store a second time, and the route itself holds no
            # request's state, so it is reused like every other.
            create_need = (f"{base}encrypt/{name}", "create")

            async def exists(_tenant: str) -> Keyring | None:
                return await self.load(store, name)

            def encrypt(call: Call) -> Awaitable[Response]:
                found = call.existing if isinstance(call.existing, Keyring) else None
                return self._encrypt(call, store, name, found, create_need)

            return Route(
                acl,
                "create" if op is Operation.CREATE else None,
                encrypt,
                exists=exists if op is Operation.UPDATE else None,
                mount=mount.name,
                # Create-on-encrypt: the handler makes a missing key only if this holds.
                optional=(create_need,),
                parameters=_PARAMETERS["encrypt"],
                # With the key found by the existence check nothing is created: the encrypt
                # changes nothing, and its audit entries go in one group commit.
                pure="if-exists",
            )
        algorithm = tail[0] if tail else ""
        handlers: dict[str, Handler] = {
            "decrypt": lambda call: self._decrypt(call, store, name),
            "rewrap": lambda call: self._rewrap(call, store, name),
            "hmac": lambda call: self._hmac(call, store, name, algorithm),
            "sign": lambda call: self._sign(call, store, name, algorithm),
            "verify": lambda call: self._verify(call, store, name, algorithm),
        }
        return bound(acl, "update", handlers[section])

    def _route_keys(self, op: Operation, acl: str, name: str, tail: str, mount: Mount) -> Route:
        write = op in (Operation.UPDATE, Operation.CREATE)
        store = mount.storage

        def bound(acl: str, capability: str, handler: Handler, parameters: str) -> Route:
            return Route(
                acl, capability, handler, mount=mount.name, parameters=_KEY_PARAMETERS[parameters]
            )

        if not tail:
            if op is Operation.READ:
                return bound(acl, "read", lambda call: self._read_key(call, store, name), "read")
            if write:
                # Like Vault: no existence check on this path, so creating needs `update`.
                return bound(
                    acl, "update", lambda call: self._create_key(call, store, name), "create"
                )
            if op is Operation.DELETE:
                return bound(
                    acl, "delete", lambda call: self._delete_key(call, store, name), "delete"
                )
            raise UnsupportedOperationError()
        if tail == "config":
            if write:
                return bound(
                    acl, "update", lambda call: self._configure_key(call, store, name), "config"
                )
            raise UnsupportedOperationError()
        if tail == "rotate":
            if write:
                return bound(
                    acl, "update", lambda call: self._rotate_key(call, store, name), "rotate"
                )
            raise UnsupportedOperationError()
        if tail == "trim":
            if write:
                return bound(
                    acl,
                    "update",
                    lambda call: self.portability.trim(store, name, call.data),
                    "trim",
                )
            raise UnsupportedOperationError()
        raise NotFoundError("unsupported path")

    def _route_portability(
        self, op: Operation, acl: str, section: str, args: list[str], mount: Mount
    ) -> Route:
        """`export/:type/:name(/:version)` and `backup/:name` (read), `restore(/:name)`."""
        store = mount.storage
        portability = self.portability
        if section == "restore":
            if len(args) > 1:
                # OpenBao's words (its 500): a key name is one segment.
                raise InvalidRequestError("key names cannot be paths")
            name = self._name(args[0]) if args else ""
            if op not in (Operation.UPDATE, Operation.CREATE):
                raise UnsupportedOperationError()
            return Route(
                acl,
                "update",
                lambda call: portability.restore(store, name, call.data),
                mount=mount.name,
                parameters=_RESTORE,
            )
        shape = (2, 3) if section == "export" else (1,)
        if len(args) not in shape:
            raise NotFoundError("unsupported path")
        if op is not Operation.READ:
            raise UnsupportedOperationError()
        name = self._name(args[0] if section == "backup" else args[1])
        kind, version = (args[0], "".join(args[2:])) if section == "export" else ("", "")

        async def handler(call: Call) -> Response:
            if section == "backup":
                return await portability.backup(store, name)
            return await portability.export(store, kind, name, version)

        return Route(acl, "read", handler, mount=mount.name, parameters=frozenset())

    @staticmethod
    def _name(name: str) -> str:
        return validate_name(name, kind="key name")

    # -- keys ------------------------------------------------------------------------------

    @staticmethod
    def _describe(keyring: Keyring, context: bytes = b"") -> dict[str, Any]:
        """The key as `GET transit/keys/:name` shows it (never any key material)."""
        key_type = keyring.key_type
        data: dict[str, Any] = {
            "allow_plaintext_backup": keyring.allow_plaintext_backup,
            "auto_rotate_period": keyring.auto_rotate_seconds,
            "deletion_allowed": keyring.deletion_allowed,
            "derived": keyring.derived,
            "exportable": keyring.exportable,
            # No import or soft-delete endpoints exist here, so these never change.
            "imported_key": False,
            "latest_version": keyring.latest_version,
            "min_available_version": keyring.min_available_version,
            "min_decryption_version": keyring.min_decryption_version,
            "min_encryption_version": keyring.min_encryption_version,
            "name": keyring.name,
            "soft_deleted": False,
            "supports_decryption": key_type.is_aead,
            "supports_derivation": key_type.supports_derivation,
            "supports_encryption": key_type.is_aead,
            "supports_signing": key_type.supports_signing,
            "type": str(key_type),
        }
        if keyring.key_size:
            data["key_size"] = keyring.key_size
        if keyring.derived:
            data["kdf"] = "hkdf_sha256"
            data["convergent_encryption"] = keyring.convergent
            if keyring.convergent:
                # OpenBao's marker for "every version uses the current scheme (3)".
                data["convergent_encryption_version"] = -1
        if key_type.is_aead:
            data["keys"] = {
                str(number): version.created_ns // _NS
                for number, version in keyring.live_versions()
            }
        elif key_type is KeyType.ED25519:
            data["keys"] = {
                str(number): {
                    "certificate_chain": "",
                    "creation_time": _go_time(version.created_ns),
                    "name": "ed25519",
                    "public_key": (
                        _b64.encode(keyring.public_key(number, context))
                        if context or not keyring.derived
                        else ""
                    ),
                }
                for number, version in keyring.live_versions()
            }
        return data

    async def _list_keys(self, call: Call, store: MountStorage) -> Response:
        names = await store.list(KEY_PREFIX)
        if not names:
            raise NotFoundError()
        return Response(data={"keys": names})

    async def _read_key(self, call: Call, store: MountStorage, name: str) -> Response:
        keyring = await self.load(store, name)
        if keyring is None:
            raise NotFoundError()
        context = b""
        raw = _one(call.data, "context")
        if raw:
            try:
                context = go_b64decode(raw)
            except GoBase64Error:
                raise InvalidRequestError("failed to base64-decode context") from None
        return Response(data=self._describe(keyring, context))

    async def _create_key(self, call: Call, store: MountStorage, name: str) -> Response:
        data = call.data
        derived = bool(get_bool(data, "derived", default=False))
        convergent = bool(get_bool(data, "convergent_encryption", default=False))
        auto_rotate = parse_duration(
            data.get("auto_rotate_period") or 0, field="auto_rotate_period"
        )
        if auto_rotate and auto_rotate < _MIN_AUTO_ROTATE_SECONDS:
            raise InvalidRequestError("auto rotate period must be 0 to disable or at least an hour")
        if convergent and not derived:
            raise InvalidRequestError("convergent encryption requires derivation to be enabled")
        key_type = _key_type(_one(data, "type") or str(KeyType.AES256_GCM96))
        key_size = get_int(data, "key_size", default=0, minimum=-(2**53)) or 0
        if key_size:
            if key_type is not KeyType.HMAC:
                raise InvalidRequestError(f"key_size is not valid for algorithm {key_type}")
            if not HMAC_MIN_KEY_SIZE <= key_size <= HMAC_MAX_KEY_SIZE:
                raise InvalidRequestError(f"invalid key_size {key_size}")
        existing = await self.load(store, name)
        if existing is None:
            keyring = Keyring.generate(
                name,
                key_type,
                now_ns=self._clock(),
                derived=derived,
                convergent=convergent,
                exportable=bool(get_bool(data, "exportable", default=False)),
                allow_plaintext_backup=bool(
                    get_bool(data, "allow_plaintext_backup", default=False)
                ),
                auto_rotate_seconds=auto_rotate,
                key_size=key_size,
            )
            existing, _ = await self.store_new(store, keyring)
        # Like OpenBao 2.x: an existing key is returned as it is, without a warning.
        return Response(data=self._describe(existing))

    async def _delete_key(self, call: Call, store: MountStorage, name: str) -> Response:
        key = KEY_PREFIX + name

        async def attempt() -> Response:
            record = await store.read(key)
            if record is None:
                raise InvalidRequestError(
                    f"error deleting policy {name}: could not delete key; not found"
                )
            if not Keyring.from_record(decode_record(record.value)).deletion_allowed:
                raise InvalidRequestError(
                    f"error deleting policy {name}: deletion is not allowed for this key"
                )
            await store.delete(key, expected_revision=record.revision)
            self.keys.forget(store, name)
            return Response.no_content()

        return await retry_on_conflict(attempt, what="this key", attempts=WRITE_ATTEMPTS)

    async def _configure_key(self, call: Call, store: MountStorage, name: str) -> Response:
        data = call.data
        min_decryption = get_int(data, "min_decryption_version", minimum=-(2**53))
        min_encryption = get_int(data, "min_encryption_version", minimum=-(2**53))
        deletion_allowed = get_bool(data, "deletion_allowed")
        exportable = get_bool(data, "exportable")
        plaintext_backup = get_bool(data, "allow_plaintext_backup")
        auto_rotate: int | None = None
        if data.get("auto_rotate_period") is not None:
            auto_rotate = parse_duration(data["auto_rotate_period"], field="auto_rotate_period")
        warnings: list[str] = []

        def change(keyring: Keyring) -> None:
            warnings.clear()
            if min_decryption is not None:
                wanted = min_decryption
                if wanted == 0:
                    wanted = 1
                    warnings.append(
                        "since Vault 0.3 (prior to the OpenBao fork), transit key numbering "
                        "starts at 1; forcing minimum to 1"
                    )
                keyring.min_decryption_version = _min_version(
                    "decryption", wanted, keyring.min_decryption_version, keyring.latest_version
                )
                if wanted < keyring.min_available_version:
                    # Those versions were trimmed: deleted, nothing can bring them back.
                    raise InvalidRequestError(
                        "min decryption version should not be less then min available version"
                    )
            if min_encryption is not None:
                keyring.min_encryption_version = _min_version(
                    "encryption",
                    min_encryption,
                    keyring.min_encryption_version,
                    keyring.latest_version,
                )
            if (
                keyring.min_encryption_version > 0
                and keyring.min_encryption_version < keyring.min_decryption_version
            ):
                raise InvalidRequestError(
                    "cannot set min encryption/decryption values; min encryption version of "
                    f"{keyring.min_encryption_version} must be greater than or equal to min "
                    f"decryption version of {keyring.min_decryption_version}"
                )
            if deletion_allowed is not None:
                keyring.deletion_allowed = deletion_allowed
            # These two can be switched on, never off again (as in Vault).
            keyring.exportable = keyring.exportable or bool(exportable)
            keyring.allow_plaintext_backup = keyring.allow_plaintext_backup or bool(
                plaintext_backup
            )
            if auto_rotate is not None:
                if auto_rotate and auto_rotate < _MIN_AUTO_ROTATE_SECONDS:
                    raise InvalidRequestError(
                        "auto rotate period must be 0 to disable or at least an hour"
                    )
                keyring.auto_rotate_seconds = auto_rotate

        keyring, _ = await self.keys.change(
            store, name, change, missing=f"no existing key named {name} could be found"
        )
        return Response(data=self._describe(keyring), warnings=warnings or None)

    async def _rotate_key(self, call: Call, store: MountStorage, name: str) -> Response:
        now = self._clock()
        keyring, _ = await self.keys.change(
            store, name, lambda k: k.rotate(now_ns=now), missing="key not found"
        )
        return Response(data=self._describe(keyring))

    # -- encrypt, decrypt, rewrap ----------------------------------------------------------

    async def _encrypt(
        self,
        call: Call,
        store: MountStorage,
        name: str,
        loaded: Keyring | None,
        create_need: tuple[str, str],
    ) -> Response:
        data = call.data
        _refuse_nonce(data)
        items, is_batch, context_set = _crypt_items(
            data, "plaintext", missing="missing plaintext to encrypt", empty_ok=True
        )
        for item in items:
            try:
                item.fields["_plaintext"] = _decode(item.text("plaintext"))
                if context_set:
                    item.fields["_context"] = _decode(item.text("context"))
            except InvalidRequestError as error:
                item.failure = error
        keyring = loaded or await self.load(store, name)
        if keyring is None:
            keyring = await self._upsert(call, store, name, create_need, derived=context_set)

        def encrypt(index: int, item: _Item) -> dict[str, Any]:
            version = item.fields.get("key_version", 0)
            ciphertext = keyring.encrypt(
                item.fields["_plaintext"],
                version=version,
                context=item.fields.get("_context", b""),
                associated_data=self._associated_data(keyring, item, index),
            )
            return {"ciphertext": ciphertext, "key_version": keyring.encryption_version(version)}

        results = _each(items, encrypt, failed={})
        return self._respond(call.data, is_batch, items, results, ("ciphertext", "key_version"))

    async def _upsert(
        self,
        call: Call,
        store: MountStorage,
        name: str,
        create_need: tuple[str, str],
        *,
        derived: bool,
    ) -> Keyring:
        """Create the key on first encrypt — only for callers the ACL grants `create`."""
        # The encrypt route declares (<mount>/encrypt/<name>, create) as optional: the Core
        # evaluated it against the caller's policies and says here whether it holds.
        if create_need not in call.granted:
            raise InvalidRequestError("encryption key not found")
        convergent = bool(get_bool(call.data, "convergent_encryption", default=False))
        if convergent and not derived:
            raise InvalidRequestError(
                "convergent encryption requires derivation to be enabled, so context is required"
            )
        type_name = _one(call.data, "type") or str(KeyType.AES256_GCM96)
        if type_name in ("ecdsa-p256", "ecdsa-p384", "ecdsa-p521"):
            raise InvalidRequestError(f"key type {type_name} not supported for this operation")
        key_type = _key_type(type_name)
        if key_type not in _ENCRYPT_TYPES:
            # A type we know (validated above), so naming it echoes nothing unexpected.
            raise InvalidRequestError(f"unknown key type {key_type}")
        keyring = Keyring.generate(
            name, key_type, now_ns=self._clock(), derived=derived, convergent=convergent
        )
        stored, _ = await self.store_new(store, keyring)
        return stored

    @staticmethod
    def _associated_data(keyring: Keyring, item: _Item, index: int) -> bytes | None:
        raw = item.text("associated_data")
        if not raw:
            return None
        if not keyring.key_type.is_aead:
            raise InvalidRequestError(
                f"'[{index}].associated_data' provided for non-AEAD cipher suite {keyring.key_type}"
            )
        try:
            return go_b64decode(raw)
        except GoBase64Error as error:
            raise InvalidRequestError(
                f"unable to get associated_data/additional_data from factory[0]: {error}"
            ) from None

    @staticmethod
    def _respond(
        data: Mapping[str, Any],
        is_batch: bool,
        items: Sequence[_Item],
        results: list[dict[str, Any]],
        single: Sequence[str],
        *,
        batch_status: bool = True,
    ) -> Response:
        if not is_batch:
            if items[0].failure is not None:
                raise items[0].failure
            return Response(data={name: results[0][name] for name in single})
        failed = any(item.error for item in items)
        succeeded = any(not item.error for item in items)
        for item, result in zip(items, results, strict=True):
            result["reference"] = item.reference
        warnings: list[str] = []
        status = (
            _batch_status(data, failed=failed, succeeded=succeeded, warnings=warnings)
            if batch_status
            else 200
        )
        return Response(data={"batch_results": results}, warnings=warnings or None, status=status)

    def _decrypt_items(self, data: Mapping[str, Any], *, rewrap: bool) -> tuple[list[_Item], bool]:
        items, is_batch, _ = _crypt_items(
            data, "ciphertext", missing="missing ciphertext to decrypt", rewrap=rewrap
        )
        for item in items:
            if not item.text("ciphertext"):
                item.failure = InvalidRequestError("missing ciphertext to decrypt")
            elif item.text("context"):
                try:
                    item.fields["_context"] = _decode(item.text("context"))
                except InvalidRequestError as error:
                    item.failure = error
        return items, is_batch

    async def _decrypt(self, call: Call, store: MountStorage, name: str) -> Response:
        items, is_batch = self._decrypt_items(call.data, rewrap=False)
        keyring = await self.keys.require(store, name, "encryption key not found")

        def decrypt(index: int, item: _Item) -> dict[str, Any]:
            plaintext = keyring.decrypt(
                item.text("ciphertext"),
                context=item.fields.get("_context", b""),
                associated_data=self._associated_data(keyring, item, index),
            )
            return {"plaintext": _b64.encode(plaintext)}

        results = _each(items, decrypt, failed={"plaintext": ""})
        return self._respond(call.data, is_batch, items, results, ("plaintext",))

    async def _rewrap(self, call: Call, store: MountStorage, name: str) -> Response:
        items, is_batch = self._decrypt_items(call.data, rewrap=True)
        keyring = await self.keys.require(store, name, "encryption key not found")

        def rewrap(index: int, item: _Item) -> dict[str, Any]:
            context = item.fields.get("_context", b"")
            version = item.fields.get("key_version", 0)
            plaintext = keyring.decrypt(item.text("ciphertext"), context=context)
            ciphertext = keyring.encrypt(plaintext, version=version, context=context)
            return {"ciphertext": ciphertext, "key_version": keyring.encryption_version(version)}

        results = _each(items, rewrap, failed={})
        # OpenBao answers a rewrap batch with 200 even when items failed; so do we.
        return self._respond(
            call.data, is_batch, items, results, ("ciphertext", "key_version"), batch_status=False
        )

    # -- data keys, random bytes, hashes ---------------------------------------------------

    async def _datakey(self, call: Call, store: MountStorage, kind: str, name: str) -> Response:
        data = call.data
        if kind not in ("plaintext", "wrapped"):
            raise InvalidRequestError("Invalid path, must be 'plaintext' or 'wrapped'")
        _refuse_nonce(data)
        context = b""
        raw_context = _one(data, "context")
        if raw_context:
            try:
                context = go_b64decode(raw_context)
            except GoBase64Error:
                raise InvalidRequestError("failed to base64-decode context") from None
        version = _version_arg(data)
        keyring = await self.keys.require(store, name, "encryption key not found")
        size = _DATAKEY_BITS.get(get_int(data, "bits", default=256, minimum=-(2**53)) or 0)
        if size is None:
            raise InvalidRequestError("invalid bit length")
        item = _Item({"associated_data": _one(data, "associated_data")})
        associated = self._associated_data(keyring, item, 0)
        new_key = random_bytes(size)
        ciphertext = keyring.encrypt(
            new_key, version=version, context=context, associated_data=associated
        )
        result: dict[str, Any] = {
            "ciphertext": ciphertext,
            "key_version": keyring.encryption_version(version),
        }
        if kind == "plaintext":
            result["plaintext"] = _b64.encode(new_key)
        return Response(data=result)

    async def _random(self, call: Call, sub: str) -> Response:
        return random_answer(call.data, sub)

    async def _hash(self, call: Call, url_algorithm: str) -> Response:
        return hash_answer(call.data, url_algorithm, input_required=True)

    # -- HMAC, sign, verify ----------------------------------------------------------------

    @staticmethod
    def _string_batch(data: Mapping[str, Any]) -> list[_Item] | None:
        """Batches of hmac/sign/verify: maps of strings (OpenBao decodes them so)."""
        return _batch(data, strings=("input", "hmac", "signature", "context"))

    async def _hmac(
        self, call: Call, store: MountStorage, name: str, url_algorithm: str
    ) -> Response:
        data = call.data
        algorithm = url_algorithm or _one(data, "algorithm") or "sha2-256"
        version = _version_arg(data)
        keyring = await self.keys.require(store, name, "encryption key not found")
        if version == 0:
            version = keyring.latest_version
        elif (
            version != keyring.latest_version
            and keyring.min_encryption_version > 0
            and version < keyring.min_encryption_version
        ):
            raise InvalidRequestError(
                "cannot generate HMAC: version is too old (disallowed by policy)"
            )
        keyring.hmac_key(version)  # refuses a version that does not exist, in Vault's words
        if algorithm == "none":
            raise InvalidRequestError("algorithm cannot be none")
        if algorithm not in HMAC_ALGORITHMS:
            raise InvalidRequestError(_BAD_ALGORITHM)
        batch = self._string_batch(data)
        if batch is None:
            if data.get("input") is None:
                raise InvalidRequestError("missing input for HMAC")
            items = [_Item({"input": _one(data, "input")})]
        else:
            items = batch
        results: list[dict[str, Any]] = []
        for item in items:
            if "input" not in item.fields:
                item.failure = InvalidRequestError("missing input for HMAC")
            else:
                try:
                    message = go_b64decode(item.text("input"))
                except GoBase64Error as error:
                    item.failure = InvalidRequestError(f"unable to decode input as base64: {error}")
                else:
                    results.append(
                        {"hmac": keyring.hmac(message, algorithm=algorithm, version=version)}
                    )
                    continue
            results.append({"error": item.error})
        return self._respond(data, batch is not None, items, results, ("hmac",), batch_status=False)

    async def _sign(
        self, call: Call, store: MountStorage, name: str, url_algorithm: str
    ) -> Response:
        data = call.data
        version = _version_arg(data)
        jws = self._check_signing_options(data, url_algorithm)
        keyring = await self.keys.require(store, name, "signing key not found")
        if not keyring.key_type.supports_signing:
            raise InvalidRequestError(f"key type {keyring.key_type} does not support signing")
        batch = self._string_batch(data)
        items = batch or [_Item({"input": _one(data, "input"), "context": _one(data, "context")})]
        results: list[dict[str, Any]] = []
        for item in items:
            result: dict[str, Any]
            try:
                message = self._input(item)
                context = self._context(item)
                signature, used, public = keyring.sign(
                    message, version=version, context=context, jws=jws
                )
            except InvalidRequestError as error:
                item.failure = error
                result = {"key_version": 0, "error": item.error}
            else:
                result = {"signature": signature, "key_version": used}
                if public is not None:
                    result["publickey" if batch is not None else "public_key"] = _b64.encode(public)
            results.append(result)
        if batch is None:
            if items[0].failure is not None:
                raise items[0].failure
            return Response(data=results[0])
        return self._respond(data, True, items, results, (), batch_status=False)

    @staticmethod
    def _check_signing_options(data: Mapping[str, Any], url_algorithm: str) -> bool:
        """Validate the hash and marshaling names as Vault does; True for JWS marshaling.

        Ed25519 signs the message itself, so the hash algorithm is checked but not used.
        """
        algorithm = (
            url_algorithm or _one(data, "hash_algorithm") or _one(data, "algorithm") or "sha2-256"
        )
        if algorithm != "none" and algorithm not in HMAC_ALGORITHMS:
            raise InvalidRequestError(f'invalid hash algorithm "{algorithm}"')
        marshaling = _one(data, "marshaling_algorithm") or "asn1"
        if marshaling not in ("asn1", "jws"):
            raise InvalidRequestError(f'invalid marshaling type "{marshaling}"')
        if algorithm == "none" and (
            not get_bool(data, "prehashed", default=False)
            or _one(data, "signature_algorithm") != "pkcs1v15"
        ):
            raise InvalidRequestError(
                "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"
            )
        return marshaling == "jws"

    @staticmethod
    def _input(item: _Item) -> bytes:
        if "input" not in item.fields:
            raise InvalidRequestError("missing input")
        try:
            return go_b64decode(item.text("input"))
        except GoBase64Error as error:
            raise InvalidRequestError(f"unable to decode input as base64: {error}") from None

    @staticmethod
    def _context(item: _Item) -> bytes:
        raw = item.text("context")
        if not raw:
            return b""
        try:
            return go_b64decode(raw)
        except GoBase64Error:
            raise InvalidRequestError("failed to base64-decode context") from None

    async def _verify(
        self, call: Call, store: MountStorage, name: str, url_algorithm: str
    ) -> Response:
        data = call.data
        batch = self._string_batch(data)
        if batch is None:
            single = _Item({"input": _one(data, "input"), "context": _one(data, "context")})
            for field in ("signature", "hmac"):
                if data.get(field) is not None:
                    single.fields[field] = _one(data, field)
            items = [single]
        else:
            items = batch
        has_signature = any("signature" in item.fields for item in items)
        has_hmac = any("hmac" in item.fields and "signature" not in item.fields for item in items)
        incomplete = any("signature" not in i.fields and "hmac" not in i.fields for i in items)
        if batch is None and not has_signature and not has_hmac:
            raise InvalidRequestError("neither a 'signature' nor an 'hmac' were given to verify")
        if has_signature and has_hmac:
            raise InvalidRequestError(
                "elements of batch_input must all provide 'signature' or all provide 'hmac'"
            )
        if incomplete and has_signature:
            raise InvalidRequestError("some elements of batch_input are missing 'signature'")
        if incomplete and has_hmac:
            raise InvalidRequestError("some elements of batch_input are missing 'hmac'")
        if incomplete:
            raise InvalidRequestError("no batch_input elements have 'signature' or 'hmac'")
        if has_hmac:
            return await self._verify_hmac(
                call, store, name, url_algorithm, items, batch is not None
            )
        jws = self._check_signing_options(data, url_algorithm)
        keyring = await self.keys.require(store, name, "signature verification key not found")
        if not keyring.key_type.supports_signing:
            raise InvalidRequestError(f"key type {keyring.key_type} does not support verification")
        results: list[dict[str, Any]] = []
        for item in items:
            try:
                valid = keyring.verify_signature(
                    self._input(item), item.text("signature"), context=self._context(item), jws=jws
                )
            except (InvalidRequestError, DecryptionError) as error:
                item.failure = error
                results.append({"valid": False, "error": item.error})
            else:
                results.append({"valid": valid})
        return self._respond(
            data, batch is not None, items, results, ("valid",), batch_status=False
        )

    async def _verify_hmac(
        self,
        call: Call,
        store: MountStorage,
        name: str,
        url_algorithm: str,
        items: list[_Item],
        is_batch: bool,
    ) -> Response:
        data = call.data
        algorithm = (
            url_algorithm or _one(data, "hash_algorithm") or _one(data, "algorithm") or "sha2-256"
        )
        keyring = await self.keys.require(store, name, "encryption key not found")
        if algorithm not in HMAC_ALGORITHMS:
            raise InvalidRequestError(f'invalid hash algorithm "{algorithm}"')
        results: list[dict[str, Any]] = []
        for item in items:
            try:
                valid = keyring.verify_hmac(
                    self._input(item), item.text("hmac"), algorithm=algorithm
                )
            except InvalidRequestError as error:
                item.failure = error
                results.append({"error": item.error})
            else:
                # OpenBao leaves `valid` out of a batch item when it is false (omitempty).
                results.append({"valid": valid} if valid or not is_batch else {})
        return self._respond(data, is_batch, items, results, ("valid",), batch_status=False)
