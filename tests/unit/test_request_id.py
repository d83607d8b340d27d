"""Request ids: RFC 4122 version-4 UUIDs, as Vault's, drawn from a pooled CSPRNG."""

from __future__ import annotations

import uuid

from tenantvault._request import new_request_id


def test_request_ids_are_distinct_version_4_uuids_across_pool_refills() -> None:
    ids = [new_request_id() for _ in range(2000)]  # 2000 x 16 bytes: several 4 KiB pools
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lower-case hex, canonical dashes
