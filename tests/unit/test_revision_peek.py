"""The embedded store tells a cached record's revision without decrypting it (`RevisionPeek`).

The token store, the policy store and the mount table keep a decoding of what they read; on
the embedded store a request whose token, policies and mount table have not moved opens no
sealed record at all. Every change — a use, a revocation, a policy or mount edit — moves the
revision, and the next request reads and decodes again: never a stale answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tenantvault._core import Core
from tenantvault._exceptions import ClosedError, PermissionDeniedError
from tenantvault._request import Operation, Request
from tenantvault.backends._memory import MemoryBackend
from tenantvault.backends._protocol import RevisionPeek, revision_peek
from tenantvault.backends._record_cache import SealedRecord
from tenantvault.backends._sqlite import SqliteBackend

POLICY = 'path "kv1/*" { capabilities = ["read", "create", "update"] }'


async def test_the_committed_revision_follows_writes_and_deletes(acme: SqliteBackend) -> None:
    assert isinstance(acme, RevisionPeek)
    assert acme.committed_revision("acme", "secret", "k") is None  # never seen: unknown
    assert await acme.read("acme", "secret", "k") is None
    assert acme.committed_revision("acme", "secret", "k") == 0  # known absent
    first = await acme.write("acme", "secret", "k", b"one", expected_revision=0)
    assert acme.committed_revision("acme", "secret", "k") == first
    second = await acme.write("acme", "secret", "k", b"two", expected_revision=first)
    assert acme.committed_revision("acme", "secret", "k") == second != first
    assert await acme.delete("acme", "secret", "k")
    assert acme.committed_revision("acme", "secret", "k") == 0
    await acme.aclose()
    with pytest.raises(ClosedError):
        acme.committed_revision("acme", "secret", "k")


def test_a_backend_without_a_peek_is_always_read() -> None:
    peek = revision_peek(MemoryBackend())
    assert peek("acme", "secret", "k") is None


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    backend = await SqliteBackend.open(tmp_path / "data")
    opened = Core(backend)
    try:
        await opened.start()
        await opened.handle_as_operator(Request(Operation.UPDATE, "sys/namespaces/acme"))
        await opened.handle_as_operator(
            Request(Operation.UPDATE, "sys/policies/acl/app", {"policy": POLICY}, namespace="acme")
        )
        yield opened
    finally:
        await opened.aclose()
        await backend.aclose()


@pytest.fixture
def opened() -> Iterator[list[int]]:
    """Counts the sealed records opened (decrypted) while the test runs."""
    counter = [0]
    original = SealedRecord.open

    def counting(self: SealedRecord) -> object:
        counter[0] += 1
        return original(self)

    patch = pytest.MonkeyPatch()
    patch.setattr(SealedRecord, "open", counting)
    try:
        yield counter
    finally:
        patch.undo()


async def _token(core: Core, **data: object) -> str:
    created = await core.handle_as_operator(
        Request(
            Operation.UPDATE,
            "auth/token/create",
            {"policies": ["app"], **data},
            namespace="acme",
        )
    )
    assert created.auth is not None
    return str(created.auth["client_token"])


async def _lookup_self(core: Core, token: str) -> int:
    response = await core.handle(Request(Operation.READ, "auth/token/lookup-self", token=token))
    return response.status


async def test_an_unchanged_token_policy_and_mount_table_are_not_decrypted_again(
    core: Core, opened: list[int]
) -> None:
    token = await _token(core)
    assert await _lookup_self(core, token) == 200  # reads what it has not seen yet
    opened[0] = 0
    assert await _lookup_self(core, token) == 200
    assert await _lookup_self(core, token) == 200
    assert opened[0] == 0


async def test_a_revoked_token_is_refused_at_once(core: Core) -> None:
    token = await _token(core)
    assert await _lookup_self(core, token) == 200
    await core.handle_as_operator(
        Request(Operation.UPDATE, "auth/token/revoke", {"token": token}, namespace="acme")
    )
    with pytest.raises(PermissionDeniedError):
        await _lookup_self(core, token)


async def test_each_use_of_a_limited_token_counts(core: Core) -> None:
    token = await _token(core, num_uses=2)
    assert await _lookup_self(core, token) == 200
    assert await _lookup_self(core, token) == 200
    with pytest.raises(PermissionDeniedError):
        await _lookup_self(core, token)


async def test_a_policy_change_applies_to_the_next_request(core: Core) -> None:
    token = await _token(core)
    await core.handle_as_operator(
        Request(Operation.UPDATE, "sys/mounts/kv1", {"type": "kv"}, namespace="acme")
    )
    write = Request(Operation.UPDATE, "kv1/app", {"k": "v"}, token=token)
    assert (await core.handle(write)).status == 204
    await core.handle_as_operator(
        Request(
            Operation.UPDATE,
            "sys/policies/acl/app",
            {"policy": 'path "kv1/*" { capabilities = ["read"] }'},
            namespace="acme",
        )
    )
    with pytest.raises(PermissionDeniedError):
        await core.handle(write)


async def test_a_mount_change_applies_to_the_next_request(core: Core) -> None:
    token = await _token(core)
    await core.handle_as_operator(
        Request(Operation.UPDATE, "sys/mounts/kv1", {"type": "kv"}, namespace="acme")
    )
    read = Request(Operation.READ, "kv1/app", token=token)
    await core.handle(Request(Operation.UPDATE, "kv1/app", {"k": "v"}, token=token))
    assert (await core.handle(read)).status == 200
    await core.handle_as_operator(Request(Operation.DELETE, "sys/mounts/kv1", namespace="acme"))
    # A stale table would still route to the old mount and answer its data.
    with pytest.raises(PermissionDeniedError):
        await core.handle(read)


async def test_a_policy_known_to_be_absent_applies_once_it_is_written(core: Core) -> None:
    created = await core.handle_as_operator(
        Request(Operation.UPDATE, "auth/token/create", {"policies": ["later"]}, namespace="acme")
    )
    assert created.auth is not None
    token = str(created.auth["client_token"])
    await core.handle_as_operator(
        Request(Operation.UPDATE, "sys/mounts/kv1", {"type": "kv"}, namespace="acme")
    )
    write = Request(Operation.UPDATE, "kv1/app", {"k": "v"}, token=token)
    for _ in range(2):  # `later` and `default`: known absent, so built in or nothing
        with pytest.raises(PermissionDeniedError):
            await core.handle(write)
    await core.handle_as_operator(
        Request(Operation.UPDATE, "sys/policies/acl/later", {"policy": POLICY}, namespace="acme")
    )
    assert (await core.handle(write)).status == 204
    # `default` was never written: still the built-in one (its own token lookup works).
    assert await _lookup_self(core, token) == 200
    await core.handle_as_operator(
        Request(Operation.DELETE, "sys/policies/acl/later", namespace="acme")
    )
    with pytest.raises(PermissionDeniedError):
        await core.handle(write)
