"""Random bytes and hashes as OpenBao's shared helpers answer them.

`sys/tools/random`, `sys/tools/hash` and transit's `random/` and `hash/` are one helper each
in OpenBao (`random_api.go`, `pathHashWrite`), with the same path grammar, order of checks
and error texts; so they are here. An error repeats a value only when it came from the URL
path (as OpenBao's does), never one from the body: a body value may be secret material sent
to the wrong field, which would then reach logs and audit entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tenantvault import _b64
from tenantvault._exceptions import InvalidRequestError
from tenantvault._fields import get_int, get_str
from tenantvault._request import Response
from tenantvault.crypto import (
    HMAC_ALGORITHMS,
    GoBase64Error,
    go_atoi,
    go_b64decode,
    hash_digest,
    random_bytes,
)

__all__ = [
    "HASH_PARAMETERS",
    "MAX_RANDOM_BYTES",
    "RANDOM_PARAMETERS",
    "hash_answer",
    "random_answer",
]

RANDOM_PARAMETERS: Final = frozenset({"bytes", "format", "source"})
HASH_PARAMETERS: Final = frozenset({"input", "algorithm", "format"})
# OpenBao's bound (128 KiB): one request cannot ask the server for unbounded work.
MAX_RANDOM_BYTES: Final = 128 * 1024
_DEFAULT_RANDOM_BYTES: Final = 32
_SOURCES: Final = ("platform", "seal", "all")
_FORMATS: Final = ("hex", "base64")
# Every name of HMAC_ALGORITHMS but sha1, which OpenBao refuses for hashing.
_HASHES: Final = frozenset(name for name in HMAC_ALGORITHMS if name != "sha1")
_BAD_FORMAT: Final = 'unsupported encoding format; must be "hex" or "base64"'
_NO_SEAL_ENTROPY: Final = "no seal/entropy augmentation available, using platform entropy source"
_REPLACED: Final = (
    "Endpoint replaced the value of these parameters with the values captured from the "
    "endpoint's path: [{}]"
)


def _text(data: Mapping[str, Any], name: str) -> str:
    return get_str(data, name) or ""


def _encoded(raw: bytes, output: str) -> str:
    return raw.hex() if output == "hex" else _b64.encode(raw)


def random_answer(data: Mapping[str, Any], sub: str) -> Response:
    """`random(/:source)(/:bytes)`: `sub` is the path after `random/` ('' for none).

    One segment is the source if it names one, else the byte count; with more, the first is
    the source and the rest the byte count (which then fails to parse, as in OpenBao).
    """
    source, _, url_bytes = sub.partition("/")
    if source and not url_bytes and source not in _SOURCES:
        url_bytes, source = source, ""
    warnings: list[str] = []
    if source and "source" in data:
        warnings.append(_REPLACED.format("source"))
    url_source = bool(source)
    source = source or _text(data, "source") or "platform"
    count = get_int(data, "bytes", default=_DEFAULT_RANDOM_BYTES, minimum=-(2**53))
    if url_bytes:
        count = go_atoi(url_bytes)
        if count is None:
            raise InvalidRequestError(
                f'error parsing url-set byte count: strconv.Atoi: parsing "{url_bytes}": '
                "invalid syntax"
            )
    if count is None or count < 1:
        raise InvalidRequestError("'bytes' cannot be less than 1")
    if count > MAX_RANDOM_BYTES:
        raise InvalidRequestError(f"'bytes' should be less than {MAX_RANDOM_BYTES}")
    output = _text(data, "format") or "base64"
    if output not in _FORMATS:
        raise InvalidRequestError(_BAD_FORMAT)
    if source not in _SOURCES:
        shown = f' "{source}"' if url_source else ""
        raise InvalidRequestError(
            f'unsupported entropy source{shown}; must be "platform" or "seal", or "all"'
        )
    if source == "seal":
        # No seal entropy here (no HSM): the platform CSPRNG, as OpenBao says it does.
        warnings.insert(0, _NO_SEAL_ENTROPY)
    text = _encoded(random_bytes(count), output)
    return Response(data={"random_bytes": text}, warnings=warnings or None)


def hash_answer(data: Mapping[str, Any], url_algorithm: str, *, input_required: bool) -> Response:
    """`hash(/:algorithm)`: the URL's algorithm wins over the body's. `input_required` is
    transit's (`input missing`); sys/tools hashes an absent input as the empty string."""
    raw = get_str(data, "input")
    if raw is None and input_required:
        raise InvalidRequestError("input missing")
    try:
        message = go_b64decode(raw or "")
    except GoBase64Error as error:
        raise InvalidRequestError(f"unable to decode input as base64: {error}") from None
    output = _text(data, "format") or "hex"
    if output not in _FORMATS:
        raise InvalidRequestError(_BAD_FORMAT)
    algorithm = url_algorithm or _text(data, "algorithm") or "sha2-256"
    if algorithm not in _HASHES:
        shown = f" {algorithm}" if url_algorithm else ""
        raise InvalidRequestError(f"unsupported algorithm{shown}")
    return Response(data={"sum": _encoded(hash_digest(algorithm, message), output)})
