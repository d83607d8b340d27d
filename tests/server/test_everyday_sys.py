"""Issue 11's everyday sys endpoints, as hvac and node-vault call them: `GET sys/policy`,
`sys/init`, `sys/tools/random` and `sys/tools/hash`, and `sys/audit-hash` of a device that
is not enabled. Shapes, statuses and texts are OpenBao 2.7.2's."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.server.conftest import Vault

HELLO = base64.b64encode(b"hello").decode()


async def test_get_sys_policy_lists_names_under_keys_and_policies_also_at_the_top(
    vault: Vault,
) -> None:
    """hvac's `sys.list_policies()` reads `data.policies` (older clients the top level)."""
    await vault.create_tenant("acme")
    await vault.write_policy("acme", "app", 'path "secret/*" { capabilities = ["read"] }')
    reply = await vault.root("GET", "sys/policy", namespace="acme")
    assert reply.status_code == 200
    body = reply.json()
    assert body["data"] == {"keys": ["app", "default"], "policies": ["app", "default"]}
    assert body["keys"] == body["policies"] == ["app", "default"]
    root = (await vault.root("GET", "sys/policy")).json()["data"]
    assert root["policies"] == ["default", "root"]


async def test_list_sys_policies_acl_and_its_405_for_a_read(vault: Vault) -> None:
    await vault.create_tenant("acme")
    listed = await vault.root("LIST", "sys/policies/acl", namespace="acme")
    assert listed.json()["data"] == {"keys": ["default"]}
    assert (await vault.root("GET", "sys/policies/acl", namespace="acme")).status_code == 405


async def test_sys_init_reads_initialized_without_a_token(vault: Vault) -> None:
    reply = await vault.request("GET", "sys/init")
    assert (reply.status_code, reply.json()) == (200, {"initialized": True})
    again = await vault.request("POST", "sys/init", json={"secret_shares": 1})
    assert again.status_code == 400
    assert again.json() == {"errors": ["Vault is already initialized"]}
    assert (await vault.request("DELETE", "sys/init")).status_code == 405


@pytest.mark.parametrize(
    ("path", "body", "size", "encoding"),
    [
        ("sys/tools/random", {}, 32, "base64"),
        ("sys/tools/random/8", {"bytes": 99}, 8, "base64"),
        ("sys/tools/random", {"bytes": 5, "format": "hex"}, 5, "hex"),
        ("sys/tools/random/platform/3", {"format": "hex"}, 3, "hex"),
        ("sys/tools/random/all/4", {}, 4, "base64"),
        ("sys/tools/random", {"bytes": 131072}, 131072, "base64"),
    ],
)
async def test_random_bytes_in_the_size_and_format_asked(
    vault: Vault, path: str, body: dict[str, object], size: int, encoding: str
) -> None:
    reply = await vault.root("POST", path, json=body)
    assert reply.status_code == 200, reply.text
    text = reply.json()["data"]["random_bytes"]
    raw = bytes.fromhex(text) if encoding == "hex" else base64.b64decode(text, validate=True)
    assert len(raw) == size


async def test_random_from_the_seal_says_it_used_the_platform(vault: Vault) -> None:
    reply = await vault.root("POST", "sys/tools/random/seal/4", json={"source": "all"})
    assert reply.json()["warnings"] == [
        "no seal/entropy augmentation available, using platform entropy source",
        "Endpoint replaced the value of these parameters with the values captured from the "
        "endpoint's path: [source]",
    ]


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("sys/tools/random", {"bytes": 0}, "'bytes' cannot be less than 1"),
        ("sys/tools/random/0", {}, "'bytes' cannot be less than 1"),
        ("sys/tools/random", {"bytes": 131073}, "'bytes' should be less than 131072"),
        (
            "sys/tools/random/hex",
            {},
            'error parsing url-set byte count: strconv.Atoi: parsing "hex": invalid syntax',
        ),
        (
            "sys/tools/random/all/4/hex",
            {},
            'error parsing url-set byte count: strconv.Atoi: parsing "4/hex": invalid syntax',
        ),
        (
            "sys/tools/random",
            {"format": "base32"},
            # OpenBao quotes the body's value; a body value is never echoed here.
            'unsupported encoding format; must be "hex" or "base64"',
        ),
        (
            "sys/tools/random",
            {"source": "nope"},
            'unsupported entropy source; must be "platform" or "seal", or "all"',
        ),
        (
            "sys/tools/random/hex/4",
            {},
            'unsupported entropy source "hex"; must be "platform" or "seal", or "all"',
        ),
    ],
)
async def test_random_refusals_are_openbaos(
    vault: Vault, path: str, body: dict[str, object], error: str
) -> None:
    reply = await vault.root("POST", path, json=body)
    assert (reply.status_code, reply.json()) == (400, {"errors": [error]})


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("sys/tools/hash", {"input": HELLO}, hashlib.sha256(b"hello").hexdigest()),
        ("sys/tools/hash", {}, hashlib.sha256(b"").hexdigest()),
        (
            "sys/tools/hash/sha2-512",
            {"input": HELLO, "format": "base64"},
            base64.b64encode(hashlib.sha512(b"hello").digest()).decode(),
        ),
        (
            "sys/tools/hash/sha3-256",
            {"input": HELLO, "algorithm": "sha2-224"},
            hashlib.sha3_256(b"hello").hexdigest(),
        ),
        (
            "sys/tools/hash",
            {"input": HELLO, "algorithm": "sha2-384"},
            hashlib.sha384(b"hello").hexdigest(),
        ),
    ],
)
async def test_hash_sums_with_the_url_algorithm_winning(
    vault: Vault, path: str, body: dict[str, object], expected: str
) -> None:
    reply = await vault.root("POST", path, json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["data"] == {"sum": expected}


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("sys/tools/hash/md5", {"input": HELLO}, "unsupported algorithm md5"),
        ("sys/tools/hash/sha1", {"input": HELLO}, "unsupported algorithm sha1"),
        (
            "sys/tools/hash",
            {"input": HELLO, "format": "b32"},
            'unsupported encoding format; must be "hex" or "base64"',
        ),
        ("sys/tools/hash", {"input": HELLO, "algorithm": "md5"}, "unsupported algorithm"),
        (
            "sys/tools/hash/md5",
            {"input": "!!"},
            "unable to decode input as base64: illegal base64 data at input byte 0",
        ),
    ],
)
async def test_hash_refusals_are_openbaos(
    vault: Vault, path: str, body: dict[str, object], error: str
) -> None:
    reply = await vault.root("POST", path, json=body)
    assert (reply.status_code, reply.json()) == (400, {"errors": [error]})


async def test_tools_work_in_a_tenant_with_update_on_the_path_and_only_so(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await vault.write_policy(
        "acme", "tools", 'path "sys/tools/hash/*" { capabilities = ["update"] }'
    )
    token = (await vault.create_token("acme", ["tools"]))["client_token"]
    allowed = await vault.request(
        "POST", "sys/tools/hash/sha2-256", token=token, namespace="acme", json={"input": HELLO}
    )
    assert allowed.status_code == 200
    denied = await vault.request("POST", "sys/tools/random", token=token, namespace="acme", json={})
    assert denied.status_code == 403
    assert (await vault.root("GET", "sys/tools/random")).status_code == 405


async def test_audit_hash_of_a_device_that_is_not_enabled_is_openbaos_400(vault: Vault) -> None:
    reply = await vault.root("POST", "sys/audit-hash/nope", json={"input": "x"})
    assert (reply.status_code, reply.json()) == (
        400,
        {"errors": ['unknown audit backend "nope/"']},
    )
    empty = await vault.root("POST", "sys/audit-hash/nope", json={})
    assert empty.json() == {"errors": ['the "input" parameter is empty']}
