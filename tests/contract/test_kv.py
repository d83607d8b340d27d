"""The KV v2 contract: every operation, run unchanged against every backend.

A backend is done when this suite passes on it. Expected behaviour is Vault's
(reference/vault-api.md §D.2); where a test pins a message, it is Vault's message.
"""

from __future__ import annotations

import pytest

import tenantvault
from tenantvault import (
    CheckAndSetError,
    InvalidPathError,
    InvalidRequestError,
    NotFoundError,
    Operation,
)
from tests.conftest import FakeClock, canary


async def test_put_then_get_returns_the_data_and_version_1(acme: tenantvault.Tenant) -> None:
    value = canary()
    written = await acme.kv.put("app/db", {"password": value})
    assert written.version == 1
    assert written.destroyed is False
    assert written.deletion_time == ""
    secret = await acme.kv.get("app/db")
    assert secret.data == {"password": value}
    assert secret.version == 1
    assert secret.metadata.created_time == written.created_time


async def test_each_write_adds_a_version_and_old_versions_stay_readable(
    acme: tenantvault.Tenant,
) -> None:
    for n in range(1, 4):
        assert (await acme.kv.put("k", {"n": n})).version == n
    assert (await acme.kv.get("k")).data == {"n": 3}
    assert (await acme.kv.get("k", version=1)).data == {"n": 1}
    assert (await acme.kv.get("k", version=2)).version == 2


async def test_values_round_trip_exactly(acme: tenantvault.Tenant) -> None:
    """P-8: empty, unicode, NUL, newline, big, nested — each comes back byte for byte."""
    data = {
        "empty": "",
        "emoji": "🔑 ключ",
        "nul": "a\x00b",
        "newline": "line1\nline2",
        "nested": {"list": [1, 2.5, True, None, {"x": "y"}]},
        "big": "x" * (1 << 20),
    }
    await acme.kv.put("odd", data)
    assert (await acme.kv.get("odd")).data == data
    await acme.kv.put("empty-object", {})
    assert (await acme.kv.get("empty-object")).data == {}


async def test_read_of_missing_key_or_version_is_not_found(acme: tenantvault.Tenant) -> None:
    with pytest.raises(NotFoundError):
        await acme.kv.get("nope")
    await acme.kv.put("k", {"a": "b"})
    with pytest.raises(NotFoundError):
        await acme.kv.get("k", version=7)


async def test_write_without_data_is_rejected(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    with pytest.raises(InvalidRequestError, match="no data provided"):
        await tv.request("update", "secret/data/k", {}, namespace="acme")
    for bad in ("string", ["list"], 5):
        with pytest.raises(InvalidRequestError):
            await tv.request("update", "secret/data/k", {"data": bad}, namespace="acme")


# -- check-and-set -------------------------------------------------------------------------


async def test_cas_zero_creates_only(acme: tenantvault.Tenant) -> None:
    assert (await acme.kv.put("k", {"v": 1}, cas=0)).version == 1
    with pytest.raises(
        CheckAndSetError, match="check-and-set parameter did not match the current version"
    ):
        await acme.kv.put("k", {"v": 2}, cas=0)
    assert (await acme.kv.get("k")).data == {"v": 1}


async def test_cas_must_equal_the_current_version(acme: tenantvault.Tenant) -> None:
    await acme.kv.put("k", {"v": 1})
    await acme.kv.put("k", {"v": 2})
    with pytest.raises(CheckAndSetError):
        await acme.kv.put("k", {"v": 3}, cas=1)
    assert (await acme.kv.put("k", {"v": 3}, cas=2)).version == 3


async def test_cas_counts_soft_deleted_versions(acme: tenantvault.Tenant) -> None:
    await acme.kv.put("k", {"v": 1})
    await acme.kv.delete("k")
    with pytest.raises(CheckAndSetError):
        await acme.kv.put("k", {"v": 2}, cas=0)
    assert (await acme.kv.put("k", {"v": 2}, cas=1)).version == 2


async def test_cas_required_on_the_mount(acme: tenantvault.Tenant) -> None:
    await acme.kv.configure(cas_required=True)
    with pytest.raises(CheckAndSetError, match="check-and-set parameter required for this call"):
        await acme.kv.put("k", {"v": 1})
    assert (await acme.kv.put("k", {"v": 1}, cas=0)).version == 1
    assert (await acme.kv.config()).cas_required is True


async def test_cas_required_on_one_key(acme: tenantvault.Tenant) -> None:
    await acme.kv.write_metadata("strict", cas_required=True)
    with pytest.raises(CheckAndSetError, match="required"):
        await acme.kv.put("strict", {"v": 1})
    await acme.kv.put("other", {"v": 1})  # other keys are unaffected
    assert (await acme.kv.put("strict", {"v": 1}, cas=0)).version == 1


@pytest.mark.parametrize("bad", [True, "x", "1", 1.0, 1.5, -1, 2**63, [1], {"a": 1}])
async def test_malformed_cas_is_rejected_not_coerced(
    tv: tenantvault.TenantVault, bad: object
) -> None:
    """P-5: `cas: true` must never act as cas=1."""
    await tv.create_tenant("acme")
    await tv.request("update", "secret/data/k", {"data": {"v": 1}}, namespace="acme")
    with pytest.raises(InvalidRequestError):
        await tv.request(
            "update",
            "secret/data/k",
            {"data": {"v": 2}, "options": {"cas": bad}},
            namespace="acme",
        )


# -- patch ---------------------------------------------------------------------------------


async def test_patch_merges_into_the_latest_version(acme: tenantvault.Tenant) -> None:
    await acme.kv.put("k", {"keep": "1", "change": "old", "gone": "x", "obj": {"a": 1, "b": 2}})
    result = await acme.kv.patch("k", {"change": "new", "gone": None, "obj": {"b": None, "c": 3}})
    assert result.version == 2
    assert (await acme.kv.get("k")).data == {"keep": "1", "change": "new", "obj": {"a": 1, "c": 3}}


async def test_patch_of_missing_or_deleted_key_is_not_found(acme: tenantvault.Tenant) -> None:
    with pytest.raises(NotFoundError):
        await acme.kv.patch("missing", {"a": "b"})
    await acme.kv.put("k", {"a": "b"})
    await acme.kv.delete("k")
    with pytest.raises(NotFoundError):
        await acme.kv.patch("k", {"a": "c"})


async def test_patch_honours_cas(acme: tenantvault.Tenant) -> None:
    await acme.kv.put("k", {"a": "1"})
    with pytest.raises(CheckAndSetError):
        await acme.kv.patch("k", {"a": "2"}, cas=0)
    assert (await acme.kv.patch("k", {"a": "2"}, cas=1)).version == 2


# -- delete, undelete, destroy -------------------------------------------------------------


async def test_soft_delete_hides_the_latest_version_and_undelete_restores_it(
    acme: tenantvault.Tenant,
) -> None:
    await acme.kv.put("k", {"v": 1})
    await acme.kv.put("k", {"v": 2})
    await acme.kv.delete("k")
    with pytest.raises(NotFoundError) as caught:
        await acme.kv.get("k")
    body = caught.value.body
    assert body is not None
    assert body["data"]["data"] is None
    assert body["data"]["metadata"]["version"] == 2
    assert body["data"]["metadata"]["deletion_time"] != ""
    assert body["data"]["metadata"]["destroyed"] is False
    assert (await acme.kv.get("k", version=1)).data == {"v": 1}
    await acme.kv.undelete("k", versions=[2])
    assert (await acme.kv.get("k")).data == {"v": 2}


async def test_delete_specific_versions(acme: tenantvault.Tenant) -> None:
    for n in range(3):
        await acme.kv.put("k", {"v": n})
    await acme.kv.delete("k", versions=[1, 3, 99])
    with pytest.raises(NotFoundError):
        await acme.kv.get("k", version=1)
    assert (await acme.kv.get("k", version=2)).data == {"v": 1}
    meta = await acme.kv.metadata("k")
    assert meta.versions[1].deletion_time != ""
    assert meta.versions[2].deletion_time == ""


async def test_destroy_removes_the_data_for_good(acme: tenantvault.Tenant) -> None:
    await acme.kv.put("k", {"v": canary()})
    await acme.kv.put("k", {"v": 2})
    await acme.kv.destroy("k", versions=[1])
    with pytest.raises(NotFoundError) as caught:
        await acme.kv.get("k", version=1)
    assert caught.value.body is not None
    assert caught.value.body["data"]["metadata"]["destroyed"] is True
    await acme.kv.undelete("k", versions=[1])  # a destroyed version cannot come back
    with pytest.raises(NotFoundError):
        await acme.kv.get("k", version=1)
    assert (await acme.kv.metadata("k")).versions[1].destroyed is True


async def test_version_lists_are_required(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    with pytest.raises(InvalidRequestError, match=r"^no version number provided$"):
        await tv.request("update", "secret/destroy/k", {"versions": []}, namespace="acme")
    for action in ("delete", "undelete"):
        with pytest.raises(InvalidRequestError, match=r"^No version number provided$"):
            await tv.request("update", f"secret/{action}/k", {}, namespace="acme")


async def test_delete_of_missing_key_is_a_no_op(acme: tenantvault.Tenant) -> None:
    await acme.kv.delete("never-written")
    await acme.kv.delete("never-written", versions=[1])
    await acme.kv.destroy("never-written", versions=[1])


# -- metadata and listing ------------------------------------------------------------------


async def test_metadata_reports_versions_and_settings(acme: tenantvault.Tenant) -> None:
    await acme.kv.put("k", {"v": 1})
    await acme.kv.put("k", {"v": 2})
    await acme.kv.write_metadata("k", max_versions=5, custom_metadata={"owner": "jdoe"})
    meta = await acme.kv.metadata("k")
    assert meta.current_version == 2
    assert meta.oldest_version == 0
    assert meta.max_versions == 5
    assert meta.custom_metadata == {"owner": "jdoe"}
    assert sorted(meta.versions) == [1, 2]
    assert meta.delete_version_after == "0s"
    assert (await acme.kv.get("k")).metadata.custom_metadata == {"owner": "jdoe"}


async def test_metadata_write_without_versions_creates_an_empty_key(
    acme: tenantvault.Tenant,
) -> None:
    await acme.kv.write_metadata("fresh", custom_metadata={"team": "a"})
    meta = await acme.kv.metadata("fresh")
    assert meta.current_version == 0
    assert meta.versions == {}
    assert "fresh" in await acme.kv.list()
    with pytest.raises(NotFoundError):
        await acme.kv.get("fresh")


async def test_metadata_patch_merges_custom_metadata(acme: tenantvault.Tenant) -> None:
    await acme.kv.write_metadata("k", custom_metadata={"a": "1", "b": "2"}, max_versions=3)
    await acme.kv.patch_metadata("k", custom_metadata={"b": None, "c": "3"})
    meta = await acme.kv.metadata("k")
    assert meta.custom_metadata == {"a": "1", "c": "3"}
    assert meta.max_versions == 3
    with pytest.raises(NotFoundError):
        await acme.kv.patch_metadata("missing", max_versions=1)


@pytest.mark.parametrize(
    "custom",
    [
        {f"k{i}": "v" for i in range(65)},
        {"": "v"},
        {"k" * 129: "v"},
        {"k": ""},
        {"k": "v" * 513},
        {"k": 5},
    ],
)
async def test_custom_metadata_limits(acme: tenantvault.Tenant, custom: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        await acme.kv.write_metadata("k", custom_metadata=custom)  # type: ignore[arg-type]


async def test_max_versions_prunes_the_oldest(acme: tenantvault.Tenant) -> None:
    await acme.kv.write_metadata("k", max_versions=3)
    for n in range(1, 6):
        await acme.kv.put("k", {"v": n})
    meta = await acme.kv.metadata("k")
    assert sorted(meta.versions) == [3, 4, 5]
    assert meta.oldest_version == 3
    with pytest.raises(NotFoundError):
        await acme.kv.get("k", version=1)
    assert (await acme.kv.get("k", version=3)).data == {"v": 3}


async def test_mount_max_versions_and_default_of_ten(acme: tenantvault.Tenant) -> None:
    for n in range(12):
        await acme.kv.put("default", {"v": n})
    assert len((await acme.kv.metadata("default")).versions) == 10
    await acme.kv.configure(max_versions=2)
    for n in range(4):
        await acme.kv.put("mount", {"v": n})
    assert sorted((await acme.kv.metadata("mount")).versions) == [3, 4]


async def test_lowering_max_versions_prunes_at_the_next_write(acme: tenantvault.Tenant) -> None:
    """As in OpenBao: the metadata write itself destroys nothing."""
    for n in range(5):
        await acme.kv.put("k", {"v": n})
    await acme.kv.write_metadata("k", max_versions=2)
    assert sorted((await acme.kv.metadata("k")).versions) == [1, 2, 3, 4, 5]
    await acme.kv.put("k", {"v": 5})
    meta = await acme.kv.metadata("k")
    assert sorted(meta.versions) == [5, 6]
    assert meta.oldest_version == 5


async def test_the_larger_of_key_and_mount_max_versions_applies(
    acme: tenantvault.Tenant,
) -> None:
    """Observed on OpenBao 2.7: mount 5 / key 2 keeps 5; mount 2 / key 4 keeps 4."""
    await acme.kv.configure(max_versions=5)
    await acme.kv.write_metadata("small", max_versions=2)
    await acme.kv.write_metadata("big", max_versions=7)
    for n in range(9):
        await acme.kv.put("small", {"v": n})
        await acme.kv.put("big", {"v": n})
    assert sorted((await acme.kv.metadata("small")).versions) == [5, 6, 7, 8, 9]
    assert sorted((await acme.kv.metadata("big")).versions) == list(range(3, 10))


async def test_metadata_check_and_set(tv: tenantvault.TenantVault) -> None:
    """OpenBao's metadata CAS: once required, metadata writes must quote the metadata version."""
    await tv.create_tenant("acme")
    kv = tv.tenant("acme").kv
    await kv.write_metadata("k", custom_metadata={"a": "1"})
    await tv.request(
        "update", "secret/metadata/k", {"metadata_cas_required": True}, namespace="acme"
    )
    with pytest.raises(CheckAndSetError, match="metadata check-and-set parameter required"):
        await kv.write_metadata("k", custom_metadata={"a": "2"})
    meta = (await tv.request("read", "secret/metadata/k", namespace="acme")).data or {}
    assert meta["current_metadata_version"] == 2
    assert meta["metadata_cas_required"] is True
    with pytest.raises(CheckAndSetError, match="does not match"):
        await tv.request(
            "update",
            "secret/metadata/k",
            {"metadata_cas": 1, "custom_metadata": {"a": "3"}},
            namespace="acme",
        )
    await tv.request(
        "update",
        "secret/metadata/k",
        {"metadata_cas": 2, "custom_metadata": {"a": "3"}},
        namespace="acme",
    )
    assert (await kv.metadata("k")).custom_metadata == {"a": "3"}


async def test_delete_version_after_expires_versions(
    acme: tenantvault.Tenant, clock: FakeClock
) -> None:
    await acme.kv.write_metadata("k", delete_version_after="1h")
    await acme.kv.put("k", {"v": 1})
    assert (await acme.kv.get("k")).metadata.deletion_time != ""
    clock.advance(3599)
    assert (await acme.kv.get("k")).data == {"v": 1}
    clock.advance(2)
    with pytest.raises(NotFoundError):
        await acme.kv.get("k")
    assert (await acme.kv.metadata("k")).delete_version_after == "1h0m0s"


async def test_mount_delete_version_after_caps_the_key_setting(
    acme: tenantvault.Tenant, clock: FakeClock
) -> None:
    await acme.kv.configure(delete_version_after="10m")
    await acme.kv.write_metadata("k", delete_version_after="2h")
    await acme.kv.put("k", {"v": 1})
    clock.advance(601)
    with pytest.raises(NotFoundError):
        await acme.kv.get("k")


async def test_delete_metadata_removes_every_version(acme: tenantvault.Tenant) -> None:
    await acme.kv.put("k", {"v": 1})
    await acme.kv.put("k", {"v": 2})
    await acme.kv.delete_metadata("k")
    with pytest.raises(NotFoundError):
        await acme.kv.metadata("k")
    with pytest.raises(NotFoundError):
        await acme.kv.get("k", version=1)
    assert await acme.kv.list() == []
    assert (await acme.kv.put("k", {"v": "again"})).version == 1


async def test_list_shows_keys_and_folders(acme: tenantvault.Tenant) -> None:
    for path in ("a", "b/c", "b/d/e", "b/f", "c.d", "zz/top"):
        await acme.kv.put(path, {"v": 1})
    assert await acme.kv.list() == ["a", "b/", "c.d", "zz/"]
    assert await acme.kv.list("b") == ["c", "d/", "f"]
    assert await acme.kv.list("b/") == ["c", "d/", "f"]
    assert await acme.kv.list("b/d") == ["e"]
    assert await acme.kv.list("nothing/here") == []


async def test_list_of_an_empty_folder_is_not_found(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    with pytest.raises(NotFoundError):
        await tv.request(Operation.LIST, "secret/metadata/", namespace="acme")


async def test_list_keeps_soft_deleted_keys(acme: tenantvault.Tenant) -> None:
    await acme.kv.put("k", {"v": 1})
    await acme.kv.delete("k")
    assert await acme.kv.list() == ["k"]


async def test_subkeys_show_structure_without_values(acme: tenantvault.Tenant) -> None:
    await acme.kv.put("k", {"a": canary(), "b": {"c": "x", "d": {"e": "y"}}})
    assert await acme.kv.subkeys("k") == {"a": None, "b": {"c": None, "d": {"e": None}}}
    assert await acme.kv.subkeys("k", depth=1) == {"a": None, "b": None}


async def test_mount_config_round_trips(acme: tenantvault.Tenant) -> None:
    assert await acme.kv.config() == tenantvault.KVConfig(
        cas_required=False,
        delete_version_after="0s",
        max_versions=0,
        metadata_cas_required=False,
    )
    await acme.kv.configure(max_versions=7, delete_version_after="3h25m19s")
    assert await acme.kv.config() == tenantvault.KVConfig(
        cas_required=False,
        delete_version_after="3h25m19s",
        max_versions=7,
        metadata_cas_required=False,
    )


@pytest.mark.parametrize(
    "path", ["a/../b", "../x", "a/./b", "a//b", "/a", "a\\b", "a\x00b", "e\u0301", "a%2Fb", ""]
)
async def test_invalid_paths_are_rejected_before_anything_happens(
    acme: tenantvault.Tenant, path: str
) -> None:
    with pytest.raises(InvalidPathError):
        await acme.kv.put(path, {"v": 1})
    assert await acme.kv.list() == []


async def test_same_path_in_two_tenants_is_two_secrets(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    await tv.create_tenant("acme-evil")
    await tv.tenant("acme").kv.put("shared/name", {"owner": "acme"})
    with pytest.raises(NotFoundError):
        await tv.tenant("acme-evil").kv.get("shared/name")
    await tv.tenant("acme-evil").kv.put("shared/name", {"owner": "evil"})
    assert (await tv.tenant("acme").kv.get("shared/name")).data == {"owner": "acme"}
    assert (await tv.tenant("acme").kv.get("shared/name")).version == 1


async def test_oldest_version_moves_to_1_when_the_limit_is_reached(
    acme: tenantvault.Tenant,
) -> None:
    """OpenBao 2.7: with max_versions N, the N-th write sets oldest_version to 1."""
    await acme.kv.write_metadata("k", max_versions=2)
    await acme.kv.put("k", {"v": 1})
    assert (await acme.kv.metadata("k")).oldest_version == 0
    await acme.kv.put("k", {"v": 2})
    meta = await acme.kv.metadata("k")
    assert (meta.oldest_version, sorted(meta.versions)) == (1, [1, 2])


async def test_patch_checks_cas_before_looking_for_data(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    kv = tv.tenant("acme").kv
    await kv.write_metadata("empty", cas_required=True)
    with pytest.raises(CheckAndSetError, match="required"):
        await kv.patch("empty", {"a": "b"})
    await kv.put("k", {"a": "1"})
    await kv.put("k", {"a": "2"})
    await kv.delete("k")
    with pytest.raises(CheckAndSetError, match="did not match"):
        await kv.patch("k", {"a": "3"}, cas=1)
    with pytest.raises(NotFoundError) as caught:
        await kv.patch("k", {"a": "3"}, cas=2)
    body = caught.value.body
    assert body is not None
    assert body["data"]["version"] == 2
    assert body["data"]["deletion_time"] != ""


async def test_subkeys_of_a_deleted_version_answer_with_metadata(
    acme: tenantvault.Tenant,
) -> None:
    await acme.kv.put("k", {"a": "1"})
    await acme.kv.delete("k")
    with pytest.raises(NotFoundError) as caught:
        await acme.kv.subkeys("k")
    assert caught.value.body is not None
    assert caught.value.body["data"]["subkeys"] is None
    assert caught.value.body["data"]["metadata"]["version"] == 1


async def test_a_metadata_write_without_fields_changes_nothing(tv: tenantvault.TenantVault) -> None:
    await tv.create_tenant("acme")
    await tv.tenant("acme").kv.write_metadata("k", max_versions=3)
    for operation in ("update", "patch"):
        await tv.request(operation, "secret/metadata/k", {}, namespace="acme")
    meta = (await tv.request("read", "secret/metadata/k", namespace="acme")).data or {}
    assert meta["current_metadata_version"] == 1
