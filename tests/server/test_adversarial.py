"""reference/adversarial.md at the HTTP level: A-1…A-16, P-1…P-10, T-1 and T-3.

Every case asserts the status, a Vault `{"errors": [...]}` body, that nothing was stored,
and that no canary (secret value or token) shows up in a response or in the logs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import orjson
import pytest

from tenantvault._config import ServerSettings
from tenantvault.server import TenantVaultApp, create_app
from tests.conftest import canary
from tests.server.conftest import (
    BASE_URL,
    JSON,
    MERGE_PATCH,
    Vault,
    assert_no_canary,
    raw_call,
)

DENIED = b'{"errors":["permission denied"]}'


@pytest.fixture
async def acme(vault: Vault) -> str:
    return await vault.tenant_admin("acme")


def _token_headers(token: str, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(b"x-vault-token", token.encode()), (b"x-vault-namespace", b"acme"), *extra]


async def _nothing_stored(vault: Vault, token: str) -> None:
    listed = await vault.request("LIST", "secret/metadata", token=token, namespace="acme")
    assert listed.status_code == 404, listed.text


def _is_vault_error(body: bytes) -> bool:
    decoded = orjson.loads(body)
    return isinstance(decoded, dict) and isinstance(decoded.get("errors"), list)


# -- A-1 … A-5: traversal, encodings, separators, controls ---------------------------------

TRAVERSALS = [
    b"/v1/secret/data/a/../b",
    b"/v1/secret/data/../x",
    b"/v1/secret/data/a/./b",
    b"/v1/secret/data/a/..",
    b"/v1/secret/data/a/.",
    b"/v1/sys/../secret/data/x",
    b"/v1/acme/../secret/data/x",
    b"/v1/../v1/secret/data/x",
    # A-2: encoded dots, overlong UTF-8, double encoding
    b"/v1/secret/data/%2e%2e/x",
    b"/v1/secret/data/%2E%2e/x",
    b"/v1/secret/data/.%2e/x",
    b"/v1/secret/data/%2e./x",
    b"/v1/secret/data/a/%2e",
    b"/v1/secret/data/%c0%ae%c0%ae/x",
    b"/v1/secret/data/%252e%252e/x",
    b"/v1/secret/data/%25",
    # A-3: encoded separators
    b"/v1/secret/data/a%2Fb",
    b"/v1/secret/data/a%2fb",
    b"/v1/secret%2Fdata/x",
    # A-4: backslashes and absolute segments
    b"/v1/secret/data/a\\..\\b",
    b"/v1/secret/data/a%5cb",
    b"/v1/secret/data/a%5C..%5Cb",
    b"/v1/secret/data//etc/passwd",
    # A-5: NUL, C0/C1 controls, DEL, line/paragraph separators, bidi overrides
    b"/v1/secret/data/a%00b",
    b"/v1/secret/data/a%00",
    b"/v1/secret/data/a%01b",
    b"/v1/secret/data/a%0ab",
    b"/v1/secret/data/a%0d%0ab",
    b"/v1/secret/data/a%7fb",
    b"/v1/secret/data/a%c2%85b",
    b"/v1/secret/data/a%e2%80%a8b",
    b"/v1/secret/data/a%e2%80%aeb",
    b"/v1/secret/data/a%e2%80%8bb",
    b"/v1/secret/data/a%ef%bb%bfb",
    b"/v1/secret/data/a%20b",
    b"/v1/secret/data/a%09b",
    b"/v1/secret/data/a%ffb",
    b"/v1/secret/data/a%zzb",
    b"/v1/secret/data/a%2",
]


@pytest.mark.parametrize("raw_path", TRAVERSALS, ids=lambda p: p.decode("latin-1"))
@pytest.mark.parametrize("method", ["GET", "POST", "LIST", "DELETE"])
async def test_traversal_encoding_and_control_paths_are_400(
    app: TenantVaultApp, vault: Vault, acme: str, raw_path: bytes, method: str
) -> None:
    body = b'{"data":{"x":"y"}}' if method == "POST" else b""
    reply = await raw_call(app, method, raw_path, headers=_token_headers(acme), body=body)
    assert reply.status == 400, reply.body
    assert _is_vault_error(reply.body)
    await _nothing_stored(vault, acme)


@pytest.mark.parametrize("raw_path", [b"/v1/secret/data/a/../b", b"/v1/secret/data/%2e%2e"])
async def test_traversal_is_refused_before_authentication(
    app: TenantVaultApp, raw_path: bytes
) -> None:
    # 400 even without a token: the path is judged before anything else, never resolved.
    reply = await raw_call(app, "GET", raw_path)
    assert reply.status == 400


# -- A-6, A-7, A-9, A-11: tenant ids and names -------------------------------------------

BAD_TENANTS = [
    "%ef%bd%94%ef%bd%85%ef%bd%8e%ef%bd%81%ef%bd%8e%ef%bd%94",  # fullwidth "tenant" (NFKC)
    "%e2%84%aacme",  # Kelvin sign K
    "%c4%b0acme",  # dotted capital I
    "stra%c3%9fe",  # sharp s
    "ac%e2%80%8bme",  # zero-width space
    "%ef%bb%bfacme",  # BOM / zero-width no-break space
    "%d0%b0cme",  # Cyrillic a
    "Acme",
    "ACME",
    "%20acme",
    "acme%20",
    "ac%09me",
    # A-9 reserved names
    "root",
    "sys",
    "auth",
    "audit",
    "identity",
    "cubbyhole",
    "default",
    "health",
    "metrics",
    ".",
    "..",
    # A-11 glob and meta characters
    "%2a",
    "%2b",
    "a%2a",
    "acme%2b",
    "%3f",
    "%5b%5d",
    "%7b%7d",
    "%23",
    "%3b",
    "%25",
    "a%2cb",
    "-acme",
    "x" * 64,
]


@pytest.mark.parametrize("name", BAD_TENANTS)
async def test_bad_tenant_ids_are_400_and_never_created(
    app: TenantVaultApp, vault: Vault, root_token: str, name: str
) -> None:
    headers = [(b"x-vault-token", root_token.encode())]
    reply = await raw_call(app, "POST", b"/v1/sys/namespaces/" + name.encode(), headers=headers)
    assert reply.status == 400, reply.body
    listed = await vault.root("LIST", "sys/namespaces")
    assert listed.status_code == 404


@pytest.mark.parametrize("header", ["Acme", " acme", "acme ", "ac me", "*", "acme*", "ac%2fme"])
async def test_root_with_a_bad_namespace_header_is_400(vault: Vault, header: str) -> None:
    await vault.create_tenant("acme")
    response = await vault.root("GET", "secret/data/x", namespace=header)
    assert response.status_code == 400


async def test_non_nfc_path_never_aliases_the_nfc_spelling(
    app: TenantVaultApp, vault: Vault, acme: str
) -> None:
    await vault.put("acme", "caf\u00e9", {"v": "nfc"}, token=acme)
    decomposed = await raw_call(
        app, "GET", b"/v1/secret/data/cafe%cc%81", headers=_token_headers(acme)
    )
    assert decomposed.status == 400
    composed = await raw_call(
        app, "GET", b"/v1/secret/data/caf%c3%a9", headers=_token_headers(acme)
    )
    assert composed.status == 200


@pytest.mark.parametrize("name", ["%20root", "root%20", "a%2ab", "p%2b", "%2e%2e"])
async def test_bad_policy_names_are_400(
    app: TenantVaultApp, vault: Vault, root_token: str, name: str
) -> None:
    await vault.create_tenant("acme")
    reply = await raw_call(
        app,
        "PUT",
        b"/v1/sys/policies/acl/" + name.encode(),
        headers=[
            (b"x-vault-token", root_token.encode()),
            (b"x-vault-namespace", b"acme"),
            (b"content-type", b"application/json"),
        ],
        body=b'{"policy":"path \\"secret/*\\" { capabilities = [\\"read\\"] }"}',
    )
    assert reply.status == 400


async def test_policy_named_like_root_in_another_case_grants_nothing_special(vault: Vault) -> None:
    await vault.create_tenant("acme")
    response = await vault.root(
        "PUT",
        "sys/policies/acl/ROOT",
        namespace="acme",
        json={"policy": 'path "secret/data/x" { capabilities = ["read"] }'},
    )
    if response.status_code == 204:
        token = (await vault.create_token("acme", ["ROOT"]))["client_token"]
        write = await vault.request("POST", "secret/data/y", token=token, json={"data": {"a": "b"}})
        assert write.status_code == 403
        other = await vault.request("POST", "sys/namespaces/zed", token=token)
        assert other.status_code in (400, 403)
    else:
        assert response.status_code == 400


# -- A-8 and A-10: lengths and empty segments ----------------------------------------------


@pytest.mark.parametrize("size", [4 * 1024, 64 * 1024, 1024 * 1024])
async def test_over_long_paths_are_414(app: TenantVaultApp, acme: str, size: int) -> None:
    raw = b"/v1/secret/data/" + b"a/" * (size // 2)
    reply = await raw_call(app, "GET", raw, headers=_token_headers(acme))
    assert reply.status == 414
    assert _is_vault_error(reply.body)


async def test_many_segments_and_long_keys_are_400(app: TenantVaultApp, acme: str) -> None:
    thousand = b"/v1/secret/data/" + b"/".join([b"a"] * 1000)
    assert (await raw_call(app, "GET", thousand, headers=_token_headers(acme))).status == 400
    long_key = b"/v1/secret/data/" + b"k" * 256
    assert (await raw_call(app, "GET", long_key, headers=_token_headers(acme))).status == 400
    long_tenant = b"/v1/sys/namespaces/" + b"t" * 64
    assert (await raw_call(app, "GET", long_tenant, headers=_token_headers(acme))).status == 400


@pytest.mark.parametrize(
    "raw_path",
    [b"/v1/secret/data/a//b", b"/v1//secret/data/x", b"/v1/secret//data/x", b"/v1/secret/data/a/"],
)
async def test_empty_segments_are_400_and_a_write_to_a_dir_creates_nothing(
    app: TenantVaultApp, vault: Vault, acme: str, raw_path: bytes
) -> None:
    reply = await raw_call(
        app, "POST", raw_path, body=b'{"data":{"x":"y"}}', headers=_token_headers(acme)
    )
    assert reply.status == 400
    await _nothing_stored(vault, acme)


# -- A-12, A-13: policy semantics and late tenants -----------------------------------------


async def test_deny_beats_list_for_a_listing_of_the_denied_directory(vault: Vault) -> None:
    await vault.create_tenant("acme")
    await vault.write_policy(
        "acme",
        "p",
        """
        path "secret/metadata/*" { capabilities = ["list", "read"] }
        path "secret/metadata/private/*" { capabilities = ["deny"] }
    """,
    )
    token = (await vault.create_token("acme", ["p"]))["client_token"]
    await vault.put("acme", "private/key", {"v": canary()})
    await vault.put("acme", "public/key", {"v": "x"})
    assert (await vault.request("LIST", "secret/metadata/public", token=token)).status_code == 200
    denied = await vault.request("LIST", "secret/metadata/private", token=token)
    assert (denied.status_code, denied.content) == (403, DENIED)


async def test_a_tenant_created_after_a_policy_is_not_covered_by_it(vault: Vault) -> None:
    await vault.write_policy(None, "wide", 'path "*" { capabilities = ["read", "list"] }')
    token = (await vault.create_token(None, ["wide"]))["client_token"]
    await vault.create_tenant("late")
    await vault.put("late", "x", {"v": canary()})
    for path in ("late/secret/data/x", "secret/data/x"):
        response = await vault.request(
            "GET", path, token=token, namespace=None if path.startswith("late") else "late"
        )
        assert (response.status_code, response.content) == (403, DENIED)


# -- A-14, A-16: tenant sources and request targets -----------------------------------------


async def test_only_the_tokens_binding_decides_the_tenant(vault: Vault, acme: str) -> None:
    await vault.create_tenant("acme2")
    await vault.put("acme", "x", {"v": "mine"}, token=acme)
    response = await vault.request(
        "GET",
        "secret/data/x",
        token=acme,
        headers={"X-Tenant": "acme2", "Host": "acme2.tenantvault.test"},
    )
    assert response.json()["data"]["data"] == {"v": "mine"}
    body_tenant = await vault.request(
        "POST", "secret/data/y", token=acme, json={"tenant": "acme2", "data": {"v": "z"}}
    )
    # A "tenant" in the body is just an unknown field: the write lands in the token's tenant.
    assert body_tenant.status_code == 200
    assert (await vault.root("GET", "secret/data/y", namespace="acme")).status_code == 200
    assert (await vault.root("GET", "secret/data/y", namespace="acme2")).status_code == 404


@pytest.mark.parametrize("raw_path", [b"*", b"v1/secret/data/x", b"", b"http://evil/v1/x"])
async def test_request_targets_not_starting_with_a_slash_are_400(
    app: TenantVaultApp, raw_path: bytes
) -> None:
    reply = await raw_call(app, "GET", raw_path, path="")
    assert reply.status == 400


async def test_paths_outside_v1_are_404_with_empty_errors(app: TenantVaultApp) -> None:
    for raw_path in (b"/", b"/v1", b"/v2/secret/data/x", b"/V1/secret/data/x", b"/ui/"):
        reply = await raw_call(app, "GET", raw_path)
        assert (reply.status, reply.body) == (404, b'{"errors":[]}')


# -- A-15: credentials in the query string -------------------------------------------------


@pytest.mark.parametrize(
    "name", ["token", "X-Vault-Token", "x_vault_token", "client_token", "TOKEN", "access_token"]
)
async def test_a_token_in_the_query_string_is_400_and_never_logged(
    vault: Vault, acme: str, logs: pytest.LogCaptureFixture, name: str
) -> None:
    response = await vault.request("GET", "secret/data/x", params={name: acme})
    assert response.status_code == 400
    with_header = await vault.request("GET", "secret/data/x", token=acme, params={name: acme})
    assert with_header.status_code == 400
    assert_no_canary([logs.text, response.text, with_header.text], acme)


async def test_query_strings_never_reach_the_access_log(
    vault: Vault, acme: str, logs: pytest.LogCaptureFixture
) -> None:
    marker = canary("query-")
    response = await vault.request("GET", "secret/data/x", token=acme, params={"version": marker})
    assert response.status_code == 400
    assert "GET /v1/secret/data/x 400" in logs.text
    assert_no_canary([logs.text, response.text], marker, acme)


@pytest.mark.parametrize(
    "query",
    [
        b"a=1&a=2",
        b"%ff=1",
        b"a=%ff",
        b"a=%00",
        b"bad name=1",
        b"&".join(b"k%d=1" % i for i in range(40)),
    ],
)
async def test_ambiguous_or_malformed_query_strings_are_400(
    app: TenantVaultApp, acme: str, query: bytes
) -> None:
    reply = await raw_call(
        app, "GET", b"/v1/secret/data/x", query_string=query, headers=_token_headers(acme)
    )
    assert reply.status == 400


async def test_an_over_long_query_string_is_414(app: TenantVaultApp, acme: str) -> None:
    reply = await raw_call(
        app,
        "GET",
        b"/v1/secret/data/x",
        query_string=b"a=" + b"1" * 5000,
        headers=_token_headers(acme),
    )
    assert reply.status == 414


# -- P-1: body size -----------------------------------------------------------------------


@pytest.fixture
async def small_app(root_token: str) -> AsyncIterator[TenantVaultApp]:
    settings = ServerSettings(dev=True, dev_root_token=root_token, max_request_bytes=1024)
    async with create_app(settings) as started:
        yield started


async def test_content_length_over_the_limit_is_413_before_reading(
    small_app: TenantVaultApp, root_token: str
) -> None:
    read: list[bool] = []

    async def receive() -> dict[str, Any]:
        read.append(True)
        raise AssertionError("the body must not be read")

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/secret/data/x",
        "raw_path": b"/v1/secret/data/x",
        "query_string": b"",
        "headers": [(b"x-vault-token", root_token.encode()), (b"content-length", b"100000000")],
    }
    await small_app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert not read
    assert _is_vault_error(sent[1]["body"])


async def test_chunked_body_over_the_limit_is_413_while_streaming(
    small_app: TenantVaultApp, root_token: str
) -> None:
    chunks = [b'{"data":{"x":"' + b"a" * 400] + [b"a" * 400] * 1000
    reply = await raw_call(
        small_app,
        "POST",
        b"/v1/sys/namespaces/acme",
        body=chunks,
        headers=[(b"x-vault-token", root_token.encode())],
    )
    assert reply.status == 413
    # 413 after ~3 chunks: the rest of the 400 KB is never read.


async def test_body_at_the_limit_is_accepted(small_app: TenantVaultApp, root_token: str) -> None:
    transport = httpx.ASGITransport(app=small_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        headers = {"X-Vault-Token": root_token, **JSON}
        body = b'{"custom_metadata":{"a":"' + b"x" * 990 + b'"}}'
        assert len(body) <= 1024
        ok = await client.post("/v1/sys/namespaces/acme", content=body, headers=headers)
        assert ok.status_code == 200
        over = await client.post(
            "/v1/sys/namespaces/beta", content=body + b" " * 10, headers=headers
        )
        assert over.status_code == 413


async def test_fifty_oversized_requests_in_parallel(
    small_app: TenantVaultApp, root_token: str
) -> None:
    async def one() -> int:
        chunks = [b"a" * 512] * 100
        reply = await raw_call(
            small_app,
            "POST",
            b"/v1/secret/data/x",
            body=chunks,
            headers=[(b"x-vault-token", root_token.encode())],
        )
        return reply.status

    assert set(await asyncio.gather(*(one() for _ in range(50)))) == {413}


# -- P-3 … P-7: JSON payloads ---------------------------------------------------------------

BAD_JSON = {
    "100k keys": orjson.dumps({"data": {f"k{i}": 1 for i in range(100_000)}}),
    "100k strings": orjson.dumps({"data": {"v": ["s"] * 100_000}}),
    "10k deep": b'{"data":{"v":' + b"[" * 10_000 + b"]" * 10_000 + b"}}",
    "65 deep": b'{"data":{"v":' + b"[" * 65 + b"]" * 65 + b"}}",
    "duplicate cas": b'{"options":{"cas":1,"cas":0},"data":{"a":"b"}}',
    "duplicate data": b'{"data":{"a":"b"},"data":{"a":"c"}}',
    "duplicate nested": b'{"data":{"a":"b","a":"b"}}',
    "5000 digits": b'{"data":{"n":' + b"9" * 5000 + b"}}",
    "2**64": b'{"data":{"n":18446744073709551616}}',
    "2**63": b'{"data":{"n":9223372036854775808}}',
    "-2**63-1": b'{"data":{"n":-9223372036854775809}}',
    "NaN": b'{"data":{"n":NaN}}',
    "Infinity": b'{"data":{"n":Infinity}}',
    "-Infinity": b'{"data":{"n":-Infinity}}',
    "1e999": b'{"data":{"n":1e999}}',
    "invalid utf-8": b'{"data":{"v":"\xff\xfe"}}',
    "overlong utf-8": b'{"data":{"v":"\xc0\xae"}}',
    "lone surrogate": b'{"data":{"v":"\\ud800"}}',
    "BOM": b'\xef\xbb\xbf{"data":{"v":"x"}}',
    "UTF-16": '{"data":{"v":"x"}}'.encode("utf-16"),
    "UTF-16LE": '{"data":{"v":"x"}}'.encode("utf-16-le"),
    "UTF-32": '{"data":{"v":"x"}}'.encode("utf-32"),
    "top-level list": b'[{"data":{}}]',
    "top-level string": b'"data"',
    "trailing garbage": b'{"data":{}} x',
    "two documents": b'{"data":{}}{"data":{}}',
    "truncated": b'{"data":{"v":"x"',
    "single quotes": b"{'data':{}}",
    "comment": b'{"data":{} /* c */}',
    "trailing comma": b'{"data":{"a":"b",}}',
}


@pytest.mark.parametrize("body", BAD_JSON.values(), ids=BAD_JSON.keys())
async def test_hostile_json_is_400_and_stores_nothing(vault: Vault, acme: str, body: bytes) -> None:
    response = await vault.request(
        "POST", "secret/data/x", token=acme, namespace="acme", content=body, headers=JSON
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0].startswith("failed to parse JSON input")
    await _nothing_stored(vault, acme)


async def test_a_null_body_means_no_fields_as_in_openbao(vault: Vault, acme: str) -> None:
    """`bao write -f` sends `null`: it reads as an empty body, so a KV write still says why."""
    response = await vault.request(
        "POST", "secret/data/x", token=acme, namespace="acme", content=b"null", headers=JSON
    )
    assert response.status_code == 400
    assert response.json()["errors"] == ["no data provided"]
    await _nothing_stored(vault, acme)


WRONG_TYPES = [
    {"data": "CANARY"},
    {"data": ["CANARY"]},
    {"data": None},
    {"data": 1},
    {"data": True},
    {"data": {"a": "b"}, "options": ["CANARY"]},
    {"data": {"a": "b"}, "options": "CANARY"},
    {"data": {"a": "b"}, "options": {"cas": "CANARY"}},
    {"data": {"a": "b"}, "options": {"cas": True}},
    {"data": {"a": "b"}, "options": {"cas": -1}},
    {"data": {"a": "b"}, "options": {"cas": 1.5}},
    {"data": {"a": "b"}, "options": {"cas": {"v": "CANARY"}}},
]


@pytest.mark.parametrize("template", WRONG_TYPES, ids=lambda t: orjson.dumps(t).decode())
async def test_wrong_types_are_400_without_echoing_the_value(
    vault: Vault, acme: str, logs: pytest.LogCaptureFixture, template: dict[str, Any]
) -> None:
    secret = canary("p7-")
    body = orjson.dumps(template).replace(b"CANARY", secret.encode())
    response = await vault.request(
        "POST", "secret/data/x", token=acme, namespace="acme", content=body, headers=JSON
    )
    assert response.status_code == 400
    await _nothing_stored(vault, acme)
    assert_no_canary([response.text, logs.text], secret)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("secret/metadata/x", {"custom_metadata": {"k": {"nested": "CANARY"}}}),
        ("secret/metadata/x", {"custom_metadata": "CANARY"}),
        ("secret/metadata/x", {"max_versions": "CANARY"}),
        ("secret/metadata/x", {"delete_version_after": "CANARY"}),
        ("secret/config", {"cas_required": "CANARY"}),
        ("sys/policies/acl/p", {"policy": {"CANARY": 1}}),
        # Not here: a policy's own path pattern, which the policy parser quotes back to the
        # policy's author in its error message (a pattern, not a secret value).
        ("auth/token/create", {"policies": [{"CANARY": 1}]}),
        ("auth/token/create", {"ttl": "CANARY"}),
        ("auth/token/create", {"meta": {"k": ["CANARY"]}}),
        ("auth/token/create", {"num_uses": "CANARY"}),
        ("sys/capabilities-self", {"paths": {"CANARY": 1}}),
        ("transit/encrypt/k", {"plaintext": "CANARY is not base64"}),
        ("transit/encrypt/k", {"plaintext": "aGk=", "context": "CANARY"}),
        ("transit/decrypt/k", {"ciphertext": "CANARY"}),
        ("transit/decrypt/k", {"ciphertext": "vault:v1:CANARY"}),
        ("transit/keys/k2", {"type": "CANARY"}),
        ("transit/keys/k", {"auto_rotate_period": "CANARY"}),
        ("transit/hmac/k", {"input": "CANARY"}),
        ("transit/hash", {"input": "aGk=", "algorithm": "CANARY"}),
        ("transit/random", {"format": "CANARY"}),
    ],
)
async def test_wrong_types_elsewhere_are_4xx_without_echoing_the_value(
    vault: Vault, acme: str, logs: pytest.LogCaptureFixture, path: str, body: dict[str, Any]
) -> None:
    secret = canary("p7-")
    content = orjson.dumps(body).replace(b"CANARY", secret.encode())
    token = acme
    if path.startswith("transit/"):
        # The tenant admin has no transit policy: act as root in the tenant, so that the
        # value reaches the transit engine's own validation.
        token = vault.root_token
        await vault.root("POST", "transit/keys/k", namespace="acme", json={})
    response = await vault.request(
        "POST", path, token=token, namespace="acme", content=content, headers=JSON
    )
    assert 400 <= response.status_code < 500
    assert_no_canary([response.text, logs.text], secret)


SECRET_VALUES = {
    "empty object": {},
    "empty string": {"v": ""},
    "1 MiB": {"v": "x" * (1 << 20)},
    "NUL and newline": {"v": "a\u0000b\nc\r\n"},
    "non-BMP emoji": {"v": "\U0001f511\U0001f510"},
    "base64": {"v": "Q0FOQVJZLWJhc2U2NA=="},
    "nested": {"a": {"b": [1, 2.5, True, None, "x"]}},
    "int64 extremes": {"max": 2**63 - 1, "min": -(2**63)},
    "unicode keys": {"cl\u00e9": "v\u00e4lue", "\u2603": "snow"},
    "colon and quotes": {"url": 'postgres://u:p@h:5432/db?x="y"', "k:": ":v"},
}


@pytest.mark.parametrize("data", SECRET_VALUES.values(), ids=SECRET_VALUES.keys())
async def test_secret_values_round_trip_byte_exactly(
    vault: Vault, acme: str, data: dict[str, Any]
) -> None:
    await vault.put("acme", "p8", data, token=acme)
    response = await vault.request("GET", "secret/data/p8", token=acme)
    assert response.status_code == 200
    assert response.json()["data"]["data"] == data
    assert orjson.dumps(response.json()["data"]["data"]) == orjson.dumps(data)


# -- P-9: content types (as in OpenBao: a form if labelled one, else JSON whatever the label) ---

FORM = "application/x-www-form-urlencoded"

ANY_LABEL = [
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/json; charset=utf-16",
    "application/jsonx",
    "application/merge-patch+json",
]


@pytest.mark.parametrize("content_type", [c for c in ANY_LABEL if c != FORM])
async def test_a_body_not_labelled_a_form_is_json_or_a_400(
    vault: Vault, acme: str, content_type: str
) -> None:
    """As OpenBao: only a form label makes a body a form; any other body is parsed as JSON
    (multipart included), so one that is not JSON is 400 and nothing is written."""
    for body in (b"data=x&options=y", b"--x\r\n\r\nbody\r\n--x--", b"data[a]=b"):
        response = await vault.request(
            "POST",
            "secret/data/x",
            token=acme,
            content=body,
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 400
        assert response.json() == {"errors": ["failed to parse JSON input: not valid JSON"]}
    await _nothing_stored(vault, acme)


@pytest.mark.parametrize("content_type", ANY_LABEL)
async def test_a_json_body_is_read_as_json_whatever_its_content_type(
    vault: Vault, acme: str, content_type: str
) -> None:
    """What `curl -d '{…}'` sends (labelled a form): Vault reads the JSON, so do we."""
    response = await vault.request(
        "POST",
        "secret/data/x",
        token=acme,
        content=b' \n{"data":{"a":"b"}}',
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 200, response.text
    read = await vault.request("GET", "secret/data/x", token=acme, namespace="acme")
    assert read.json()["data"]["data"] == {"a": "b"}


@pytest.mark.parametrize("content_type", ANY_LABEL)
async def test_a_json_body_under_any_label_is_still_parsed_strictly(
    vault: Vault, acme: str, content_type: str
) -> None:
    """The label never loosens the parser: duplicate keys and bad JSON stay 400."""
    for body in (b'{"data":{"a":"b"},"data":{}}', b'{"data":{"a":"b"}', b"{data=x}"):
        response = await vault.request(
            "POST",
            "secret/data/x",
            token=acme,
            content=body,
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 400
        assert _is_vault_error(response.content)
    await _nothing_stored(vault, acme)


@pytest.mark.parametrize("content_type", [*ANY_LABEL, "application/json"])
async def test_an_empty_body_under_any_label_is_an_empty_request(
    vault: Vault, acme: str, content_type: str
) -> None:
    """node-vault's `tokenRenewSelf()` sends an empty body labelled as a form."""
    response = await vault.request(
        "POST",
        "auth/token/renew-self",
        token=acme,
        namespace="acme",
        content=b"",
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON; charset=UTF-8",
    ],
)
async def test_json_content_types_are_accepted(
    vault: Vault, acme: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await vault.request(
        "POST", "secret/data/x", token=acme, content=b'{"data":{"a":"b"}}', headers=headers
    )
    assert response.status_code == 200


async def test_the_415_message_never_echoes_a_long_or_odd_content_type(
    app: TenantVaultApp, acme: str
) -> None:
    secret = canary()
    odd = b"application/" + secret.encode() + b"\x01\xff" + b"x" * 500
    reply = await raw_call(
        app,
        "PATCH",
        b"/v1/secret/data/x",
        body=b"{}",
        headers=_token_headers(acme, (b"content-type", odd)),
    )
    assert reply.status == 415
    message = reply.json()["errors"][0]
    assert len(message) < 200
    assert message.isascii()
    assert message.isprintable()


# -- P-10: headers ----------------------------------------------------------------------------


async def test_too_many_or_too_large_headers_are_431(app: TenantVaultApp, acme: str) -> None:
    many = _token_headers(acme, *((b"x-h%d" % i, b"v") for i in range(1000)))
    assert (await raw_call(app, "GET", b"/v1/secret/data/x", headers=many)).status == 431
    big = _token_headers(acme, (b"x-big", b"v" * 100 * 1024))
    assert (await raw_call(app, "GET", b"/v1/secret/data/x", headers=big)).status == 431


@pytest.mark.parametrize(
    "name",
    [b"x-vault-token", b"x-vault-namespace", b"content-type", b"authorization", b"content-length"],
)
async def test_duplicate_meaningful_headers_are_400(
    app: TenantVaultApp, acme: str, name: bytes
) -> None:
    value = {
        b"x-vault-token": acme.encode(),
        b"x-vault-namespace": b"acme",
        b"content-type": b"application/json",
        b"authorization": b"Bearer " + acme.encode(),
        b"content-length": b"2",
    }[name]
    headers = [(name, value), (name, value), (b"x-vault-token", acme.encode())]
    if name == b"x-vault-token":
        headers.pop()
    reply = await raw_call(app, "POST", b"/v1/secret/data/x", headers=headers, body=b"{}")
    assert reply.status == 400


# -- T-1 and T-3: token forms -------------------------------------------------------------------


async def test_malformed_tokens_all_get_the_same_403(
    app: TenantVaultApp, vault: Vault, acme: str, logs: pytest.LogCaptureFixture
) -> None:
    variants: list[list[tuple[bytes, bytes]]] = [
        [],
        [(b"x-vault-token", b"")],
        [(b"authorization", b"Bearer ")],
        [(b"authorization", b"Bearer")],
        [(b"authorization", b"bearer " + acme.encode())],
        [(b"authorization", b"Basic " + acme.encode())],
        [(b"x-vault-token", b"t" * 10_000)],
        [(b"x-vault-token", "t\u00e9st".encode("latin-1"))],
        [(b"x-vault-token", "t\u00e9st".encode())],
        [(b"x-vault-token", b"a\x00b")],
        [(b"x-vault-token", b" " + acme.encode())],
        [(b"x-vault-token", acme.encode() + b" ")],
        [(b"x-vault-token", b"\t" + acme.encode())],
        [(b"x-vault-token", acme.upper().encode())],
        [(b"x-vault-token", acme.lower().encode())],
        [(b"x-vault-token", acme[:-1].encode())],
        [(b"authorization", b"Bearer  " + acme.encode())],
    ]
    for headers in variants:
        for path in (b"/v1/secret/data/x", b"/v1/secret/data/missing", b"/v1/sys/mounts"):
            reply = await raw_call(
                app, "GET", path, headers=[*headers, (b"x-vault-namespace", b"acme")]
            )
            assert (reply.status, reply.body) == (403, DENIED), headers
    assert_no_canary([logs.text], acme)


async def test_two_different_tokens_are_400_and_never_combine(
    vault: Vault, acme: str, root_token: str
) -> None:
    weak = (await vault.create_token("acme", []))["client_token"]
    for token, bearer in ((weak, root_token), (root_token, weak), (acme, "bogus"), ("bogus", acme)):
        response = await vault.request(
            "POST", "sys/namespaces/zed", token=token, headers={"Authorization": f"Bearer {bearer}"}
        )
        assert response.status_code == 400
        assert_no_canary([response.text], root_token, weak, acme)
    assert (await vault.root("GET", "sys/namespaces/zed")).status_code == 404


# -- the whole file's canaries ------------------------------------------------------------------


async def test_no_canary_in_any_response_or_log_of_a_mixed_session(
    vault: Vault, acme: str, root_token: str, logs: pytest.LogCaptureFixture
) -> None:
    secret = canary("mixed-")
    await vault.put("acme", "k", {"v": secret}, token=acme)
    start = len(vault.seen.texts)  # earlier responses hand out tokens, as they should
    for method, path, body, headers in (
        ("POST", "secret/data/k", b'{"data":{"v":"' + secret.encode() + b'"},"x":NaN}', JSON),
        (
            "POST",
            "secret/data/k",
            b"data[v]=" + secret.encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        ("PATCH", "secret/data/k", b'{"data":{"v":"' + secret.encode() + b'"}}', JSON),
        ("PATCH", "secret/data/k", b'{"data":' + secret.encode() + b"}", MERGE_PATCH),
        ("POST", "secret/metadata/k", b'{"custom_metadata":{"a":' + secret.encode() + b"}}", JSON),
    ):
        response = await vault.request(method, path, token=acme, content=body, headers=headers)
        assert 400 <= response.status_code < 500
    bad_token = await vault.request("GET", "secret/data/k", token=secret)
    assert bad_token.status_code == 403
    assert_no_canary([logs.text, *vault.seen.texts[start:]], secret, acme, root_token)
