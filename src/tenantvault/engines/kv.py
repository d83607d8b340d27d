"""The KV v2 secrets engine: versions, check-and-set, soft delete, destroy and metadata.

Storage layout inside a kv v2 mount (records of its `MountStorage`):

- `config`                      mount settings (max_versions, cas_required, delete_version_after)
- `meta/<path>`                 the key's metadata: versions map, current/oldest version, settings
- `data/<path>|<version>|<ref>` one version's data; `ref` is random per write attempt

A write stores the version data first and then moves the metadata record forward with a
revision check; only the metadata makes a version visible. On a backend that writes several
keys all or none (the embedded store) both go in one transaction, one group commit rather
than two in a row; with per-key atomicity only, one after the other, so a crash or a lost
race between the two leaves an unreferenced data record (garbage), never a visible
half-write. A version number is never reused for different data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from tenantvault._cas import retry_on_conflict
from tenantvault._clock import Clock, format_time
from tenantvault._durations import format_duration, parse_duration
from tenantvault._exceptions import (
    CheckAndSetError,
    ConflictError,
    InvalidPathError,
    InvalidRequestError,
    NotFoundError,
    UnsupportedOperationError,
)
from tenantvault._fields import get_bool, get_int, get_mapping, get_versions
from tenantvault._go_text import go_quote, multierror
from tenantvault._paths import SecretPath, parse_path
from tenantvault._public_random import public_random
from tenantvault._records import decode_record, encode_record
from tenantvault._request import Operation, Response
from tenantvault.backends._protocol import Record
from tenantvault.engines._protocol import Mount, MountStorage
from tenantvault.engines._route import Call, Route
from tenantvault.engines._write_hints import MetaHints

__all__ = ["DEFAULT_MAX_VERSIONS", "KVEngine"]

DEFAULT_MAX_VERSIONS = 10
CUSTOM_METADATA_MAX_KEYS = 64
CUSTOM_METADATA_MAX_KEY_LENGTH = 128
CUSTOM_METADATA_MAX_VALUE_LENGTH = 512
# A lost race on the metadata record is retried this many times before giving up with 503;
# each retry re-reads, so a CAS request re-checks its `cas` against the new state.
_WRITE_ATTEMPTS = 256

Meta = dict[str, Any]


def _data_from(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `data` object of a write or patch; 400 if it is missing or not an object."""
    body = get_mapping(data, "data")
    if body is None:
        raise InvalidRequestError("no data provided")
    return body


def _settings_from(data: Mapping[str, Any]) -> dict[str, Any]:
    """The version settings `data` gives (mount config and key metadata take the same ones).

    Only the fields present, so that a write changes what it names and nothing else.
    """
    settings: dict[str, Any] = {}
    max_versions = get_int(data, "max_versions")
    if max_versions is not None:
        settings["max_versions"] = max_versions
    for flag in ("cas_required", "metadata_cas_required"):
        value = get_bool(data, flag)
        if value is not None:
            settings[flag] = value
    if data.get("delete_version_after") is not None:
        settings["delete_version_after"] = parse_duration(
            data["delete_version_after"], field="delete_version_after"
        )
    return settings


def _meta_write(path: SecretPath, meta: Meta) -> tuple[str, bytes, int]:
    """(key, value, expected revision) of storing `meta`: checked against the revision it
    was read at (0: new), so a concurrent write of the same secret conflicts."""
    revision = int(meta.pop("_revision", 0))
    return f"meta/{path.key}", encode_record(meta), revision


def _data_key(path: str, version: int, ref: str) -> str:
    # '|' can never appear in a validated path, so this key is unambiguous.
    return f"data/{path}|{version}|{ref}"


def _version_view(meta: Meta, version: int) -> dict[str, Any]:
    entry = meta["versions"][str(version)]
    return {
        "created_time": format_time(entry["created"]),
        "custom_metadata": meta.get("custom_metadata"),
        "deletion_time": format_time(entry["deleted"]),
        "destroyed": entry["destroyed"],
        "version": version,
    }


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 merge patch: objects merge recursively, null removes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = _merge_patch(result.get(name), value)
    return result


def _subkeys(value: Any, depth: int, level: int = 1) -> Any:
    if not isinstance(value, Mapping) or (depth and level > depth):
        return None
    return {name: _subkeys(child, depth, level + 1) for name, child in value.items()}


def _check_custom_metadata(value: Any) -> dict[str, str]:
    """OpenBao's `validateCustomMetadata`: every problem found, in its words, as one
    multierror (lengths in UTF-8 bytes, as Go counts them). Keys are named, values never."""
    if not isinstance(value, Mapping):
        raise InvalidRequestError("custom_metadata must be an object of strings")
    if not all(isinstance(item, str) for item in value.values()):
        # OpenBao would turn numbers into text; a secret's metadata gets no guessing here.
        raise InvalidRequestError("custom_metadata values must be strings")
    problems: list[str] = []
    prefix = "custom_metadata validation failed"
    if len(value) > CUSTOM_METADATA_MAX_KEYS:
        problems.append(
            f"{prefix}: payload must contain at most {CUSTOM_METADATA_MAX_KEYS} keys, "
            f"provided {len(value)}"
        )
    for name, item in value.items():
        key_length, value_length = len(name.encode()), len(item.encode())
        if not 0 < key_length <= CUSTOM_METADATA_MAX_KEY_LENGTH:
            problems.append(
                f"{prefix}: length of key {go_quote(name)} is {key_length} but must be "
                f"0 < len(key) <= {CUSTOM_METADATA_MAX_KEY_LENGTH}"
            )
        if not 0 < value_length <= CUSTOM_METADATA_MAX_VALUE_LENGTH:
            problems.append(
                f"{prefix}: length of value for key {go_quote(name)} is {value_length} but "
                f"must be 0 < len(value) <= {CUSTOM_METADATA_MAX_VALUE_LENGTH}"
            )
        if not name.isprintable():
            # OpenBao repeats the raw key in parentheses; the quoted form says it all.
            problems.append(f"{prefix}: key {go_quote(name)} contains unprintable characters")
        if not item.isprintable():
            problems.append(
                f"{prefix}: value for key {go_quote(name)} contains unprintable characters"
            )
    if problems:
        raise InvalidRequestError(multierror(problems))
    return dict(value)


def _invalid_path_warning(op: Operation) -> str:
    """OpenBao's 404 warning for a path outside KV v2's API, naming the CLI command to use."""
    command = {
        Operation.READ: "get",
        Operation.LIST: "list",
        Operation.DELETE: "delete",
        Operation.PATCH: "patch",
    }.get(op, "put")
    return (
        "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate "
        f"API endpoints to use. If using the OpenBao CLI, use 'bao kv {command}' for this "
        "operation."
    )


# The parameters of each KV v2 endpoint (`Route.parameters`), as OpenBao's kv plugin
# declares them; an undeclared key is ignored with Vault's warning.
_NONE: frozenset[str] = frozenset()
_VERSION = frozenset({"version"})
_VERSIONS = frozenset({"versions"})
# OpenBao accepts `version` on a write and ignores it (without a warning).
_WRITE = frozenset({"data", "options", "version"})
_SETTINGS = frozenset(
    {"max_versions", "cas_required", "metadata_cas_required", "delete_version_after"}
)
_METADATA = _SETTINGS | {"custom_metadata", "metadata_cas"}


# Handlers by (section, operation): (capability, method name, parameters). Built once, as
# `route` runs on every request (rebuilding a table of bound methods there was 8 % of a
# read); looked up by name so that the method itself is found on the instance.
_HANDLERS: Final[dict[tuple[str, Operation], tuple[str | None, str, frozenset[str]]]] = {
    ("data", Operation.READ): ("read", "_read", _VERSION),
    ("data", Operation.UPDATE): (None, "_write", _WRITE),
    ("data", Operation.CREATE): ("create", "_write", _WRITE),
    ("data", Operation.PATCH): ("patch", "_patch", _WRITE),
    ("data", Operation.DELETE): ("delete", "_delete_latest", _NONE),
    ("metadata", Operation.READ): ("read", "_read_metadata", _NONE),
    ("metadata", Operation.UPDATE): (None, "_write_metadata", _METADATA),
    ("metadata", Operation.CREATE): ("create", "_write_metadata", _METADATA),
    ("metadata", Operation.PATCH): ("patch", "_patch_metadata", _METADATA),
    ("metadata", Operation.DELETE): ("delete", "_delete_metadata", _NONE),
    ("delete", Operation.UPDATE): ("update", "_delete_versions", _VERSIONS),
    ("undelete", Operation.UPDATE): ("update", "_undelete", _VERSIONS),
    ("destroy", Operation.UPDATE): ("update", "_destroy", _VERSIONS),
    ("subkeys", Operation.READ): ("read", "_subkeys", _VERSION | {"depth"}),
}


class KVEngine:
    """KV v2 on any mount of type kv with `version` 2, on any Backend."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._hints = MetaHints()

    # -- routing ---------------------------------------------------------------------------

    def route(self, operation: Operation, rest: str, mount: Mount) -> Route:
        """Resolve `rest` (the path after the mount) for `operation`, validating it once."""
        section, _, sub = rest.partition("/")
        op = operation
        store = mount.storage
        base = mount.path

        def bound(
            acl: str, capability: str, handler: Any, parameters: frozenset[str] = _NONE
        ) -> Route:
            async def run(call: Call) -> Response:
                response: Response = await handler(call, store)
                return response

            pure = capability in ("read", "list")
            return Route(acl, capability, run, mount=mount.name, parameters=parameters, pure=pure)

        if section == "config" and not sub:
            if op is Operation.READ:
                return bound(f"{base}config", "read", self._read_config)
            if op is Operation.UPDATE:
                return bound(f"{base}config", "update", self._write_config, _SETTINGS)
            raise UnsupportedOperationError()
        if section == "metadata" and op is Operation.LIST:
            directory = parse_path(sub, allow_dir=True, allow_empty=True)
            acl = f"{base}metadata/{directory.key}/" if directory.key else f"{base}metadata/"
            return bound(acl, "list", lambda call, store: self._list(call, store, directory))
        if section not in ("data", "metadata", "delete", "undelete", "destroy", "subkeys"):
            raise NotFoundError(body={"data": None, "warnings": [_invalid_path_warning(op)]})
        if op in (Operation.UPDATE, Operation.CREATE) and (not sub or sub.endswith("/")):
            raise InvalidPathError("cannot write to a path ending in '/'")
        if not sub and op is Operation.READ:
            raise NotFoundError()
        path = parse_path(sub)
        acl = f"{base}{section}/{path.key}"
        try:
            capability, name, parameters = _HANDLERS[(section, op)]
        except KeyError:
            raise UnsupportedOperationError() from None
        handler: Callable[[Call, MountStorage, SecretPath], Awaitable[Response]]
        handler = getattr(self, name)

        async def run(call: Call) -> Response:
            return await handler(call, store, path)

        # A data write's handler starts from what its existence check read (`MetaHints`).
        hints = self._hints if name == "_write" else None

        async def exists(_tenant: str) -> bool:
            record = await store.read(f"meta/{path.key}")
            meta = None if record is None else self._meta_of(record)
            if hints is not None:
                hints.put(store, path, meta, len(record.value) if record is not None else 0)
            return meta is not None

        return Route(
            acl,
            capability,
            run,
            exists=exists if capability is None else None,
            mount=mount.name,
            parameters=parameters,
            # Reads of data, metadata and subkeys change nothing (`Route.pure`).
            pure=op is Operation.READ,
        )

    async def import_version(self, store: MountStorage, key: str, body: dict[str, Any]) -> None:
        """Write `body` as version 1 of `key`, replacing whatever v2 records `key` has (the
        KV v1 -> v2 upgrade: until the mount says version 2, v2 records are invisible)."""
        path = parse_path(key)
        meta = await self._read_meta(store, path)
        if meta is not None:
            await self._erase(store, path, meta)
        await self._add_version(store, path, 0, lambda _meta: dict(body))

    # -- storage helpers -------------------------------------------------------------------

    async def _config(self, store: MountStorage) -> dict[str, Any]:
        return self._config_from(await store.read("config"))

    @staticmethod
    def _config_from(record: Record | None) -> dict[str, Any]:
        config: dict[str, Any] = {
            "max_versions": 0,
            "cas_required": False,
            "delete_version_after": 0,
            "metadata_cas_required": False,
        }
        if record is not None:
            config.update(decode_record(record.value))
        return config

    async def _read_meta(self, store: MountStorage, path: SecretPath) -> Meta | None:
        record = await store.read(f"meta/{path.key}")
        return None if record is None else self._meta_of(record)

    @staticmethod
    def _meta_of(record: Record) -> Meta:
        meta: Meta = decode_record(record.value)
        meta["_revision"] = record.revision
        return meta

    async def _store_meta(self, store: MountStorage, path: SecretPath, meta: Meta) -> None:
        key, value, revision = _meta_write(path, meta)
        await store.write(key, value, expected_revision=revision)

    def _new_meta(self, now: int) -> Meta:
        return {
            "created": now,
            "updated": now,
            "current_version": 0,
            "oldest_version": 0,
            "max_versions": 0,
            "cas_required": False,
            "delete_version_after": 0,
            "custom_metadata": None,
            "versions": {},
        }

    def _is_live(self, entry: Mapping[str, Any], now: int) -> bool:
        deleted = entry["deleted"]
        return not entry["destroyed"] and not (deleted and deleted <= now)

    def _prune(self, path: SecretPath, meta: Meta, config: Mapping[str, Any]) -> list[str]:
        """Drop versions beyond max_versions from `meta`; return their data keys to delete.

        OpenBao's rule, observed on 2.7: the limit is the larger of the key's and the mount's
        max_versions (10 if neither is set); once current - oldest reaches it, every version up
        to current - limit goes and oldest_version moves past them (to 1 when nothing is gone).
        Only a data write prunes; lowering max_versions alone destroys nothing.
        """
        limit = max(meta["max_versions"], config["max_versions"]) or DEFAULT_MAX_VERSIONS
        current, oldest = meta["current_version"], meta["oldest_version"]
        if current - oldest < limit:
            return []
        last_doomed = current - limit
        doomed: list[str] = []
        for version in range(oldest, last_doomed + 1):
            entry = meta["versions"].pop(str(version), None)
            if entry is not None and entry.get("ref"):
                doomed.append(_data_key(path.key, version, entry["ref"]))
        meta["oldest_version"] = last_doomed + 1
        return doomed

    async def _erase(self, store: MountStorage, path: SecretPath, meta: Meta) -> None:
        """Delete `path` whole: its metadata as read (check-and-set), then every version's data.

        Metadata first, so that a lost race leaves everything as it was; a crash after it
        leaves only unreachable data records, never metadata pointing at destroyed data.
        """
        await store.delete(f"meta/{path.key}", expected_revision=meta.pop("_revision"))
        await self._purge(
            store,
            [
                _data_key(path.key, int(version), entry["ref"])
                for version, entry in meta["versions"].items()
                if entry.get("ref")
            ],
        )

    async def _purge(self, store: MountStorage, keys: list[str]) -> None:
        for key in keys:
            await store.delete(key)

    # -- config ----------------------------------------------------------------------------

    async def _read_config(self, call: Call, store: MountStorage) -> Response:
        config = await self._config(store)
        return Response(
            data={
                "cas_required": config["cas_required"],
                "delete_version_after": format_duration(config["delete_version_after"]),
                "max_versions": config["max_versions"],
                "metadata_cas_required": config["metadata_cas_required"],
            }
        )

    async def _write_config(self, call: Call, store: MountStorage) -> Response:
        settings = _settings_from(call.data)

        async def attempt() -> Response:
            record = await store.read("config")
            config = self._config_from(record)
            config.update(settings)
            await store.write(
                "config",
                encode_record(config),
                expected_revision=record.revision if record else 0,
            )
            return Response.no_content()

        return await retry_on_conflict(
            attempt, what="the mount configuration", attempts=_WRITE_ATTEMPTS
        )

    # -- data ------------------------------------------------------------------------------

    def _options(self, data: Mapping[str, Any]) -> tuple[Mapping[str, Any], int | None]:
        options = get_mapping(data, "options") or {}
        raw = options.get("cas")
        if raw is None:
            return options, None
        if isinstance(raw, bool) or not isinstance(raw, int):
            # JSON integers only ("1" or 1.0 is a client bug), in OpenBao's words.
            raise InvalidRequestError("error parsing check-and-set parameter")
        if raw < 0:
            # No version is negative: OpenBao's answer is the plain mismatch.
            raise CheckAndSetError("check-and-set parameter did not match the current version")
        return options, raw

    async def _write(self, call: Call, store: MountStorage, path: SecretPath) -> Response:
        body = _data_from(call.data)
        _, cas = self._options(call.data)
        return await self._add_version(
            store, path, cas, lambda _meta: dict(body), hint=self._hints.take(store, path)
        )

    async def _patch(self, call: Call, store: MountStorage, path: SecretPath) -> Response:
        patch = _data_from(call.data)
        _, cas = self._options(call.data)

        async def current_data(meta: Meta) -> dict[str, Any]:
            version = meta["current_version"]
            if not version:
                raise NotFoundError(empty=True)
            entry = meta["versions"].get(str(version))
            if entry is None:
                raise NotFoundError()
            if not self._is_live(entry, self._clock()):
                # As OpenBao: the 404 carries the latest version's metadata.
                raise NotFoundError(body={"data": _version_view(meta, version)})
            record = await store.read(_data_key(path.key, version, entry["ref"]))
            if record is None:
                raise NotFoundError()
            return dict(_merge_patch(decode_record(record.value), patch))

        return await self._add_version(store, path, cas, current_data, patching=True)

    async def _add_version(
        self,
        store: MountStorage,
        path: SecretPath,
        cas: int | None,
        make: Any,
        *,
        patching: bool = False,
        hint: tuple[bool, Meta | None] = (False, None),
    ) -> Response:
        def check(meta: Meta, config: Mapping[str, Any]) -> None:
            # Check-and-set first, as OpenBao does, then (for a patch) the current data.
            if cas is None and (config["cas_required"] or meta["cas_required"]):
                raise CheckAndSetError("check-and-set parameter required for this call")
            if cas is not None and cas != meta["current_version"]:
                raise CheckAndSetError("check-and-set parameter did not match the current version")

        async def attempt() -> Response:
            nonlocal hint
            config = await self._config(store)
            # The first attempt of a write may start from its existence check's read.
            hinted, meta = hint
            hint = (False, None)
            if not hinted:
                meta = await self._read_meta(store, path)
            now = self._clock()
            if meta is None:
                if patching:
                    raise NotFoundError(empty=True)  # OpenBao: 404 without a body
                meta = self._new_meta(now)
            try:
                check(meta, config)
            except CheckAndSetError:
                if not hinted:
                    raise
                # A refusal is never decided on a hint: read the record again, decide again.
                meta = await self._read_meta(store, path) or self._new_meta(now)
                check(meta, config)
            body = await make(meta) if patching else make(meta)
            version = meta["current_version"] + 1
            ref = public_random(8).hex()  # unique, not secret: no getrandom call per write
            data_key = _data_key(path.key, version, ref)
            deletion = 0
            after = [v for v in (meta["delete_version_after"], config["delete_version_after"]) if v]
            if after:
                deletion = now + min(after) * 1_000_000_000
            meta["versions"][str(version)] = {
                "created": now,
                "deleted": deletion,
                "destroyed": False,
                "ref": ref,
            }
            meta["current_version"] = version
            meta["updated"] = now
            doomed = self._prune(path, meta, config)
            # Data first, metadata second: see the module docstring.
            if store.writes_all_or_none:
                # One transaction: a lost race on the metadata leaves nothing behind.
                await store.write_all([(data_key, encode_record(body), 0), _meta_write(path, meta)])
            else:
                await store.write(data_key, encode_record(body), expected_revision=0)
                try:
                    await self._store_meta(store, path, meta)
                except ConflictError:
                    await store.delete(data_key)
                    raise
            await self._purge(store, doomed)
            return Response(data=_version_view(meta, version))

        return await retry_on_conflict(attempt, what="this key", attempts=_WRITE_ATTEMPTS)

    async def _read(self, call: Call, store: MountStorage, path: SecretPath) -> Response:
        version = get_int(call.data, "version", default=0) or 0
        meta = await self._read_meta(store, path)
        if meta is None:
            raise NotFoundError()
        version = version or meta["current_version"]
        entry = meta["versions"].get(str(version))
        if entry is None:
            raise NotFoundError()
        view = _version_view(meta, version)
        if not self._is_live(entry, self._clock()):
            raise NotFoundError(body={"data": {"data": None, "metadata": view}})
        record = await store.read(_data_key(path.key, version, entry["ref"]))
        if record is None:
            raise NotFoundError()
        return Response(data={"data": decode_record(record.value), "metadata": view})

    async def _subkeys(self, call: Call, store: MountStorage, path: SecretPath) -> Response:
        depth = get_int(call.data, "depth", default=0) or 0
        try:
            data = (await self._read(call, store, path)).data or {}
        except NotFoundError as missing:
            if missing.body is None:
                raise
            # A deleted or destroyed version: OpenBao's 404 carries metadata and null subkeys.
            metadata = missing.body["data"]["metadata"]
            raise NotFoundError(body={"data": {"metadata": metadata, "subkeys": None}}) from None
        return Response(
            data={"subkeys": _subkeys(data.get("data"), depth), "metadata": data.get("metadata")}
        )

    async def _change_versions(
        self, store: MountStorage, path: SecretPath, versions: list[int] | None, action: str
    ) -> None:
        async def attempt() -> None:
            meta = await self._read_meta(store, path)
            if meta is None:
                return
            now = self._clock()
            targets = versions if versions is not None else [meta["current_version"]]
            doomed: list[str] = []
            changed = False
            for version in targets:
                entry = meta["versions"].get(str(version))
                if entry is None or entry["destroyed"]:
                    continue
                if action == "delete":
                    if not (entry["deleted"] and entry["deleted"] <= now):
                        entry["deleted"] = now
                        changed = True
                elif action == "undelete":
                    if entry["deleted"]:
                        entry["deleted"] = 0
                        changed = True
                else:  # destroy
                    entry["destroyed"] = True
                    if entry.get("ref"):
                        doomed.append(_data_key(path.key, version, entry["ref"]))
                    entry["ref"] = ""
                    changed = True
            if not changed:
                return
            meta["updated"] = now
            await self._store_meta(store, path, meta)
            await self._purge(store, doomed)
            return

        return await retry_on_conflict(attempt, what="this key", attempts=_WRITE_ATTEMPTS)

    async def _delete_latest(self, call: Call, store: MountStorage, path: SecretPath) -> Response:
        await self._change_versions(store, path, None, "delete")
        return Response.no_content()

    @staticmethod
    def _required_versions(call: Call, message: str) -> list[int]:
        versions = get_versions(call.data)
        if not versions:
            raise InvalidRequestError(message)
        return versions

    # The three messages differ in case exactly as OpenBao's do (clients may match on them).
    async def _delete_versions(self, call: Call, store: MountStorage, path: SecretPath) -> Response:
        versions = self._required_versions(call, "No version number provided")
        await self._change_versions(store, path, versions, "delete")
        return Response.no_content()

    async def _undelete(self, call: Call, store: MountStorage, path: SecretPath) -> Response:
        versions = self._required_versions(call, "No version number provided")
        await self._change_versions(store, path, versions, "undelete")
        return Response.no_content()

    async def _destroy(self, call: Call, store: MountStorage, path: SecretPath) -> Response:
        versions = self._required_versions(call, "no version number provided")
        await self._change_versions(store, path, versions, "destroy")
        return Response.no_content()

    # -- metadata --------------------------------------------------------------------------

    async def _read_metadata(self, call: Call, store: MountStorage, path: SecretPath) -> Response:
        meta = await self._read_meta(store, path)
        if meta is None:
            raise NotFoundError()
        return Response(
            data={
                "cas_required": meta["cas_required"],
                "created_time": format_time(meta["created"]),
                "current_metadata_version": meta.get("metadata_version", 0),
                "current_version": meta["current_version"],
                "custom_metadata": meta["custom_metadata"],
                "delete_version_after": format_duration(meta["delete_version_after"]),
                "max_versions": meta["max_versions"],
                "metadata_cas_required": meta.get("metadata_cas_required", False),
                "oldest_version": meta["oldest_version"],
                "updated_time": format_time(meta["updated"]),
                "versions": {
                    version: {
                        "created_time": format_time(entry["created"]),
                        "deletion_time": format_time(entry["deleted"]),
                        "destroyed": entry["destroyed"],
                    }
                    for version, entry in sorted(meta["versions"].items(), key=lambda i: int(i[0]))
                },
            }
        )

    def _metadata_changes(self, data: Mapping[str, Any], *, patch: bool) -> dict[str, Any]:
        changes = _settings_from(data)
        if "custom_metadata" in data:
            raw = data["custom_metadata"]
            if raw is None and not patch:
                changes["custom_metadata"] = None
            elif raw is not None:
                if not isinstance(raw, Mapping):
                    raise InvalidRequestError("custom_metadata must be an object of strings")
                # In a patch, null values remove keys (JSON merge patch); check the rest.
                kept = {k: v for k, v in raw.items() if not (patch and v is None)}
                _check_custom_metadata(kept)
                changes["custom_metadata"] = dict(raw)
        return changes

    async def _update_metadata(
        self, call: Call, store: MountStorage, path: SecretPath, *, patch: bool
    ) -> Response:
        changes = self._metadata_changes(call.data, patch=patch)
        # OpenBao's metadata check-and-set: `metadata_cas` must equal current_metadata_version
        # whenever it is given, and must be given once the mount or the key requires it.
        metadata_cas = get_int(call.data, "metadata_cas", strict=True)

        async def attempt() -> Response:
            meta = await self._read_meta(store, path)
            now = self._clock()
            if meta is None:
                if patch:
                    raise NotFoundError(empty=True)  # OpenBao: 404 without a body
                meta = self._new_meta(now)
            elif not changes:
                return Response.no_content()  # nothing to change: no new metadata version
            config = await self._config(store)
            if metadata_cas is None:
                if config["metadata_cas_required"] or meta.get("metadata_cas_required", False):
                    raise CheckAndSetError(
                        "metadata check-and-set parameter required for this call"
                    )
            elif metadata_cas != meta.get("metadata_version", 0):
                raise CheckAndSetError(
                    "metadata check-and-set parameter does not match the current version"
                )
            for name, value in changes.items():
                if name == "custom_metadata" and patch:
                    merged = _merge_patch(meta["custom_metadata"] or {}, value)
                    _check_custom_metadata(merged)
                    meta["custom_metadata"] = merged or None
                else:
                    meta[name] = value
            meta["metadata_version"] = meta.get("metadata_version", 0) + 1
            meta["updated"] = now
            # Like Vault, a lower max_versions takes effect at the next data write, not here.
            await self._store_meta(store, path, meta)
            return Response.no_content()

        return await retry_on_conflict(attempt, what="this key", attempts=_WRITE_ATTEMPTS)

    async def _write_metadata(self, call: Call, store: MountStorage, path: SecretPath) -> Response:
        return await self._update_metadata(call, store, path, patch=False)

    async def _patch_metadata(self, call: Call, store: MountStorage, path: SecretPath) -> Response:
        return await self._update_metadata(call, store, path, patch=True)

    async def _delete_metadata(self, call: Call, store: MountStorage, path: SecretPath) -> Response:
        async def attempt() -> Response:
            meta = await self._read_meta(store, path)
            if meta is None:
                return Response.no_content()
            await self._erase(store, path, meta)
            return Response.no_content()

        return await retry_on_conflict(attempt, what="this key", attempts=_WRITE_ATTEMPTS)

    async def _list(self, call: Call, store: MountStorage, directory: SecretPath) -> Response:
        prefix = f"meta/{directory.key}/" if directory.key else "meta/"
        keys = await store.list(prefix)
        if not keys:
            raise NotFoundError()
        return Response(data={"keys": keys})
