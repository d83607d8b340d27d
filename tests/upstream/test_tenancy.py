"""The tenancy mappings: injective, and no tenant's upstream policy reaches another's paths."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantvault._exceptions import InvalidRequestError
from tenantvault._paths import RESERVED_TENANT_IDS
from tenantvault.upstream._tenancy import (
    KV_SECTIONS,
    NamespaceTenancy,
    PrefixTenancy,
    check_root,
)

tenant_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{0,12}", fullmatch=True).filter(
    lambda tenant: tenant not in RESERVED_TENANT_IDS
)
# Names the upstream accepts (Vault's GenericNameRegex) and our grammar allows.
key_names = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,12}[A-Za-z0-9_])?", fullmatch=True)
segments = st.text(alphabet="abcXYZ019-_.@=:~é", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
secret_paths = st.lists(segments, min_size=1, max_size=4).map("/".join)
roots = st.sampled_from(["tenantvault", "tv", "platform/tenantvault", "a_b/c-d"])
sections = st.sampled_from(sorted(KV_SECTIONS))


def _policy_globs(policy: str) -> list[re.Pattern[str]]:
    """The path patterns of an upstream policy as regexes, with Vault's glob rules ('*' at
    the end matches anything, '+' one segment)."""
    patterns = []
    for path in re.findall(r'path "([^"]+)"', policy):
        glob = path.endswith("*")
        body = re.escape(path[:-1] if glob else path).replace(r"\+", "[^/]+")
        patterns.append(re.compile(body + (".*" if glob else "") + r"\Z"))
    return patterns


def _reaches(policy: str, path: str) -> bool:
    return any(pattern.match(path) for pattern in _policy_globs(policy))


@given(roots, tenant_ids, tenant_ids, sections, secret_paths, secret_paths)
def test_prefix_kv_paths_are_injective(
    root: str, a: str, b: str, section: str, path_a: str, path_b: str
) -> None:
    tenancy = PrefixTenancy(root, kv_mount="kv")
    left = tenancy.kv(a, f"{section}/{path_a}")
    right = tenancy.kv(b, f"{section}/{path_b}")
    assert (left == right) == ((a, path_a) == (b, path_b))


@given(roots, tenant_ids, tenant_ids, key_names, key_names)
def test_prefix_transit_names_are_injective_and_reversible(
    root: str, a: str, b: str, name_a: str, name_b: str
) -> None:
    tenancy = PrefixTenancy(root)
    upstream_a = tenancy.transit_key(a, name_a)
    assert (upstream_a == tenancy.transit_key(b, name_b)) == ((a, name_a) == (b, name_b))
    assert tenancy.transit_name(a, upstream_a) == name_a
    if a != b:
        assert tenancy.transit_name(b, upstream_a) is None


@given(roots, tenant_ids, tenant_ids, sections, secret_paths)
def test_no_prefix_policy_reaches_another_tenants_kv_path(
    root: str, owner: str, other: str, section: str, path: str
) -> None:
    tenancy = PrefixTenancy(root, kv_mount="kv")
    placed = tenancy.kv(owner, f"{section}/{path}").path
    assert _reaches(tenancy.policy(owner), placed)
    assert _reaches(tenancy.policy(other), placed) == (owner == other)


@given(roots, tenant_ids, tenant_ids, key_names, st.sampled_from(["encrypt", "keys", "hmac"]))
def test_no_prefix_policy_reaches_another_tenants_transit_key(
    root: str, owner: str, other: str, name: str, section: str
) -> None:
    tenancy = PrefixTenancy(root)
    placed = tenancy.transit(owner, f"{section}/{name}").path
    assert _reaches(tenancy.policy(owner), placed)
    assert _reaches(tenancy.policy(other), placed) == (owner == other)


@given(roots, tenant_ids, tenant_ids, secret_paths)
def test_namespace_placements_differ_by_namespace_only(
    root: str, a: str, b: str, path: str
) -> None:
    tenancy = NamespaceTenancy(root)
    left, right = tenancy.kv(a, f"data/{path}"), tenancy.kv(b, f"data/{path}")
    assert left.path == right.path == f"secret/data/{path}"
    assert (left.namespace == right.namespace) == (a == b)


def test_prefix_tenant_root_folder_lists_the_tenants_folder() -> None:
    tenancy = PrefixTenancy("tv", kv_mount="kv")
    assert tenancy.kv("acme", "metadata/").path == "kv/metadata/tv/acme/"
    assert tenancy.kv("acme", "data/app/db").path == "kv/data/tv/acme/app/db"
    assert (
        tenancy.transit("acme", "datakey/plaintext/k").path == "transit/datakey/plaintext/tv.acme.k"
    )
    assert tenancy.transit("acme", "hmac/k/sha2-512").path == "transit/hmac/tv.acme.k/sha2-512"
    assert tenancy.transit("acme", "random/32").path == "transit/random/32"


def test_prefix_kv_mount_config_is_refused_with_a_reason() -> None:
    with pytest.raises(InvalidRequestError, match="shared by every tenant"):
        PrefixTenancy().kv("acme", "config")


@pytest.mark.parametrize("name", ["a@b", "a:b", "a~", "key-", "key."])
def test_transit_names_the_upstream_cannot_store_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequestError, match="cannot be stored on the upstream"):
        PrefixTenancy().transit_key("acme", name)
    with pytest.raises(InvalidRequestError, match="cannot be stored on the upstream"):
        NamespaceTenancy().transit("acme", f"encrypt/{name}")


@pytest.mark.parametrize("root", ["", "a//b", "Tenant", "a/b/", "a.b"])
def test_a_bad_root_is_refused(root: str) -> None:
    with pytest.raises(InvalidRequestError):
        check_root(root)
