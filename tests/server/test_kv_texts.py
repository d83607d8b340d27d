"""KV v2 error texts as OpenBao 2.7.2 words them (clients and scripts match on them): bad
check-and-set values, custom_metadata validation, writes to a directory path, and paths
outside the KV v2 API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import MERGE_PATCH, Vault

pytestmark = pytest.mark.usefixtures("app")

MISMATCH = "check-and-set parameter did not match the current version"


@pytest.fixture
async def acme(vault: Vault) -> Vault:
    await vault.create_tenant("acme")
    return vault


async def _post(vault: Vault, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    reply = await vault.root("POST", path, namespace="acme", json=body)
    return reply.status_code, (reply.json() if reply.content.strip() else None)


@pytest.mark.parametrize(
    ("cas", "error"),
    [
        ("x", "error parsing check-and-set parameter"),
        (1.5, "error parsing check-and-set parameter"),
        ("1", "error parsing check-and-set parameter"),
        (True, "error parsing check-and-set parameter"),
        (-1, MISMATCH),
        (5, MISMATCH),
    ],
)
async def test_bad_check_and_set_values(acme: Vault, cas: Any, error: str) -> None:
    body = {"data": {"k": "v"}, "options": {"cas": cas}}
    assert await _post(acme, "secret/data/a", body) == (400, {"errors": [error]})
    assert (await acme.root("GET", "secret/data/a", namespace="acme")).status_code == 404


def _one(message: str) -> dict[str, list[str]]:
    return {"errors": [f"1 error occurred:\n\t* custom_metadata validation failed: {message}\n\n"]}


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"": "v"}, _one('length of key "" is 0 but must be 0 < len(key) <= 128')),
        ({"k": ""}, _one('length of value for key "k" is 0 but must be 0 < len(value) <= 512')),
        (
            {"é" * 65: "v"},
            _one(f'length of key "{"é" * 65}" is 130 but must be 0 < len(key) <= 128'),
        ),
        ({"a\x01": "v"}, _one('key "a\\x01" contains unprintable characters')),
        ({"a": "v\x01"}, _one('value for key "a" contains unprintable characters')),
        (
            {f"k{i}": "v" for i in range(65)},
            _one("payload must contain at most 64 keys, provided 65"),
        ),
        (
            {"": ""},
            {
                "errors": [
                    "2 errors occurred:\n"
                    '\t* custom_metadata validation failed: length of key "" is 0 but must be '
                    "0 < len(key) <= 128\n"
                    '\t* custom_metadata validation failed: length of value for key "" is 0 '
                    "but must be 0 < len(value) <= 512\n\n"
                ]
            },
        ),
    ],
)
async def test_custom_metadata_refusals_list_every_problem(
    acme: Vault, metadata: dict[str, str], expected: dict[str, list[str]]
) -> None:
    assert await _post(acme, "secret/metadata/m", {"custom_metadata": metadata}) == (
        400,
        expected,
    )


async def test_custom_metadata_error_never_shows_a_value(acme: Vault) -> None:
    secret_like = "v" * 513
    status, body = await _post(acme, "secret/metadata/m", {"custom_metadata": {"k": secret_like}})
    assert status == 400
    assert secret_like not in body["errors"][0]


@pytest.mark.parametrize("path", ["secret/data/", "secret/data/a/", "secret/delete/"])
async def test_a_write_to_a_directory_path_is_refused_in_openbaos_words(
    acme: Vault, path: str
) -> None:
    assert await _post(acme, path, {"data": {"a": "b"}, "versions": [1]}) == (
        400,
        {"errors": ["cannot write to a path ending in '/'"]},
    )


@pytest.mark.parametrize(
    ("method", "command"),
    [("GET", "get"), ("POST", "put"), ("DELETE", "delete"), ("LIST", "list"), ("PATCH", "patch")],
)
async def test_a_path_outside_the_kv2_api_is_404_with_openbaos_warning(
    acme: Vault, method: str, command: str
) -> None:
    headers = MERGE_PATCH if method == "PATCH" else None
    reply = await acme.root(
        method, "secret/nope/a", namespace="acme", json={"a": "b"}, headers=headers
    )
    assert reply.status_code == 404
    body = reply.json()
    assert body["data"] is None
    assert body["warnings"] == [
        "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate "
        f"API endpoints to use. If using the OpenBao CLI, use 'bao kv {command}' for this "
        "operation."
    ]
