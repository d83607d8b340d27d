"""KV v2 over HTTP: every operation a Vault client uses, with Vault's statuses and shapes."""

from __future__ import annotations

from typing import TypedDict

import httpx
import pytest

from tests.conftest import canary
from tests.server.conftest import MERGE_PATCH, Vault

pytestmark = pytest.mark.usefixtures("app")


class _As(TypedDict):
    """Who a request is sent as: `Vault.request(..., **as_acme)`."""

    token: str
    namespace: str


@pytest.fixture
async def acme(vault: Vault) -> str:
    """Tenant `acme` and a token of its administrator."""
    return await vault.tenant_admin("acme")


async def test_write_then_read_returns_the_data_and_version_metadata(
    vault: Vault, acme: str
) -> None:
    secret = canary("kv-")
    written = await vault.put("acme", "app/db", {"password": secret}, token=acme)
    assert written["version"] == 1
    assert set(written) == {
        "created_time",
        "custom_metadata",
        "deletion_time",
        "destroyed",
        "version",
    }
    response = await vault.request("GET", "secret/data/app/db", token=acme, namespace="acme")
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["data"] == {"password": secret}
    assert body["data"]["metadata"]["version"] == 1
    assert body["request_id"] == response.headers["x-request-id"]
    assert set(body) == {
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
    }
    assert response.headers["cache-control"] == "no-store"


async def test_read_of_an_older_version_by_query_parameter(vault: Vault, acme: str) -> None:
    await vault.put("acme", "app/db", {"v": "one"}, token=acme)
    await vault.put("acme", "app/db", {"v": "two"}, token=acme)
    response = await vault.request(
        "GET", "secret/data/app/db", token=acme, namespace="acme", params={"version": "1"}
    )
    assert response.json()["data"]["data"] == {"v": "one"}
    latest = await vault.request(
        "GET", "secret/data/app/db", token=acme, namespace="acme", params={"version": "0"}
    )
    assert latest.json()["data"]["data"] == {"v": "two"}
    bad = await vault.request(
        "GET", "secret/data/app/db", token=acme, namespace="acme", params={"version": "one"}
    )
    assert bad.status_code == 400


async def test_read_of_a_missing_key_is_404_with_empty_errors(vault: Vault, acme: str) -> None:
    response = await vault.request("GET", "secret/data/nope", token=acme, namespace="acme")
    assert response.status_code == 404
    assert response.json() == {"errors": []}


async def test_cas_mismatch_is_400_and_changes_nothing(vault: Vault, acme: str) -> None:
    await vault.put("acme", "app/db", {"v": "one"}, token=acme)
    conflict = await vault.request(
        "POST",
        "secret/data/app/db",
        token=acme,
        namespace="acme",
        json={"options": {"cas": 0}, "data": {"v": "two"}},
    )
    assert conflict.status_code == 400
    assert conflict.json() == {
        "errors": ["check-and-set parameter did not match the current version"]
    }
    ok = await vault.request(
        "POST",
        "secret/data/app/db",
        token=acme,
        namespace="acme",
        json={"options": {"cas": 1}, "data": {"v": "two"}},
    )
    assert ok.status_code == 200
    assert ok.json()["data"]["version"] == 2


async def test_cas_required_by_mount_config(vault: Vault, acme: str) -> None:
    configured = await vault.request(
        "POST",
        "secret/config",
        token=acme,
        namespace="acme",
        json={"cas_required": True, "max_versions": 3},
    )
    assert configured.status_code == 204
    assert configured.content == b""
    config = await vault.request("GET", "secret/config", token=acme, namespace="acme")
    expected = {"cas_required": True, "delete_version_after": "0s", "max_versions": 3}
    assert expected.items() <= config.json()["data"].items()
    missing = await vault.request(
        "POST", "secret/data/x", token=acme, namespace="acme", json={"data": {"a": "b"}}
    )
    assert missing.status_code == 400
    assert missing.json()["errors"] == ["check-and-set parameter required for this call"]


async def test_patch_merges_with_merge_patch_content_type(vault: Vault, acme: str) -> None:
    await vault.put("acme", "app/db", {"user": "u", "gone": "x", "keep": "k"}, token=acme)
    response = await vault.request(
        "PATCH",
        "secret/data/app/db",
        token=acme,
        namespace="acme",
        content=b'{"data":{"user":"v","gone":null}}',
        headers=MERGE_PATCH,
    )
    assert response.status_code == 200
    assert response.json()["data"]["version"] == 2
    read = await vault.request("GET", "secret/data/app/db", token=acme, namespace="acme")
    assert read.json()["data"]["data"] == {"user": "v", "keep": "k"}


async def test_patch_of_a_missing_key_is_404(vault: Vault, acme: str) -> None:
    response = await vault.request(
        "PATCH",
        "secret/data/none",
        token=acme,
        namespace="acme",
        content=b'{"data":{"a":"b"}}',
        headers=MERGE_PATCH,
    )
    assert response.status_code == 404


async def _patch(
    vault: Vault, acme: str, headers: dict[str, str], content: bytes
) -> httpx.Response:
    """PATCH acme's `secret/data/app/db` with `headers` and `content` as they are."""
    return await vault.request(
        "PATCH",
        "secret/data/app/db",
        token=acme,
        namespace="acme",
        content=content,
        headers=headers,
    )


@pytest.mark.parametrize("content_type", ["application/json", "text/plain; charset=utf-8"])
async def test_patch_without_merge_patch_type_is_415_with_vaults_message(
    vault: Vault, acme: str, content_type: str
) -> None:
    response = await _patch(vault, acme, {"Content-Type": content_type}, b'{"data":{}}')
    assert response.status_code == 415
    assert response.json() == {
        "errors": [
            "PATCH requires Content-Type of application/merge-patch+json, provided "
            + content_type.partition(";")[0]
        ]
    }


@pytest.mark.parametrize("content_type", [None, "", " ; charset=utf-8"])
async def test_patch_without_a_media_type_is_400_as_in_openbao(
    vault: Vault, acme: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    response = await _patch(vault, acme, headers, b'{"data":{}}')
    assert response.status_code == 400
    assert response.json() == {"errors": ["mime: no media type"]}


async def test_patch_takes_merge_patch_with_any_parameters(vault: Vault, acme: str) -> None:
    """OpenBao compares the media type only; the body is JSON (UTF-8) whatever the charset."""
    await vault.put("acme", "app/db", {"a": "1"}, token=acme)
    label = {"Content-Type": "Application/Merge-Patch+JSON; charset=latin1"}
    response = await _patch(vault, acme, label, b'{"data":{"b":"2"}}')
    assert response.status_code == 200, response.text
    read = await vault.request("GET", "secret/data/app/db", token=acme, namespace="acme")
    assert read.json()["data"]["data"] == {"a": "1", "b": "2"}


async def test_subkeys_show_structure_without_values(vault: Vault, acme: str) -> None:
    secret = canary()
    await vault.put("acme", "app/db", {"a": secret, "b": {"c": secret, "d": {"e": 1}}}, token=acme)
    response = await vault.request(
        "GET", "secret/subkeys/app/db", token=acme, namespace="acme", params={"depth": "2"}
    )
    assert response.status_code == 200
    assert response.json()["data"]["subkeys"] == {"a": None, "b": {"c": None, "d": None}}
    assert secret not in response.text


async def test_deleted_version_is_404_with_the_metadata_envelope(vault: Vault, acme: str) -> None:
    secret = canary()
    await vault.put("acme", "app/db", {"v": secret}, token=acme)
    deleted = await vault.request("DELETE", "secret/data/app/db", token=acme, namespace="acme")
    assert deleted.status_code == 204
    response = await vault.request("GET", "secret/data/app/db", token=acme, namespace="acme")
    assert response.status_code == 404
    body = response.json()
    assert body["data"]["data"] is None
    assert body["data"]["metadata"]["version"] == 1
    assert body["data"]["metadata"]["deletion_time"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert "errors" not in body
    assert secret not in response.text


async def test_delete_undelete_destroy_versions(vault: Vault, acme: str) -> None:
    await vault.put("acme", "app/db", {"v": "one"}, token=acme)
    await vault.put("acme", "app/db", {"v": "two"}, token=acme)
    ns: _As = {"token": acme, "namespace": "acme"}
    assert (
        await vault.request("POST", "secret/delete/app/db", json={"versions": [1]}, **ns)
    ).status_code == 204
    gone = await vault.request("GET", "secret/data/app/db", params={"version": "1"}, **ns)
    assert gone.status_code == 404
    assert (
        await vault.request("POST", "secret/undelete/app/db", json={"versions": [1]}, **ns)
    ).status_code == 204
    back = await vault.request("GET", "secret/data/app/db", params={"version": "1"}, **ns)
    assert back.json()["data"]["data"] == {"v": "one"}
    assert (
        await vault.request("PUT", "secret/destroy/app/db", json={"versions": [1]}, **ns)
    ).status_code == 204
    destroyed = await vault.request("GET", "secret/data/app/db", params={"version": "1"}, **ns)
    assert destroyed.status_code == 404
    assert destroyed.json()["data"]["metadata"]["destroyed"] is True
    empty = await vault.request("POST", "secret/undelete/app/db", json={"versions": []}, **ns)
    assert empty.status_code == 400


async def test_metadata_read_write_patch_delete(vault: Vault, acme: str) -> None:
    ns: _As = {"token": acme, "namespace": "acme"}
    await vault.put("acme", "app/db", {"v": "one"}, token=acme)
    written = await vault.request(
        "POST",
        "secret/metadata/app/db",
        **ns,
        json={"max_versions": 5, "custom_metadata": {"owner": "jdoe", "team": "x"}},
    )
    assert written.status_code == 204
    patched = await vault.request(
        "PATCH",
        "secret/metadata/app/db",
        **ns,
        headers=MERGE_PATCH,
        content=b'{"custom_metadata":{"team":null,"env":"prod"}}',
    )
    assert patched.status_code == 204
    meta = await vault.request("GET", "secret/metadata/app/db", **ns)
    data = meta.json()["data"]
    assert data["max_versions"] == 5
    assert data["current_version"] == 1
    assert data["custom_metadata"] == {"owner": "jdoe", "env": "prod"}
    assert set(data["versions"]) == {"1"}
    assert (await vault.request("DELETE", "secret/metadata/app/db", **ns)).status_code == 204
    assert (await vault.request("GET", "secret/metadata/app/db", **ns)).status_code == 404


async def test_list_with_list_verb_and_query_parameter(vault: Vault, acme: str) -> None:
    for path in ("app/db", "app/api", "app/deep/x", "other"):
        await vault.put("acme", path, {"v": "x"}, token=acme)
    ns: _As = {"token": acme, "namespace": "acme"}
    for response in (
        await vault.request("LIST", "secret/metadata/app", **ns),
        await vault.request("LIST", "secret/metadata/app/", **ns),
        await vault.request("GET", "secret/metadata/app", params={"list": "true"}, **ns),
        await vault.request("GET", "secret/metadata/app/", params={"list": "1"}, **ns),
    ):
        assert response.status_code == 200
        assert sorted(response.json()["data"]["keys"]) == ["api", "db", "deep/"]
    root = await vault.request("LIST", "secret/metadata", **ns)
    assert sorted(root.json()["data"]["keys"]) == ["app/", "other"]
    not_list = await vault.request("GET", "secret/metadata/app/db", params={"list": "false"}, **ns)
    assert not_list.status_code == 200
    assert "versions" in not_list.json()["data"]


async def test_empty_list_is_404(vault: Vault, acme: str) -> None:
    response = await vault.request("LIST", "secret/metadata/nothing", token=acme, namespace="acme")
    assert response.status_code == 404
    assert response.json() == {"errors": []}


@pytest.mark.parametrize("value", ["yes", "", "TRUE ", "2"])
async def test_invalid_list_value_is_400(vault: Vault, acme: str, value: str) -> None:
    response = await vault.request(
        "GET", "secret/metadata/app", token=acme, namespace="acme", params={"list": value}
    )
    assert response.status_code == 400


async def test_empty_post_body_is_an_empty_object(vault: Vault, acme: str) -> None:
    # An empty body is {} (Vault): a config write with nothing in it changes nothing.
    response = await vault.request("POST", "secret/config", token=acme, namespace="acme")
    assert response.status_code == 204
    no_data = await vault.request("POST", "secret/data/x", token=acme, namespace="acme")
    assert no_data.status_code == 400
    assert no_data.json() == {"errors": ["no data provided"]}


async def test_unsupported_operation_on_a_kv_path_is_405(vault: Vault, acme: str) -> None:
    response = await vault.request("DELETE", "secret/config", token=acme, namespace="acme")
    assert response.status_code == 405
    subkeys_write = await vault.request(
        "POST", "secret/subkeys/a", token=acme, namespace="acme", json={"a": 1}
    )
    assert subkeys_write.status_code == 405


async def test_unknown_kv_section_is_404(vault: Vault, acme: str) -> None:
    response = await vault.request("GET", "secret/nosuch/a", token=acme, namespace="acme")
    assert response.status_code == 404


async def test_put_and_post_are_synonyms(vault: Vault, acme: str) -> None:
    ns: _As = {"token": acme, "namespace": "acme"}
    one = await vault.request("PUT", "secret/data/a", json={"data": {"x": "1"}}, **ns)
    two = await vault.request("POST", "secret/data/a", json={"data": {"x": "2"}}, **ns)
    assert [one.json()["data"]["version"], two.json()["data"]["version"]] == [1, 2]


async def test_root_token_with_namespace_header_and_path_prefix(vault: Vault) -> None:
    await vault.create_tenant("acme")
    secret = canary()
    await vault.put("acme", "x", {"v": secret})
    by_header = await vault.root("GET", "secret/data/x", namespace="acme")
    by_prefix = await vault.root("GET", "acme/secret/data/x")
    by_slash_header = await vault.root("GET", "secret/data/x", namespace="acme/")
    for response in (by_header, by_prefix, by_slash_header):
        assert response.status_code == 200
        assert response.json()["data"]["data"] == {"v": secret}


async def test_root_token_without_namespace_reads_the_root_namespace_mount(vault: Vault) -> None:
    """Without a namespace, `secret/` is the root namespace's own mount (--dev), never a
    tenant's: a tenant's secret is not found there."""
    await vault.create_tenant("acme")
    await vault.root("POST", "secret/data/x", json={"data": {"v": "tenant"}}, namespace="acme")
    response = await vault.root("GET", "secret/data/x")
    assert response.status_code == 404
    nomount = await vault.root("GET", "nomount/x")
    assert nomount.status_code == 404


async def test_root_token_with_unknown_namespace_is_404(vault: Vault) -> None:
    response = await vault.root("GET", "secret/data/x", namespace="ghost")
    assert response.status_code == 404


async def test_a_path_help_request_is_refused_and_runs_nothing(vault: Vault, acme: str) -> None:
    """OpenBao answers `?help=1` (any method) or the HELP method with help text and runs
    nothing else; tenantvault serves no help text, so it refuses them, before any engine."""
    as_acme: _As = {"token": acme, "namespace": "acme"}
    expected = {
        "errors": [
            "path help is not served by tenantvault: the OpenAPI document at "
            "/v1/sys/internal/specs/openapi describes every path"
        ]
    }
    read = await vault.request("GET", "secret/data/app/db", params={"help": "1"}, **as_acme)
    assert read.status_code == 405
    assert read.json() == expected
    write = await vault.request(
        "POST", "secret/data/app/db", params={"help": "1"}, json={"data": {"k": "v"}}, **as_acme
    )
    assert write.status_code == 405
    assert write.json() == expected
    assert (await vault.request("HELP", "secret/data/app/db", **as_acme)).status_code == 405
    # Nothing was written: the secret is still absent.
    after = await vault.request("GET", "secret/data/app/db", **as_acme)
    assert after.status_code == 404
    # An empty `help` is no help request (as OpenBao: only a non-empty value asks for help).
    empty = await vault.request("GET", "secret/data/app/db", params={"help": ""}, **as_acme)
    assert empty.status_code == 404
