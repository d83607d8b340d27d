"""The differential test extended to issue 11's everyday endpoints: the same requests, as raw
HTTP, to a tenantvault tenant and to a namespace of a real `bao server -dev` get the same
statuses and the same answers, error texts word for word — `sys/policy`, `sys/tools/*`,
token roles, transit export / trim and the KV error texts. Random values (bytes, tokens,
accessors, key material) are compared by shape only.

Deliberate differences are left out of these sequences and listed in the report of issue 11:
OpenBao answers a refused transit backup or restore with 500 (here 400: a retry cannot fix
it), quotes body values in a few errors (never echoed here), and words type errors of
request fields after Go's mapstructure (`error converting input for field ...`).
"""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx
import pytest

from tests.integration.conftest import OpenBaoServer, TenantVaultServer
from tests.integration.test_differential import Outcome, Pair, Step, new_pair

pytestmark = pytest.mark.integration

HELLO = base64.b64encode(b"hello").decode()
# Values that differ on every call by design: compared by length or shape only.
_RANDOM_KEYS = frozenset({"client_token", "accessor", "random_bytes", "public_key"})
_TOKEN_TIME = re.compile(r"\d{4}-\d\d-\d\dT")


def _shape(value: Any, parent: str = "") -> Any:
    if isinstance(value, dict):
        if parent == "keys" and all(isinstance(item, str) for item in value.values()):
            # Exported key material: the versions and each key's size.
            return {version: len(base64.b64decode(key)) for version, key in value.items()}
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "identity_policies" and item is None:
                # null here (no identity store), absent in OpenBao's token answers: the token
                # engine's own difference, not these endpoints'.
                continue
            if key in _RANDOM_KEYS and isinstance(item, str):
                out[key] = "<random>" if key != "random_bytes" else f"<{len(item)} chars>"
            elif (
                key == "keys"
                and isinstance(item, dict)
                and all(isinstance(v, int) for v in item.values())
            ):
                out[key] = sorted(item)  # key versions and their creation times
            elif key == "creation_time" and isinstance(item, str) and _TOKEN_TIME.match(item):
                out[key] = "<time>"
            else:
                out[key] = _shape(item, key)
        return out
    if isinstance(value, list):
        return [_shape(item, parent) for item in value]
    return value


def _run(pair: Pair, steps: list[Step]) -> None:
    differences: list[str] = []
    for index, step in enumerate(steps):
        ours, theirs = pair.ours.send(step), pair.bao.send(step)
        ours = Outcome(ours.status, _shape(ours.body))
        theirs = Outcome(theirs.status, _shape(theirs.body))
        line = f"#{index} {step}\n   tenantvault {ours}\n   openbao     {theirs}"
        pair.transcript.append(line)
        if ours != theirs:
            differences.append(line)
    if differences:
        pytest.fail(
            f"tenantvault and OpenBao differ on {len(differences)} of {len(steps)} steps:\n"
            + "\n".join(differences)
        )


@pytest.fixture
def pair(
    clients: tuple[httpx.Client, httpx.Client],
    tenantvault_server: TenantVaultServer,
    openbao_server: OpenBaoServer,
) -> Pair:
    made = new_pair(clients, tenantvault_server, openbao_server)
    # Every tenant here starts with transit/; the OpenBao namespace gets one to match.
    mounted = made.bao.send(Step("POST", "sys/mounts/transit", {"type": "transit"}))
    assert mounted.status == 204, mounted
    return made


def test_policy_listings(pair: Pair) -> None:
    _run(
        pair,
        [
            Step("GET", "sys/policy"),
            Step("LIST", "sys/policies/acl"),
            Step("PUT", "sys/policies/acl/app", {"policy": 'path "x" {capabilities=["read"]}'}),
            Step("GET", "sys/policy"),
            Step("LIST", "sys/policies/acl"),
        ],
    )


def test_random_and_hash_tools(pair: Pair) -> None:
    _run(
        pair,
        [
            Step("POST", "sys/tools/random", {}),
            Step("POST", "sys/tools/random/8", {"bytes": 99}),
            Step("POST", "sys/tools/random", {"bytes": 5, "format": "hex"}),
            Step("POST", "sys/tools/random/platform/3", {"format": "hex"}),
            Step("POST", "sys/tools/random/seal/4", {"source": "all"}),
            Step("POST", "sys/tools/random/all/4/hex", {}),
            Step("POST", "sys/tools/random/hex", {}),
            Step("POST", "sys/tools/random/hex/4", {}),
            Step("POST", "sys/tools/random", {"bytes": 0}),
            Step("POST", "sys/tools/random", {"bytes": 131073}),
            Step("POST", "sys/tools/random", {"bytes": 4, "extra": 1}),
            Step("POST", "sys/tools/hash", {"input": HELLO}),
            Step("POST", "sys/tools/hash", {}),
            Step("POST", "sys/tools/hash/sha2-512", {"input": HELLO, "format": "base64"}),
            Step("POST", "sys/tools/hash/sha3-256", {"input": HELLO, "algorithm": "sha2-224"}),
            Step("POST", "sys/tools/hash", {"input": HELLO, "algorithm": "sha3-384"}),
            Step("POST", "sys/tools/hash/md5", {"input": HELLO}),
            Step("POST", "sys/tools/hash/sha1", {"input": HELLO}),
            Step("POST", "sys/tools/hash", {"input": "!!"}),
            Step("POST", "sys/tools/hash", {"input": "aGVsbG8"}),
            Step("POST", "transit/random/seal/4", {"source": "all"}),
            Step("POST", "transit/hash", {}),
            Step("POST", "transit/hash/sha2-256", {"input": HELLO}),
        ],
    )


def test_token_roles(pair: Pair) -> None:
    policy = {"policy": 'path "x" {capabilities=["read"]}'}
    _run(
        pair,
        [
            *[Step("PUT", f"sys/policies/acl/{name}", policy) for name in ("a", "b", "c")],
            Step("LIST", "auth/token/roles"),
            Step("POST", "auth/token/roles/plain", {}),
            Step("GET", "auth/token/roles/plain"),
            Step(
                "POST",
                "auth/token/roles/full",
                {
                    "allowed_policies": ["b", "a"],
                    "disallowed_policies": "c",
                    "orphan": True,
                    "renewable": False,
                    "path_suffix": "sfx",
                    "token_period": "1h",
                    "token_explicit_max_ttl": "2h",
                    "allowed_entity_aliases": ["x"],
                    "token_bound_cidrs": ["127.0.0.1/32", "10.0.0.0/8"],
                    "token_type": "service",
                },
            ),
            Step("GET", "auth/token/roles/full"),
            Step(
                "POST",
                "auth/token/roles/old",
                {"period": "1h", "explicit_max_ttl": "2h", "bound_cidrs": ["10.0.0.0/8"]},
            ),
            Step("GET", "auth/token/roles/old"),
            Step("POST", "auth/token/roles/old", {"token_period": "30m"}),
            Step("GET", "auth/token/roles/old"),
            Step("LIST", "auth/token/roles"),
            Step("GET", "auth/token/roles/missing"),
            Step("DELETE", "auth/token/roles/missing"),
            Step("POST", "auth/token/roles/bad", {"token_type": "nope"}),
            Step("POST", "auth/token/roles/bad", {"path_suffix": "a/../b"}),
            Step("POST", "auth/token/roles/ra", {"allowed_policies": ["a", "b"]}),
            Step("POST", "auth/token/create/ra", {"policies": ["c"]}),
            Step("POST", "auth/token/create/ra", {"policies": ["z"]}),
            Step("POST", "auth/token/create/missing", {}),
            Step("POST", "auth/token/roles/rd", {"disallowed_policies": ["c"]}),
            Step("POST", "auth/token/create/rd", {"policies": ["c"]}),
            Step("POST", "auth/token/create/ra", {"policies": ["a"], "no_default_policy": True}),
            Step("DELETE", "auth/token/roles/plain"),
            Step("GET", "auth/token/roles/plain"),
        ],
    )


def test_transit_export_and_trim(pair: Pair) -> None:
    _run(
        pair,
        [
            Step("POST", "transit/keys/plain", {}),
            Step("POST", "transit/keys/e", {"exportable": True}),
            Step("POST", "transit/keys/e/rotate"),
            Step("POST", "transit/keys/ed", {"type": "ed25519", "exportable": True}),
            Step("POST", "transit/keys/h", {"type": "hmac", "key_size": 32, "exportable": True}),
            Step("GET", "transit/export/encryption-key/e"),
            Step("GET", "transit/export/encryption-key/e/latest"),
            Step("GET", "transit/export/hmac-key/e/1"),
            Step("GET", "transit/export/hmac-key/h"),
            Step("GET", "transit/export/signing-key/ed"),
            Step("GET", "transit/export/public-key/ed"),
            Step("GET", "transit/export/encryption-key/plain"),
            Step("GET", "transit/export/encryption-key/e/3"),
            Step("GET", "transit/export/encryption-key/e/0"),
            Step("GET", "transit/export/encryption-key/e/x"),
            Step("GET", "transit/export/signing-key/e"),
            Step("GET", "transit/export/encryption-key/ed"),
            Step("GET", "transit/export/nope/e"),
            Step("GET", "transit/export/encryption-key/missing"),
            Step("POST", "transit/restore", {}),
            *[Step("POST", "transit/keys/e/rotate") for _ in range(3)],
            Step("POST", "transit/keys/e/trim", {}),
            Step("POST", "transit/keys/e/trim", {"min_available_version": 2}),
            Step("POST", "transit/keys/e/config", {"min_encryption_version": 3}),
            Step("POST", "transit/keys/e/trim", {"min_available_version": 2}),
            Step("POST", "transit/keys/e/config", {"min_decryption_version": 3}),
            Step("POST", "transit/keys/e/trim", {"min_available_version": 4}),
            Step("POST", "transit/keys/e/trim", {"min_available_version": 0}),
            Step("POST", "transit/keys/e/trim", {"min_available_version": -1}),
            Step("POST", "transit/keys/e/trim", {"min_available_version": 2}),
            Step("POST", "transit/keys/e/trim", {"min_available_version": 1}),
            Step("POST", "transit/keys/e/trim", {"min_available_version": 3}),
            Step("GET", "transit/keys/e"),
            Step("POST", "transit/keys/e/config", {"min_decryption_version": 1}),
            Step("POST", "transit/keys/missing/trim", {"min_available_version": 3}),
            Step("GET", "transit/export/encryption-key/e"),
        ],
    )


def test_kv_error_texts(pair: Pair) -> None:
    kv_warning_paths = [
        Step(method, "secret/nope/a", body) for method, body in (("GET", None), ("PUT", {}))
    ]
    _run(
        pair,
        [
            Step("POST", "secret/data/a", {}),
            Step("POST", "secret/data/a", {"data": {"k": "v"}, "options": {"cas": "x"}}),
            Step("POST", "secret/data/a", {"data": {"k": "v"}, "options": {"cas": 1.5}}),
            Step("POST", "secret/data/a", {"data": {"k": "v"}, "options": {"cas": -1}}),
            Step("POST", "secret/data/a", {"data": {"k": "v"}, "options": {"cas": 5}}),
            Step("POST", "secret/data/a", {"data": {"k": "v"}}),
            Step("POST", "secret/data/a", {"data": {"k": "w"}, "options": {"cas": 0}}),
            Step("POST", "secret/data/", {"data": {"a": "b"}}),
            Step("POST", "secret/delete/", {"versions": [1]}),
            Step("POST", "secret/delete/a", {}),
            Step("POST", "secret/undelete/a", {}),
            Step("PUT", "secret/destroy/a", {"versions": []}),
            Step("POST", "secret/metadata/a", {"custom_metadata": {"": "v"}}),
            Step("POST", "secret/metadata/a", {"custom_metadata": {"k": ""}}),
            Step("POST", "secret/metadata/a", {"custom_metadata": {"a": "v\u0007"}}),
            Step("POST", "secret/metadata/a", {"custom_metadata": {"é" * 65: "v"}}),
            Step(
                "POST",
                "secret/metadata/a",
                {"custom_metadata": {f"k{i}": "v" for i in range(65)}},
            ),
            Step("POST", "secret/metadata/a", {"max_versions": 1, "cas_required": True}),
            Step("POST", "secret/data/a", {"data": {"k": "x"}}),
            Step("POST", "secret/data/a", {"data": {"k": "x"}, "options": {"cas": 1}}),
            Step("GET", "secret/metadata/missing"),
            Step("LIST", "secret/metadata/nothing"),
            *kv_warning_paths,
        ],
    )


def test_root_namespace_init_and_audit_hash(
    clients: tuple[httpx.Client, httpx.Client],
    tenantvault_server: TenantVaultServer,
    openbao_server: OpenBaoServer,
) -> None:
    ours, bao = clients
    for method, path, body in (
        ("GET", "sys/init", None),
        ("POST", "sys/audit-hash/nope", {"input": "x"}),
        ("POST", "sys/audit-hash/nope", {}),
    ):
        answers = []
        for client, token in (
            (ours, tenantvault_server.root_token),
            (bao, openbao_server.root_token),
        ):
            reply = client.request(
                method, f"/v1/{path}", headers={"X-Vault-Token": token}, json=body
            )
            answers.append((reply.status_code, reply.json()))
        assert answers[0] == answers[1], (path, answers)
