"""Issue 9: parameter constraints decide as in OpenBao. The same policy and the same raw HTTP
requests, with a namespace token holding that policy, get the same status from tenantvault
(one tenant) and from a real `bao server -dev` (one namespace with kv-v2 and transit).

The policies are the documented examples of OpenBao's docs/concepts/policies.mdx moved onto
paths both servers serve, and the edge cases found by experiment (tests/unit/
test_policy_parameters.py holds the same semantics at unit level)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
import pytest

from tests.integration._support import remember_secret, unique_name
from tests.integration.conftest import OpenBaoServer, TenantVaultServer
from tests.integration.test_differential import MERGE_PATCH, Step, Target, _open_namespace

pytestmark = pytest.mark.integration

ALL = '["create", "read", "update", "patch", "delete", "list"]'


def post(path: str, body: object = None) -> Step:
    return Step("POST", path, body)


def get(path: str, **params: str) -> Step:
    return Step("GET", path, params=params)


@dataclass(frozen=True)
class Case:
    """Policies for one token, and the requests it sends with them."""

    policies: tuple[str, ...]
    steps: tuple[Step, ...]
    # Steps OpenBao lets through and we refuse on purpose (403): where its rule fails open.
    stricter: frozenset[int] = frozenset()


CASES = {
    # docs: "required_parameters - A list of parameters that must be specified." On KV v2
    # the parameters are `data` and `options`; reads are checked too.
    "required": Case(
        (f'path "secret/*" {{ capabilities = {ALL} required_parameters = ["options"] }}',),
        (
            post("secret/data/a", {"data": {"k": "v"}}),
            post("secret/data/a", {"data": {"k": "v"}, "options": {}}),
            get("secret/data/a"),
            Step("LIST", "secret/metadata/"),
            Step("DELETE", "secret/data/a"),
        ),
    ),
    # docs: "If any keys are specified, all non-specified parameters will be denied".
    "allowed-names": Case(
        (f'path "secret/*" {{ capabilities = {ALL} allowed_parameters = {{ "data" = [] }} }}',),
        (
            post("secret/data/a", {"data": {"password": "x"}}),
            post("secret/data/a", {"data": {"k": "v"}, "options": {"cas": 1}}),
            get("secret/data/a"),
            get("secret/data/a", version="1"),
            Step("PATCH", "secret/data/a", {"data": {"k": "w"}}, content_type=MERGE_PATCH),
            Step("LIST", "secret/metadata/"),
        ),
    ),
    # docs: "Setting a parameter with a value of the empty list denies any changes to that
    # parameter." Only the deciding rule constrains: the exact path has no constraint.
    "denied-name-and-most-specific-rule": Case(
        (
            f'path "secret/*" {{ capabilities = {ALL} denied_parameters = {{ "options" = [] }} }}'
            f'\npath "secret/data/open" {{ capabilities = {ALL} }}',
        ),
        (
            post("secret/data/a", {"data": {"k": "v"}, "options": {"cas": 0}}),
            post("secret/data/a", {"data": {"k": "v"}, "Options": {"cas": 0}}),
            post("secret/data/a", {"data": {"options": "inside the secret"}}),
            post("secret/data/open", {"data": {"k": "v"}, "options": {"cas": 0}}),
            Step(
                "PATCH",
                "secret/data/a",
                {"data": {"k": "w"}, "options": {"cas": 1}},
                content_type=MERGE_PATCH,
            ),
        ),
    ),
    # docs: "the rotation period must be "8h", "24h", or "5d". Any other value will result
    # in an error."
    "allowed-values": Case(
        (
            'path "transit/keys/*" { capabilities = ["create", "update", "read"]\n'
            '  allowed_parameters = { "auto_rotate_period" = ["8h", "24h", "5d"] } }',
        ),
        (
            post("transit/keys/k1", {"auto_rotate_period": "8h"}),
            post("transit/keys/k2", {"auto_rotate_period": "1h"}),
            post("transit/keys/k3", {"type": "aes256-gcm96"}),
            post("transit/keys/k4"),
            post("transit/keys/k1/config", {"auto_rotate_period": "24h"}),
            post("transit/keys/k1/config", {"AUTO_ROTATE_PERIOD": "5d"}),
        ),
    ),
    # docs: "Setting to "*" will deny any parameter." ... "the created key will have all
    # parameters set to default values."
    "denied-star": Case(
        (
            'path "transit/keys/*" { capabilities = ["create", "update"]\n'
            '  denied_parameters = { "*" = [] } }',
        ),
        (
            post("transit/keys/k1", {"type": "aes256-gcm96"}),
            post("transit/keys/k2"),
            post("transit/keys/k3", {}),
        ),
    ),
    # docs: "unless the parameter "*" is set to an empty array, which will allow all other
    # parameters to be modified. Parameters with specific values will still be restricted".
    "allowed-star-and-values": Case(
        (
            'path "transit/keys/*" { capabilities = ["create", "update"]\n'
            '  allowed_parameters = { "type" = ["aes256-gcm96"] "*" = [] } }',
        ),
        (
            post("transit/keys/k1", {"type": "aes256-gcm96", "exportable": False}),
            post("transit/keys/k2", {"exportable": False}),
            post("transit/keys/k3", {"type": "chacha20-poly1305"}),
        ),
    ),
    # docs: "Parameter values also support prefix/suffix globbing"; a lone "*" is literal.
    "globs": Case(
        (
            'path "transit/keys/p*" { capabilities = ["create", "update"]'
            ' allowed_parameters = { "type" = ["aes*"] } }\n'
            'path "transit/keys/s*" { capabilities = ["create", "update"]'
            ' allowed_parameters = { "type" = ["*-gcm96"] } }\n'
            'path "transit/keys/l*" { capabilities = ["create", "update"]'
            ' allowed_parameters = { "type" = ["*"] } }\n',
        ),
        (
            post("transit/keys/p1", {"type": "aes128-gcm96"}),
            post("transit/keys/p2", {"type": "chacha20-poly1305"}),
            post("transit/keys/s1", {"type": "aes256-gcm96"}),
            post("transit/keys/s2", {"type": "chacha20-poly1305"}),
            post("transit/keys/l1", {"type": "aes256-gcm96"}),
        ),
    ),
    # Value types: booleans match booleans, never strings; request numbers match no listed
    # number (Vault decodes them as json.Number), so in OpenBao a denied number denies
    # nothing. Here it denies (step 6): a denial never fails open.
    "value-types": Case(
        (
            'path "transit/keys/a/config" { capabilities = ["update"]\n'
            '  allowed_parameters = { "deletion_allowed" = [true] "min_decryption_version" = [1] }'
            " }\n"
            'path "transit/keys/d/config" { capabilities = ["update"]\n'
            '  denied_parameters = { "min_decryption_version" = [1] "exportable" = [true] } }\n'
            'path "transit/keys/*" { capabilities = ["create", "update"] }',
        ),
        (
            post("transit/keys/a"),
            post("transit/keys/d"),
            post("transit/keys/a/config", {"deletion_allowed": True}),
            post("transit/keys/a/config", {"deletion_allowed": "true"}),
            post("transit/keys/a/config", {"deletion_allowed": False}),
            post("transit/keys/a/config", {"min_decryption_version": 1}),
            post("transit/keys/d/config", {"min_decryption_version": 1}),
            post("transit/keys/d/config", {"exportable": True}),
        ),
        stricter=frozenset({6}),
    ),
    # Several policies on one path merge: value lists append, required names unite.
    "merged-policies": Case(
        (
            'path "transit/keys/*" { capabilities = ["create", "update"]'
            ' allowed_parameters = { "type" = ["aes256-gcm96"] } }',
            'path "transit/keys/*" { capabilities = ["create", "update"]'
            ' allowed_parameters = { "type" = ["chacha20-poly1305"] }'
            ' required_parameters = ["type"] }',
        ),
        (
            post("transit/keys/k1", {"type": "aes256-gcm96"}),
            post("transit/keys/k2", {"type": "chacha20-poly1305"}),
            post("transit/keys/k3", {"type": "aes128-gcm96"}),
            post("transit/keys/k4"),
        ),
    ),
    # A required name counts only when the request spells it in lower case.
    "required-case": Case(
        (
            'path "transit/keys/*" { capabilities = ["create", "update"]\n'
            '  required_parameters = ["Type"] }',
        ),
        (
            post("transit/keys/k1", {"Type": "aes256-gcm96"}),
            post("transit/keys/k2", {"type": "aes256-gcm96"}),
        ),
    ),
    # docs: "the "allowed_policies" parameter value cannot be "admin"" — here on policies
    # themselves: no policy text that mentions sudo.
    "denied-glob-on-sys": Case(
        (
            'path "sys/policies/acl/*" { capabilities = ["create", "update", "read"]\n'
            '  denied_parameters = { "policy" = ["*sudo*"] } }',
        ),
        (
            Step("PUT", "sys/policies/acl/a", {"policy": 'path "x" { capabilities = ["read"] }'}),
            Step("PUT", "sys/policies/acl/b", {"policy": 'path "x" { capabilities = ["sudo"] }'}),
        ),
    ),
}


def _token_with(client: httpx.Client, root: str, namespace: str, policies: tuple[str, ...]) -> str:
    headers = {"X-Vault-Token": root, "X-Vault-Namespace": namespace}
    names = []
    for index, text in enumerate(policies):
        name = f"p{index}"
        response = client.put(
            f"/v1/sys/policies/acl/{name}", headers=headers, json={"policy": text}
        )
        assert response.status_code == 204, response.text
        names.append(name)
    response = client.post("/v1/auth/token/create", headers=headers, json={"policies": names})
    assert response.status_code == 200, response.text
    return remember_secret(response.json()["auth"]["client_token"])


def _targets(
    clients: tuple[httpx.Client, httpx.Client],
    tenantvault_server: TenantVaultServer,
    openbao_server: OpenBaoServer,
    policies: tuple[str, ...],
) -> tuple[Target, Target]:
    ours, bao = clients
    namespace = unique_name()
    _open_namespace(ours, tenantvault_server.root_token, namespace, mount=False)
    _open_namespace(bao, openbao_server.root_token, namespace, mount=True)
    response = bao.post(
        "/v1/sys/mounts/transit",
        headers={"X-Vault-Token": openbao_server.root_token, "X-Vault-Namespace": namespace},
        json={"type": "transit"},
    )
    assert response.status_code == 204, response.text
    return (
        Target(
            "tenantvault",
            ours,
            _token_with(ours, tenantvault_server.root_token, namespace, policies),
            namespace,
        ),
        Target(
            "openbao",
            bao,
            _token_with(bao, openbao_server.root_token, namespace, policies),
            namespace,
        ),
    )


@pytest.mark.parametrize("name", list(CASES))
def test_parameter_constraints_decide_as_in_openbao(
    name: str,
    clients: tuple[httpx.Client, httpx.Client],
    tenantvault_server: TenantVaultServer,
    openbao_server: OpenBaoServer,
) -> None:
    case = CASES[name]
    ours, bao = _targets(clients, tenantvault_server, openbao_server, case.policies)
    transcript, differences = [], []
    for index, step in enumerate(case.steps):
        mine, theirs = ours.send(step), bao.send(step)
        line = f"#{index} {step}\n   tenantvault {mine}\n   openbao     {theirs}"
        transcript.append(line)
        if index in case.stricter:
            assert theirs.status < 300, f"OpenBao no longer fails open here:\n{line}"
            assert mine.status == 403, line
        elif mine.status != theirs.status:
            differences.append(line)
        elif mine.status == 403:
            # A refusal is Vault's plain "permission denied", and says nothing more.
            assert "permission denied" in json.dumps(mine.body), line
    assert not differences, (
        f"{len(differences)} of {len(case.steps)} statuses differ:\n"
        + "\n".join(differences)
        + "\n\nthe whole sequence:\n"
        + "\n".join(transcript)
    )
