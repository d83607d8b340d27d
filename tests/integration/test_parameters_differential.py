"""Unrecognized parameters against a real OpenBao: the same requests with keys no endpoint
declares get the same status and the same `warnings` from tenantvault (one tenant) and from
`bao server -dev` (one namespace), on transit, token and sys endpoints. (KV v2 compares whole
answers in test_differential.py::test_unknown_parameters_are_ignored_with_a_warning.)"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.integration.conftest import OpenBaoServer, TenantVaultServer
from tests.integration.test_differential import Pair, Step, Target, new_pair

pytestmark = pytest.mark.integration

PLAINTEXT = base64.b64encode(b"hello").decode()
POLICY = 'path "secret/*" { capabilities = ["read"] }'


@pytest.fixture
def pair(
    clients: tuple[httpx.Client, httpx.Client],
    tenantvault_server: TenantVaultServer,
    openbao_server: OpenBaoServer,
) -> Pair:
    pair = new_pair(clients, tenantvault_server, openbao_server)
    for target in (pair.ours, pair.bao):
        mounts = target.send(Step("GET", "sys/mounts"))
        if "transit/" not in (mounts.body or {}).get("data", {}):
            mounted = target.send(Step("POST", "sys/mounts/transit", {"type": "transit"}))
            assert mounted.status == 204, mounted
    return pair


def _warnings(target: Target, step: Step) -> tuple[int, Any]:
    outcome = target.send(step)
    warnings = outcome.body.get("warnings") if isinstance(outcome.body, dict) else None
    return outcome.status, warnings


STEPS = [
    Step("POST", "transit/keys/k", {"bogus": 1}),
    Step("POST", "transit/keys/k/config", {"deletion_allowed": True, "bogus": 1}),
    Step("POST", "transit/keys/k/rotate", {"bogus": 1}),
    Step("GET", "transit/keys/k", params={"bogus": "1"}),
    Step("POST", "transit/encrypt/k", {"plaintext": PLAINTEXT, "zeta": 1, "alpha": 2}),
    Step(
        "POST",
        "transit/encrypt/k",
        {"batch_input": [{"plaintext": PLAINTEXT}], "bogus": 1},
    ),
    Step("POST", "transit/hmac/k", {"input": PLAINTEXT, "bogus": 1}),
    Step("POST", "transit/random/8", {"bogus": 1}),
    Step("POST", "transit/hash", {"input": PLAINTEXT, "bogus": 1}),
    Step("POST", "auth/token/create", {"policies": ["default"], "bogus": 1}),
    Step("POST", "auth/token/lookup-self", {"bogus": 1}),
    Step("POST", "sys/policies/acl/p", {"policy": POLICY, "bogus": 1}),
    Step("POST", "sys/capabilities-self", {"paths": ["secret/data/x"], "bogus": 1}),
    Step("POST", "sys/mounts/kv1", {"type": "kv", "bogus": 1}),
    Step("POST", "sys/mounts/kv1/tune", {"description": "tuned", "bogus": 1}),
    Step("POST", "kv1/one", {"a": "1", "bogus": 1}),
]


def test_unknown_parameters_get_openbaos_warning(pair: Pair) -> None:
    differences = []
    for step in STEPS:
        ours, theirs = _warnings(pair.ours, step), _warnings(pair.bao, step)
        if ours != theirs:
            differences.append(f"{step}\n   tenantvault {ours}\n   openbao     {theirs}")
    assert not differences, "\n".join(differences)
