"""An imported CA key at rest: sealed with the mount key like a generated one (no PEM, no key
bytes in the backend), and never part of any answer after the import."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tenantvault._core import Core
from tenantvault._request import Operation, Request
from tenantvault.backends import MemoryBackend
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.engines.pki._store import PkiStore


async def _core() -> Core:
    core = Core(MemoryBackend())
    core.strict_parameters = True
    await core.start()
    await core.initialize_root_token("root")
    return core


async def _call(
    core: Core, path: str, data: dict[str, object] | None = None, op: Operation = Operation.UPDATE
) -> str:
    response = await core.handle(Request(operation=op, path=path, data=data, token="root"))
    return repr(response.data) + repr(response.warnings)


async def test_imported_key_is_sealed_and_never_answered() -> None:
    core = await _core()
    await _call(core, "sys/mounts/pki", {"type": "pki"})
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    body_line = key_pem.splitlines()[1]
    answers = [await _call(core, "pki/keys/import", {"pem_bundle": key_pem, "key_name": "k"})]
    table = await core.router.table(SYSTEM_TENANT, "")
    storage = table.entries["pki/"].storage
    names = await core.backend.list(SYSTEM_TENANT, storage, "keys/")
    assert len(names) == 1
    raw = await core.backend.read(SYSTEM_TENANT, storage, "keys/" + names[0])
    assert raw is not None
    assert b"PRIVATE KEY" not in raw.value
    assert body_line.encode() not in raw.value
    record = await PkiStore(table.mounts["pki/"].storage).key(names[0])
    assert record is not None
    loaded = serialization.load_pem_private_key(record["private_key"].encode(), password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers() == key.private_numbers()
    answers += [
        await _call(core, "pki/keys/", op=Operation.LIST),
        await _call(core, "pki/key/k", op=Operation.READ),
        await _call(core, "pki/key/k", {"key_name": "renamed"}),
        await _call(core, "pki/keys/import", {"pem_bundle": key_pem}),
    ]
    for answer in answers:
        assert "PRIVATE KEY" not in answer
        assert body_line not in answer
