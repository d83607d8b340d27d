"""The codec of stored records: JSON bytes in and out, and one error for bytes that are not.

Every store (tokens, tenants, policies, mount tables, audit state, engine data) writes its
records through `encode_record` and reads them through `decode_record`. It lives at the top
of the package, beside the stores that use it, so that they need not import `engines/`.
"""

from __future__ import annotations

from typing import Any

import orjson

from tenantvault._exceptions import IntegrityError

__all__ = ["decode_record", "encode_record"]


def encode_record(value: Any) -> bytes:
    """`value` as the JSON bytes a backend stores."""
    return orjson.dumps(value)


def decode_record(raw: bytes) -> Any:
    """The value `encode_record` stored as `raw`; `IntegrityError` if `raw` is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Only reachable if storage was altered behind our back: decryption succeeded but the
        # plaintext is not ours. Say so without echoing it.
        raise IntegrityError("stored record is not valid") from None
