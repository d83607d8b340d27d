"""Parameter constraints: allowed, denied and required parameters decide with Vault's semantics.

The documented examples quote OpenBao's docs/concepts/policies.mdx ("docs"); the other cases
are what a real `bao server -dev` (OpenBao 2.7) answered to the same policy and request, so
each expectation here was seen on the real server (tests/integration/test_policy_parameters.py
replays the HTTP-reachable ones against both servers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantvault._exceptions import InvalidRequestError
from tenantvault._policy import ACL, Policy
from tenantvault._request import Operation

CREATE, READ, UPDATE, PATCH, LIST, DELETE = (
    Operation.CREATE,
    Operation.READ,
    Operation.UPDATE,
    Operation.PATCH,
    Operation.LIST,
    Operation.DELETE,
)


def acl(*documents: str) -> ACL:
    return ACL(Policy.parse(f"p{index}", text) for index, text in enumerate(documents))


def block(pattern: str, capabilities: list[str], **constraints: Any) -> str:
    """A JSON policy with one path block (JSON spells the lists exactly, booleans included)."""
    return json.dumps({"path": {pattern: {"capabilities": capabilities, **constraints}}})


def permits(
    policy: ACL,
    data: Mapping[str, Any] | None,
    *,
    path: str = "secret/foo",
    capability: str = "create",
    operation: Operation = CREATE,
) -> bool:
    return policy.permits(path, capability, operation=operation, data=data)


# -- the documentation's examples ----------------------------------------------------------

REQUIRED = (
    'path "secret/profile" { capabilities = ["create"] required_parameters = ["name", "id"] }'
)
PASSWORD_ONLY = """
path "auth/userpass/users/*" {
  capabilities = ["update"]
  allowed_parameters = { "password" = [] }
}
"""
ROTATION = """
path "transit/keys/*" {
  capabilities = ["create", "update"]
  allowed_parameters = { "auto_rotate_period" = ["8h", "24h", "5d"] }
}
"""
ZIP_ZAP_AND_ANY = """
path "secret/foo" {
  capabilities = ["create"]
  allowed_parameters = {
    "bar" = ["zip", "zap"]
    "*"   = []
  }
}
"""
NO_POLICIES = """
path "auth/userpass/users/*" {
  capabilities = ["update"]
  denied_parameters = { "token_policies" = [] "policies" = [] }
}
"""
NOT_ADMIN = """
path "auth/token/roles/*" {
  capabilities = ["create", "update"]
  denied_parameters = { "allowed_policies" = ["admin"] }
}
"""
DENY_ALL = """
path "transit/keys/*" {
  capabilities = ["create", "update"]
  denied_parameters = { "*" = [] }
}
"""
FOO_PREFIX = (
    'path "secret/foo" { capabilities = ["create"] allowed_parameters = { "bar" = ["foo-*"] } }'
)
NO_STORE = """
path "secret/foo" {
  capabilities = ["create"]
  denied_parameters = { "no_store" = [false, "false"] }
}
"""
NO_STORE_REQUIRED = """
path "secret/foo" {
  capabilities = ["create"]
  required_parameters = ["no_store"]
  denied_parameters = { "no_store" = [false, "false"] }
}
"""

USERS = "auth/userpass/users/alice"
DOC_EXAMPLES = [
    # "This requires the user to create "secret/profile" with a parameter/key named "name"
    # and "id""
    pytest.param(REQUIRED, "secret/profile", {"name": "n", "id": "1"}, True, id="required-both"),
    pytest.param(REQUIRED, "secret/profile", {"name": "n"}, False, id="required-one-missing"),
    pytest.param(REQUIRED, "secret/profile", None, False, id="required-no-body"),
    # "The password value can be anything. However, the user cannot update other parameter
    # values such as token_ttl."
    pytest.param(PASSWORD_ONLY, USERS, {"password": "s3"}, True, id="allowed-any-value"),
    pytest.param(PASSWORD_ONLY, USERS, {"token_ttl": "1h"}, False, id="allowed-other-name"),
    pytest.param(
        PASSWORD_ONLY, USERS, {"password": "s", "token_ttl": "1h"}, False, id="allowed-one-extra"
    ),
    # "the rotation period must be "8h", "24h", or "5d". Any other value will result in an
    # error."
    pytest.param(ROTATION, "transit/keys/k", {"auto_rotate_period": "8h"}, True, id="value-list"),
    pytest.param(ROTATION, "transit/keys/k", {"auto_rotate_period": "1h"}, False, id="off-list"),
    # "The parameter "bar" can only contain the values "zip" or "zap", but any other
    # parameters may be created with any value."
    pytest.param(ZIP_ZAP_AND_ANY, "secret/foo", {"bar": "zip"}, True, id="star-listed-ok"),
    pytest.param(ZIP_ZAP_AND_ANY, "secret/foo", {"bar": "zop"}, False, id="star-listed-bad"),
    pytest.param(ZIP_ZAP_AND_ANY, "secret/foo", {"baz": "any"}, True, id="star-other-name"),
    pytest.param(ZIP_ZAP_AND_ANY, "secret/foo", {"baz": "x", "bar": "zop"}, False, id="star-mixed"),
    # "cannot update the "token_policies" and "policies" parameter values"
    pytest.param(NO_POLICIES, USERS, {"password": "s"}, True, id="denied-other-name"),
    pytest.param(NO_POLICIES, USERS, {"policies": "admin"}, False, id="denied-any-value"),
    # "the "allowed_policies" parameter value cannot be "admin", but the user can assign any
    # other policies"
    pytest.param(NOT_ADMIN, "auth/token/roles/r", {"allowed_policies": "dev"}, True, id="dv-ok"),
    pytest.param(
        NOT_ADMIN, "auth/token/roles/r", {"allowed_policies": "admin"}, False, id="dv-bad"
    ),
    # "the user cannot set any of the configuration parameters. As a result, the created key
    # will have all parameters set to default values."
    pytest.param(DENY_ALL, "transit/keys/k", {"type": "rsa-4096"}, False, id="deny-star"),
    pytest.param(DENY_ALL, "transit/keys/k", {}, True, id="deny-star-no-parameters"),
    # "Only allow a parameter named "bar" with a value starting with "foo-*"."
    pytest.param(FOO_PREFIX, "secret/foo", {"bar": "foo-1"}, True, id="glob-prefix"),
    pytest.param(FOO_PREFIX, "secret/foo", {"bar": "food"}, False, id="glob-prefix-miss"),
    # "The following operation will error, because "no_store" is set to false" ... "Succeeds
    # because "no_store=false" isn't present in the parameters"
    pytest.param(NO_STORE, "secret/foo", {"no_store": "false", "value": "bar"}, False, id="ns"),
    pytest.param(NO_STORE, "secret/foo", {"no_store": False}, False, id="no-store-boolean"),
    pytest.param(NO_STORE, "secret/foo", {"value": "bar"}, True, id="no-store-absent"),
    # "The following command, which previously succeeded, will now fail under the new policy"
    pytest.param(NO_STORE_REQUIRED, "secret/foo", {"value": "bar"}, False, id="no-store-req"),
    pytest.param(
        NO_STORE_REQUIRED, "secret/foo", {"no_store": "true"}, True, id="no-store-req-true"
    ),
]


@pytest.mark.parametrize(("document", "path", "data", "expected"), DOC_EXAMPLES)
def test_documentation_examples(
    document: str, path: str, data: dict[str, Any] | None, expected: bool
) -> None:
    policy = acl(document)
    capability = "update" if "update" in policy.capabilities(path) else "create"
    assert permits(policy, data, path=path, capability=capability) is expected


# -- which operations are checked ----------------------------------------------------------

ALL_OPS = '["create", "read", "update", "patch", "delete", "list"]'


@pytest.mark.parametrize(
    ("operation", "capability", "expected"),
    [
        pytest.param(CREATE, "create", False, id="create"),
        pytest.param(UPDATE, "update", False, id="update"),
        pytest.param(PATCH, "patch", False, id="patch"),
        pytest.param(READ, "read", False, id="read-query"),
        pytest.param(DELETE, "delete", True, id="delete"),
        pytest.param(LIST, "list", True, id="list"),
    ],
)
def test_constraints_apply_to_reads_and_writes_only(
    operation: Operation, capability: str, expected: bool
) -> None:
    """bao: a denied `foo` in the query refuses a GET, but not a DELETE or a LIST."""
    policy = acl(f'path "kv/*" {{ capabilities = {ALL_OPS} denied_parameters = {{ "foo" = [] }} }}')
    path = "kv/" if operation is LIST else "kv/a"
    data = {"foo": "1"}
    assert permits(policy, data, path=path, capability=capability, operation=operation) is expected


def test_required_parameters_refuse_a_read_without_them() -> None:
    """bao: `required_parameters` refuses a plain GET, but not a DELETE or a LIST."""
    policy = acl(f'path "kv/*" {{ capabilities = {ALL_OPS} required_parameters = ["version"] }}')
    assert not permits(policy, None, path="kv/a", capability="read", operation=READ)
    assert permits(policy, {"version": "1"}, path="kv/a", capability="read", operation=READ)
    assert permits(policy, None, path="kv/a", capability="delete", operation=DELETE)
    assert permits(policy, None, path="kv/", capability="list", operation=LIST)


def test_a_request_without_parameters_passes_allowed_and_denied_lists() -> None:
    policy = acl(block("secret/foo", ["create"], allowed_parameters={"a": ["x"]}))
    assert permits(policy, None)
    assert permits(policy, {})


def test_constraints_never_grant_a_capability() -> None:
    policy = acl(block("secret/foo", ["read"], allowed_parameters={"*": []}))
    assert not permits(policy, {"a": "1"}, capability="create")
    assert not permits(policy, None, capability="deny")


def test_root_passes_every_constraint_and_allows_stays_a_capability_check() -> None:
    policy = acl(block("secret/foo", ["create"], denied_parameters={"*": []}))
    assert policy.allows("secret/foo", "create")
    assert not permits(policy, {"a": "1"})
    assert permits(ACL((), root=True), {"a": "1"})


@pytest.mark.parametrize("ttl", ["min_wrapping_ttl", "max_wrapping_ttl"])
@pytest.mark.parametrize(
    ("operation", "capability"),
    [(READ, "read"), (UPDATE, "update"), (DELETE, "delete"), (LIST, "list")],
)
def test_a_rule_with_a_wrapping_ttl_admits_no_unwrapped_request(
    ttl: str, operation: Operation, capability: str
) -> None:
    """Vault lets such a rule through only for response-wrapped requests; none is wrapped
    here yet, so the rule fails closed instead of granting unwrapped access."""
    policy = acl(f'path "kv/*" {{ capabilities = {ALL_OPS} {ttl} = "1m" }}')
    path = "kv/" if operation is LIST else "kv/a"
    assert policy.allows(path, capability)  # the capability check alone still sees it
    assert not permits(policy, None, path=path, capability=capability, operation=operation)
    other = acl(f'path "kv/*" {{ capabilities = {ALL_OPS} }}\npath "kv/a" {{ {ttl} = "1m" }}')
    assert permits(other, None, path="kv/b", capability="read", operation=READ)


# -- names, values and globs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "data", "expected"),
    [
        # Names compare case-insensitively, values do not (bao: KEY=Val passes, key=val not).
        pytest.param({"Key": ["Val"]}, {"KEY": "Val"}, True, id="name-case"),
        pytest.param({"Key": ["Val"]}, {"key": "val"}, False, id="value-case"),
        # Globs: one '*' at the start, the end or both ends.
        pytest.param({"a": ["foo*"]}, {"a": "foobar"}, True, id="prefix"),
        pytest.param({"a": ["foo*"]}, {"a": "foo"}, True, id="prefix-empty-rest"),
        pytest.param({"a": ["foo*"]}, {"a": "barfoo"}, False, id="prefix-miss"),
        pytest.param({"a": ["*foo"]}, {"a": "barfoo"}, True, id="suffix"),
        pytest.param({"a": ["*foo"]}, {"a": "foobar"}, False, id="suffix-miss"),
        pytest.param({"a": ["*mid*"]}, {"a": "xmidy"}, True, id="infix"),
        pytest.param({"a": ["*mid*"]}, {"a": "mid"}, True, id="infix-bare"),
        pytest.param({"a": ["**"]}, {"a": ""}, True, id="double-star-anything"),
        pytest.param({"a": ["f*o"]}, {"a": "fxo"}, False, id="inner-star-is-literal"),
        pytest.param({"a": ["f*o"]}, {"a": "f*o"}, True, id="inner-star-matches-itself"),
        # A lone "*" is no wildcard in a value list: it matches only "*" (bao agrees).
        pytest.param({"a": ["*"]}, {"a": "anything"}, False, id="lone-star-literal"),
        pytest.param({"a": ["*"]}, {"a": "*"}, True, id="lone-star-itself"),
        pytest.param({"a": [""]}, {"a": ""}, True, id="empty-string"),
        pytest.param({"a": [""]}, {"a": "z"}, False, id="empty-string-only"),
        # Types: strings match strings, booleans booleans; request numbers match nothing.
        pytest.param({"s": ["5"]}, {"s": "5"}, True, id="string"),
        pytest.param({"s": ["5"]}, {"s": 5}, False, id="number-vs-string"),
        pytest.param({"n": [5]}, {"n": 5}, False, id="number-vs-number"),
        pytest.param({"n": [5]}, {"n": "5"}, False, id="string-vs-number"),
        pytest.param({"f": [1.5]}, {"f": 1.5}, False, id="float"),
        pytest.param({"b": [True]}, {"b": True}, True, id="boolean"),
        pytest.param({"b": [True]}, {"b": "true"}, False, id="string-vs-boolean"),
        pytest.param({"b": ["true"]}, {"b": True}, False, id="boolean-vs-string"),
        pytest.param({"n": [1]}, {"n": True}, False, id="true-is-not-one"),
        pytest.param({"b": [True]}, {"b": 1}, False, id="one-is-not-true"),
        pytest.param({"n": []}, {"n": None}, True, id="null-any-value"),
        pytest.param({"n": ["x"]}, {"n": None}, False, id="null-listed"),
        # A list or object never equals a listed scalar, even one it contains.
        pytest.param({"a": ["foo*"]}, {"a": ["foo1"]}, False, id="list-value"),
        pytest.param({"a": ["x"]}, {"a": {"x": "x"}}, False, id="object-value"),
        pytest.param({"a": []}, {"a": {"x": "x"}}, True, id="object-any-value"),
    ],
)
def test_allowed_values(
    allowed: dict[str, list[Any]], data: dict[str, Any], expected: bool
) -> None:
    policy = acl(block("secret/foo", ["create"], allowed_parameters=allowed))
    assert permits(policy, data) is expected


@pytest.mark.parametrize(
    ("denied", "data", "expected"),
    [
        pytest.param({"foo": []}, {"Foo": "x"}, False, id="name-case"),
        pytest.param({"foo": []}, {"bar": "x"}, True, id="other-name"),
        pytest.param({"foo": []}, {"bar": "x", "foo": "y"}, False, id="among-others"),
        pytest.param({"s": ["x*"]}, {"s": "xyz"}, False, id="glob"),
        pytest.param({"s": ["x*"]}, {"s": ["xyz"]}, True, id="glob-not-into-lists"),
        pytest.param({"b": [True]}, {"b": True}, False, id="boolean"),
        pytest.param({"b": [True]}, {"b": False}, True, id="other-boolean"),
        # Stricter than Vault (whose json.Number equals no listed number): a denied number
        # denies that number however it is spelled, so a denial never fails open.
        pytest.param({"n": [5]}, {"n": 5}, False, id="number-denied"),
        pytest.param({"n": [5]}, {"n": 5.0}, False, id="float-number-denied"),
        pytest.param({"n": [5]}, {"n": "5"}, False, id="numeral-denied"),
        pytest.param({"n": [5]}, {"n": " 5 "}, False, id="spaced-numeral-denied"),
        pytest.param({"n": [5]}, {"n": 6}, True, id="other-number"),
        pytest.param({"n": [1]}, {"n": True}, True, id="boolean-is-no-number"),
        # "*" denies every parameter, whatever its value list says.
        pytest.param({"*": ["abc"]}, {"foo": "x"}, False, id="star-with-values"),
    ],
)
def test_denied_values(denied: dict[str, list[Any]], data: dict[str, Any], expected: bool) -> None:
    policy = acl(block("secret/foo", ["create"], denied_parameters=denied))
    assert permits(policy, data) is expected


def test_allowed_star_with_values_still_allows_any_parameter() -> None:
    """bao: `"*" = ["abc"]` alone allows every parameter with any value."""
    policy = acl(block("secret/foo", ["create"], allowed_parameters={"*": ["abc"]}))
    assert permits(policy, {"foo": "x"})


def test_denied_wins_over_allowed() -> None:
    """docs: "Any values specified here take precedence over allowed_parameters"."""
    policy = acl(
        block(
            "secret/foo",
            ["create"],
            allowed_parameters={"foo": []},
            denied_parameters={"foo": ["bad"]},
        )
    )
    assert permits(policy, {"foo": "ok"})
    assert not permits(policy, {"foo": "bad"})


def test_required_names_are_lowercased_but_request_keys_are_not() -> None:
    """bao: required "Foo" is met by a request key "foo" only, not by "Foo"."""
    policy = acl(block("secret/foo", ["create"], required_parameters=["Foo", "bar"]))
    assert permits(policy, {"foo": "1", "bar": "2"})
    assert not permits(policy, {"Foo": "1", "bar": "2"})
    assert not permits(policy, {"foo": "1"})


def test_kv_v2_parameters_are_the_top_level_keys() -> None:
    """bao: for KV v2 the parameters are `data` and `options`, not the secret's own keys."""
    policy = acl(
        block(
            "secret/*",
            ["create", "update"],
            allowed_parameters={"data": [], "options": []},
            denied_parameters={"password": []},
        )
    )
    path = "secret/data/app"
    assert permits(policy, {"data": {"password": "x"}}, path=path)
    assert permits(policy, {"data": {}, "options": {"cas": 1}}, path=path)
    assert not permits(policy, {"data": {}, "extra": 1}, path=path)


# -- which rule decides, and merging -------------------------------------------------------


def test_only_the_deciding_rule_constrains() -> None:
    """bao: the exact rule's (lack of) constraints decide, not the broader glob's."""
    policy = acl(
        'path "kv/*" { capabilities = ["create"] denied_parameters = { "a" = [] } }\n'
        'path "kv/x" { capabilities = ["create"] }\n'
        'path "kv/y*" { capabilities = ["create"] allowed_parameters = { "b" = [] } }\n'
    )
    assert permits(policy, {"a": "1"}, path="kv/x")
    assert not permits(policy, {"a": "1"}, path="kv/z")
    assert not permits(policy, {"a": "1"}, path="kv/yy")
    assert permits(policy, {"b": "1"}, path="kv/yy")


def test_constraints_of_one_policy_bind_the_capabilities_of_another() -> None:
    """bao: same pattern, a plain `create` and a constrained `read`: create is constrained."""
    policy = acl(
        'path "kv/*" { capabilities = ["create"] }',
        'path "kv/*" { capabilities = ["read"] allowed_parameters = { "a" = [] } }',
    )
    assert permits(policy, {"a": "1"}, path="kv/x")
    assert not permits(policy, {"b": "1"}, path="kv/x")


@pytest.mark.parametrize(
    ("first", "second", "cases"),
    [
        pytest.param(
            {"allowed_parameters": {"a": ["1"]}},
            {"allowed_parameters": {"a": ["2"], "b": ["3"]}},
            [({"a": "1"}, True), ({"a": "2"}, True), ({"a": "3"}, False), ({"b": "4"}, False)],
            id="allowed-values-append",
        ),
        pytest.param(
            {"allowed_parameters": {"a": ["1"]}},
            {"allowed_parameters": {"a": []}},
            [({"a": "9"}, True)],
            id="allowed-empty-list-wins",
        ),
        pytest.param(
            {"denied_parameters": {"a": ["1"]}},
            {"denied_parameters": {"a": ["2"]}},
            [({"a": "1"}, False), ({"a": "2"}, False), ({"a": "3"}, True)],
            id="denied-values-append",
        ),
        pytest.param(
            {"denied_parameters": {"d": ["x"]}},
            {"denied_parameters": {"d": []}},
            [({"d": "y"}, False)],
            id="denied-empty-list-wins",
        ),
        pytest.param(
            {"required_parameters": ["a"]},
            {"required_parameters": ["b"]},
            [({"a": "1"}, False), ({"a": "1", "b": "2"}, True)],
            id="required-united",
        ),
        pytest.param(
            {"allowed_parameters": {}},
            {"denied_parameters": {}},
            [({"anything": "1"}, True)],
            id="empty-maps-are-no-constraint",
        ),
    ],
)
@pytest.mark.parametrize("same_policy", [False, True], ids=["two-policies", "one-policy"])
@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
def test_rules_of_one_pattern_merge_their_constraints(
    first: dict[str, Any],
    second: dict[str, Any],
    cases: list[tuple[dict[str, Any], bool]],
    same_policy: bool,
    reverse: bool,
) -> None:
    """bao: the same results with the blocks in two policies or twice in one, in any order."""
    blocks = [
        'path "kv/*" ' + _hcl({"capabilities": ["create", "update"], **first}),
        'path "kv/*" ' + _hcl({"capabilities": ["create"], **second}),
    ]
    if reverse:
        blocks.reverse()
    policy = acl("\n".join(blocks)) if same_policy else acl(*blocks)
    for data, expected in cases:
        assert permits(policy, data, path="kv/x") is expected, data


def _hcl(body: dict[str, Any]) -> str:
    """An HCL block body: JSON values are valid HCL, and `k = v` lines join them."""
    lines = []
    for key, value in body.items():
        if isinstance(value, dict):
            inner = " ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{key} = {{ {inner} }}")
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "{\n" + "\n".join(lines) + "\n}"


def test_deny_on_the_same_pattern_drops_the_constraints_and_denies() -> None:
    policy = acl(
        'path "kv/*" { capabilities = ["create"] allowed_parameters = { "a" = [] } }',
        'path "kv/x" { capabilities = ["deny"] }',
        'path "kv/x" { capabilities = ["create"] }',
    )
    assert not permits(policy, {"a": "1"}, path="kv/x")
    assert not permits(policy, {"b": "1"}, path="kv/y")


# -- parsing -------------------------------------------------------------------------------


def test_json_null_in_a_value_list_is_refused() -> None:
    """bao: "unexpected token while parsing list: NULL"."""
    with pytest.raises(InvalidRequestError, match="strings, numbers or booleans"):
        Policy.parse("p", block("secret/foo", ["create"], allowed_parameters={"a": [None]}))


# -- properties ----------------------------------------------------------------------------

names = st.sampled_from(["a", "b", "c", "*", "A"])
values = st.one_of(
    st.sampled_from(["x", "xy", "yx", "", "*"]), st.booleans(), st.integers(-1, 2), st.none()
)
listed = st.one_of(st.sampled_from(["x", "x*", "*x", "*x*", "*", ""]), st.booleans())
parameter_maps = st.dictionaries(names, st.lists(listed, max_size=3), max_size=3)
constraint_sets = st.fixed_dictionaries(
    {},
    optional={
        "allowed_parameters": parameter_maps,
        "denied_parameters": parameter_maps,
        "required_parameters": st.lists(names, max_size=2, unique=True),
    },
)
requests = st.one_of(st.none(), st.dictionaries(names, values, max_size=3))


def _lowered(constraints: dict[str, Any]) -> dict[str, Any]:
    # A policy may not name a parameter twice once lowercased ("a" and "A").
    result = dict(constraints)
    for key in ("allowed_parameters", "denied_parameters"):
        if key in result:
            result[key] = {name.lower(): items for name, items in result[key].items()}
    return result


@given(st.lists(constraint_sets.map(_lowered), min_size=1, max_size=3), requests)
def test_merging_is_independent_of_policy_order(
    blocks: list[dict[str, Any]], data: dict[str, Any] | None
) -> None:
    documents = [block("kv/*", ["create"], **constraints) for constraints in blocks]
    forward = permits(acl(*documents), data, path="kv/x")
    assert permits(acl(*reversed(documents)), data, path="kv/x") is forward


@given(constraint_sets.map(_lowered), st.dictionaries(names, values, min_size=1, max_size=3))
def test_a_parameter_denied_with_any_value_is_always_refused(
    constraints: dict[str, Any], data: dict[str, Any]
) -> None:
    name = next(iter(data)).lower()
    denied = {**constraints.get("denied_parameters", {}), name: []}
    policy = acl(block("kv/*", ["create"], **{**constraints, "denied_parameters": denied}))
    assert not permits(policy, data, path="kv/x")


@given(constraint_sets.map(_lowered), requests)
def test_a_rule_with_no_capability_for_it_refuses_whatever_the_data(
    constraints: dict[str, Any], data: dict[str, Any] | None
) -> None:
    policy = acl(block("kv/*", ["read"], **constraints))
    assert not permits(policy, data, path="kv/x", capability="create")


@given(st.text("ab-é", max_size=4), st.text("ab-é*", max_size=6))
def test_value_globs_are_prefix_suffix_and_infix_matches(core: str, value: str) -> None:
    """Checked against the definition, for every pattern shape built around `core`."""
    shapes = {
        f"{core}*": value.startswith(core),
        f"*{core}": value.endswith(core),
        f"*{core}*": core in value,
    }
    for pattern, expected in shapes.items():
        if len(pattern) < 2:  # "*": only itself (tested above)
            continue
        policy = acl(block("kv/*", ["create"], allowed_parameters={"a": [pattern]}))
        assert permits(policy, {"a": value}, path="kv/x") is expected, pattern
