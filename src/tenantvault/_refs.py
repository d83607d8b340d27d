"""`tv://` references to one field of a KV v2 secret: one strict parser, one canonical form.

    tv://<mount>/<path>[?version=N][&namespace=TENANT]#<field>

`mount` is the first segment (a KV v2 mount such as `secret`), `path` the secret's path in it,
`field` one key of its data. The query is optional: `version` pins a version (unpinned
references follow the latest one), `namespace` names the tenant for callers whose token is
not bound to one (root). The grammar is the server's own: the mount and path go through
`check_request_path` and `parse_path`, the field and the tenant through `validate_name` and
`validate_tenant_id`. Nothing is percent-decoded, trimmed or repaired: a string is either a
valid reference or refused with `InvalidReferenceError`, whose message says what is wrong but
never quotes the input (a mistyped value might be a credential).
"""

from __future__ import annotations

from dataclasses import dataclass

from tenantvault._exceptions import InvalidPathError, InvalidRequestError
from tenantvault._paths import check_request_path, parse_path, validate_name, validate_tenant_id

__all__ = ["SCHEME", "InvalidReferenceError", "Reference", "is_reference", "parse_reference"]

SCHEME = "tv://"
# Version numbers are decimal without leading zeros, so each reference has one spelling.
_MAX_VERSION_DIGITS = 18


class InvalidReferenceError(InvalidRequestError):
    """A `tv://` string outside the reference grammar; the message never quotes it."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One field of one KV v2 secret: `tv://mount/path?version=N&namespace=T#field`."""

    mount: str
    path: str
    field: str
    version: int | None = None
    namespace: str | None = None

    def __post_init__(self) -> None:
        # Built by hand or parsed, a Reference is inside the grammar and reads back as itself
        # (a mount holding '/' would read back as another mount and path).
        if parse_reference(_format(self)) != self:
            raise InvalidReferenceError("invalid reference: the mount must be one segment")

    def __str__(self) -> str:
        return _format(self)

    @property
    def data_path(self) -> str:
        """The API path of its secret's data (`secret/data/app/db`)."""
        return f"{self.mount}/data/{self.path}"

    @property
    def metadata_path(self) -> str:
        """The API path of its secret's metadata, where new versions show."""
        return f"{self.mount}/metadata/{self.path}"


def _format(ref: Reference) -> str:
    query = []
    if ref.version is not None:
        query.append(f"version={ref.version}")
    if ref.namespace is not None:
        query.append(f"namespace={ref.namespace}")
    tail = ("?" + "&".join(query)) if query else ""
    return f"{SCHEME}{ref.mount}/{ref.path}{tail}#{ref.field}"


def is_reference(value: str) -> bool:
    """Whether `value` claims to be a reference (starts with `tv://`); it may still be invalid."""
    return value.startswith(SCHEME)


def parse_reference(text: str) -> Reference:
    """Parse a `tv://` reference, or raise `InvalidReferenceError` saying what is wrong."""
    if not isinstance(text, str) or not text.startswith(SCHEME):
        raise InvalidReferenceError("invalid reference: it must start with tv://")
    body = text[len(SCHEME) :]
    location, hash_mark, field = body.partition("#")
    if not hash_mark or not field:
        raise InvalidReferenceError(
            "invalid reference: no #field at the end (tv://mount/path#field)"
        )
    if "#" in field:
        raise InvalidReferenceError("invalid reference: more than one '#'")
    where, question, query = location.partition("?")
    if question and not query:
        raise InvalidReferenceError("invalid reference: empty query after '?'")
    version, namespace = _parse_query(query) if question else (None, None)
    mount, slash, path = where.partition("/")
    if not slash or not mount or not path:
        raise InvalidReferenceError(
            "invalid reference: it needs a mount and a path (tv://mount/path#field)"
        )
    try:
        check_request_path(where)
        parse_path(mount)
        parse_path(path)
    except InvalidPathError as error:
        raise InvalidReferenceError(f"invalid reference: path: {_reason(error)}") from None
    try:
        validate_name(field, kind="field")
    except InvalidPathError as error:
        raise InvalidReferenceError(f"invalid reference: field: {_reason(error)}") from None
    return _build(mount, path, field, version, namespace)


def _build(
    mount: str, path: str, field: str, version: int | None, namespace: str | None
) -> Reference:
    # The fields are already checked: skip __post_init__'s second parse.
    ref = object.__new__(Reference)
    for name, value in (
        ("mount", mount),
        ("path", path),
        ("field", field),
        ("version", version),
        ("namespace", namespace),
    ):
        object.__setattr__(ref, name, value)
    return ref


def _parse_query(query: str) -> tuple[int | None, str | None]:
    version: int | None = None
    namespace: str | None = None
    seen: set[str] = set()
    for item in query.split("&"):
        key, equals, value = item.partition("=")
        if not equals or not value:
            raise InvalidReferenceError("invalid reference: query items must be key=value")
        if key not in ("version", "namespace"):
            raise InvalidReferenceError(
                "invalid reference: unknown query item (only version and namespace)"
            )
        if key in seen:
            raise InvalidReferenceError(f"invalid reference: {key} given more than once")
        seen.add(key)
        if key == "version":
            version = _parse_version(value)
        else:
            try:
                namespace = validate_tenant_id(value)
            except InvalidPathError as error:
                raise InvalidReferenceError(
                    f"invalid reference: namespace: {_reason(error)}"
                ) from None
    return version, namespace


def _parse_version(value: str) -> int:
    if (
        not value.isascii()
        or not value.isdigit()
        or value.startswith("0")
        or len(value) > _MAX_VERSION_DIGITS
    ):
        raise InvalidReferenceError(
            "invalid reference: version must be a positive decimal number without leading zeros"
        )
    return int(value)


def _reason(error: InvalidPathError) -> str:
    # "invalid path: empty segment" reads "invalid reference: empty segment".
    message = str(error)
    return message.split(": ", 1)[1] if message.startswith("invalid ") else message
