"""HTTP ⇄ Request translation: request target, method, headers, query string, PATCH labels.

Pure functions over the pieces of an ASGI scope; each refuses what it cannot translate
unambiguously with an `HTTPError` (or a core `InvalidRequestError`) and never echoes a token
or a submitted value. The Core validates the path grammar itself; this layer only makes sure
that nothing is hidden from it — an encoded separator, a control character, a dot segment —
and that every request has one meaning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl

from tenantvault import _b64
from tenantvault._exceptions import InvalidPathError, InvalidRequestError
from tenantvault._paths import check_request_path, decode_raw_path
from tenantvault._request import OCSP_GET_FIELD, OCSP_REQUEST_FIELD, Operation

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_HEADER_COUNT",
    "MAX_QUERY_BYTES",
    "MAX_RAW_PATH_BYTES",
    "HTTPError",
    "Headers",
    "api_path",
    "check_patch_content_type",
    "ocsp_get_form",
    "ocsp_request_data",
    "parse_bool",
    "parse_headers",
    "parse_query",
    "printable",
    "resolve_operation",
]

# Far above the longest valid request (a 512-byte mount-relative path, every byte
# percent-encoded, plus namespace and mount) and far below what makes scanning it slow,
# so an over-long target is refused in bounded time.
MAX_RAW_PATH_BYTES: Final = 4096
MAX_QUERY_BYTES: Final = 4096
MAX_QUERY_FIELDS: Final = 32
MAX_QUERY_VALUE_CHARS: Final = 1024
# Vault clients send a handful of headers; granian refuses far bigger header blocks itself,
# these catch the rest in-process, where a test can reach them.
MAX_HEADER_COUNT: Final = 100
MAX_HEADER_BYTES: Final = 64 * 1024
MAX_NAMESPACE_CHARS: Final = 128
_API_PREFIX: Final = b"/v1/"
# Query parameter names that carry credentials: refused, so a token never sits in a URL
# that proxies, browsers and access logs keep. Compared case-folded
# with '-' read as '_'.
_CREDENTIAL_PARAMS: Final = frozenset(
    {
        "token",
        "x_vault_token",
        "vault_token",
        "client_token",
        "access_token",
        "authorization",
        "wrapping_token",
        "secret_id",
        "password",
    }
)
_PARAM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_BOOL_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_BOOL_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_METHODS: Final = {
    "GET": Operation.READ,
    "LIST": Operation.LIST,
    "POST": Operation.UPDATE,
    "PUT": Operation.UPDATE,
    "PATCH": Operation.PATCH,
    "DELETE": Operation.DELETE,
}
JSON: Final = "application/json"
MERGE_PATCH: Final = "application/merge-patch+json"
_SHOWN_CHARS: Final = 64


class HTTPError(Exception):
    """A refusal that has no Core exception of its own (414, 405 of an unknown verb, 415…)."""

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(message or "")
        self.status = status
        self.errors = [message] if message else []


def printable(value: bytes | str, *, limit: int = _SHOWN_CHARS) -> str:
    """A safe rendering of untrusted text for a message or a log line: at most `limit`
    characters, everything outside printable ASCII escaped (no CR/LF log injection)."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    clipped = text[:limit]
    if not (clipped.isascii() and clipped.isprintable()):
        clipped = clipped.encode("unicode_escape").decode("ascii")
    return clipped + ("..." if len(text) > limit else "")


def api_path(raw_path: bytes) -> str | None:
    """The decoded API path after `/v1/` ('secret/data/app'), or None if not under `/v1/`.

    Decodes once (through `decode_raw_path`, which refuses `%2F`, `%5C` and malformed
    escapes), then applies the request-path grammar of `_paths.check_request_path`.
    """
    if not raw_path.startswith(b"/"):
        # Asterisk-form ("*"), absolute-form or anything else that is not an origin-form
        # target: the tenant must never come from a URL's host part.
        raise HTTPError(400, "invalid request target")
    if len(raw_path) > MAX_RAW_PATH_BYTES:
        raise HTTPError(414, "request path too long")
    if not raw_path.startswith(_API_PREFIX):
        return None
    raw = raw_path[len(_API_PREFIX) :]
    if b"%" in raw or b"#" in raw:
        path = decode_raw_path(raw)
    else:
        # Nothing to percent-decode: decode_raw_path would return exactly this (and refuse
        # the same invalid UTF-8), without its per-byte loop on the hot path.
        try:
            path = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidPathError("invalid path: not valid UTF-8") from None
    # The one grammar of request paths (`_paths`); the Core applies it again to every
    # request from every surface, this early check only keeps a refusal out of the Core.
    return check_request_path(path)


# RFC 6960 A.1's GET form: `<url>/<url-encoding of the base64 of the DER request>`. Only the
# escapes base64 needs ('/', '+', '='), in either case, and nothing else in the tail.
_OCSP_TAIL: Final = b"/ocsp/"
_OCSP_ESCAPES: Final = re.compile(rb"%(2[fF]|2[bB]|3[dD])")
_BASE64_TEXT: Final = re.compile(rb"[A-Za-z0-9+/=]+\Z")


def ocsp_get_form(raw_path: bytes) -> tuple[bytes, dict[str, str]] | None:
    """For `GET /v1/<…>/ocsp/<base64>` with the base64 URL-escaped (`%2F`, `%2B`, `%3D`), as
    RFC 6960 asks: the target without its tail (`/v1/<…>/ocsp`) and the base64 as request
    data under `OCSP_GET_FIELD`; None for every other target.

    Encoded separators stay refused in every path (`decode_raw_path`): here the escaped part
    is no path at all but a parameter, so it never reaches the path grammar, and the Core
    refuses it (as the encoded separator it would be) on every route but pki's `ocsp`.
    """
    start = raw_path.rfind(_OCSP_TAIL)
    if start < 0 or not raw_path.startswith(_API_PREFIX):
        return None
    tail = raw_path[start + len(_OCSP_TAIL) :]
    if b"%" not in tail:
        return None  # the plain form: a path like any other
    encoded = _OCSP_ESCAPES.sub(lambda found: bytes([int(found.group(1), 16)]), tail)
    if not _BASE64_TEXT.match(encoded):
        return None  # some other escape: refused as such by `api_path`
    return raw_path[: start + len(_OCSP_TAIL) - 1], {OCSP_GET_FIELD: encoded.decode("ascii")}


def parse_bool(value: str, name: str) -> bool:
    """Go's strconv.ParseBool, which Vault uses for query flags such as `list`."""
    if value in _BOOL_TRUE:
        return True
    if value in _BOOL_FALSE:
        return False
    raise InvalidRequestError(f"invalid value for {name}: expected a boolean")


def parse_query(query_string: bytes) -> dict[str, str]:
    """Query parameters as a dict of strings; duplicates, odd names and credentials refused."""
    if not query_string:
        return {}
    if len(query_string) > MAX_QUERY_BYTES:
        raise HTTPError(414, "query string too long")
    try:
        pairs = parse_qsl(
            query_string.decode("ascii"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_QUERY_FIELDS,
        )
    except (UnicodeError, ValueError):
        raise InvalidRequestError("invalid query string") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if not _PARAM_NAME.match(name):
            raise InvalidRequestError("invalid query parameter name")
        if name.lower().replace("-", "_") in _CREDENTIAL_PARAMS:
            raise InvalidRequestError(
                "credentials are not accepted in the query string: "
                "send the token in the X-Vault-Token header"
            )
        if name in params:
            raise InvalidRequestError("duplicate query parameter")
        if len(value) > MAX_QUERY_VALUE_CHARS or not value.isprintable():
            raise InvalidRequestError(f"invalid value for query parameter {name}")
        params[name] = value
    return params


def resolve_operation(method: str, path: str, query: dict[str, str]) -> Operation:
    """Vault's verb mapping: GET reads (`?list=true` lists), LIST lists, POST/PUT write."""
    operation = _METHODS.get(method)
    if operation is None:
        raise HTTPError(405, "unsupported operation")
    if operation is Operation.READ and "list" in query:
        if parse_bool(query["list"], "list"):
            return Operation.LIST
    return operation


@dataclass(slots=True)
class Headers:
    """The request headers this layer reads; each may appear at most once."""

    token: str | None = field(default=None, repr=False)
    namespace: str | None = None
    content_type: bytes | None = None
    content_length: int | None = None
    # X-Vault-Wrap-TTL as sent (`_wrapping.parse_wrap_ttl` reads it), and whether
    # X-Vault-Wrap-Format asked for a JWT wrapping token (not supported).
    wrap_ttl: str | None = None
    wrap_format_jwt: bool = False


def _single(found: dict[bytes, bytes], name: bytes, value: bytes) -> None:
    if name in found:
        # Two values for one header would give two readings of one request.
        raise InvalidRequestError(f"duplicate {name.decode('ascii')} header")
    found[name] = value


_READ_HEADERS: Final = frozenset(
    {
        b"x-vault-token",
        b"authorization",
        b"x-vault-namespace",
        b"content-type",
        b"content-length",
        b"x-vault-wrap-ttl",
        b"x-vault-wrap-format",
    }
)


def parse_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """Extract token, namespace, content type and length; refuse ambiguity and excess.

    Token precedence: `X-Vault-Token`, else `Authorization: Bearer <token>`. If both
    are present and differ, the request is refused with 400 — they never combine, and no
    silent choice is made between two credentials. Tokens are not trimmed or case-folded.
    """
    found: dict[bytes, bytes] = {}
    count = 0
    size = 0
    for name, value in raw_headers:
        count += 1
        size += len(name) + len(value)
        if name in _READ_HEADERS:
            _single(found, name, value)
    if count > MAX_HEADER_COUNT or size > MAX_HEADER_BYTES:
        raise HTTPError(431, "request headers too large")
    headers = Headers()
    vault_token = found.get(b"x-vault-token")
    bearer: bytes | None = None
    authorization = found.get(b"authorization")
    if authorization is not None and authorization.startswith(b"Bearer "):
        bearer = authorization[len(b"Bearer ") :]
    if vault_token is not None and bearer is not None and vault_token != bearer:
        raise InvalidRequestError("X-Vault-Token and Authorization carry different tokens")
    token = vault_token if vault_token is not None else bearer
    if token:
        # latin-1 maps every byte to one character: a non-ASCII token reaches the Core as
        # such and is refused there with the same 403 as any other bad token, so the answer
        # never tells a malformed token from a wrong one.
        headers.token = token.decode("latin-1")
    namespace = found.get(b"x-vault-namespace")
    if namespace:
        text = namespace.decode("latin-1")
        if len(text) > MAX_NAMESPACE_CHARS or not (text.isascii() and text.isprintable()):
            raise InvalidRequestError("invalid X-Vault-Namespace header")
        headers.namespace = text
    content_type = found.get(b"content-type")
    if content_type:
        headers.content_type = content_type
    length = found.get(b"content-length")
    if length is not None:
        if not length.isdigit() or len(length) > 18:
            raise InvalidRequestError("invalid Content-Length header")
        headers.content_length = int(length)
    wrap_ttl = found.get(b"x-vault-wrap-ttl")
    if wrap_ttl:
        headers.wrap_ttl = wrap_ttl.decode("latin-1")
    headers.wrap_format_jwt = found.get(b"x-vault-wrap-format", b"").strip().lower() == b"jwt"
    return headers


def _media_type(content_type: bytes) -> tuple[str, str | None]:
    """(media type, charset) of a Content-Type value, lower-cased; charset None if absent."""
    text = content_type.decode("latin-1")
    media, _, params = text.partition(";")
    charset: str | None = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


def ocsp_request_data(method: str, content_type: bytes | None, raw: bytes) -> dict[str, str] | None:
    """The data of a POST or PUT labelled `application/ocsp-request` (DER, not JSON): the
    body as is, base64 under `OCSP_REQUEST_FIELD`, as OpenBao passes it unparsed; None for
    every other request, whose body is read as JSON."""
    if method not in ("POST", "PUT") or content_type is None:
        return None
    if _media_type(content_type)[0] != "application/ocsp-request":
        return None
    return {OCSP_REQUEST_FIELD: _b64.encode(raw)}


def check_patch_content_type(content_type: bytes | None) -> None:
    """PATCH bodies must be labelled merge-patch+json, as in OpenBao: a missing or empty
    media type is 400 (Go's `mime: no media type`), any other one 415 naming it."""
    media = _media_type(content_type)[0] if content_type else ""
    if not media:
        raise HTTPError(400, "mime: no media type")
    if media != MERGE_PATCH:
        shown = printable(media)
        raise HTTPError(415, f"PATCH requires Content-Type of {MERGE_PATCH}, provided {shown}")
