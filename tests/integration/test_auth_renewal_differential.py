"""Renewing an AppRole login's token, against a real `bao server -dev`: the same requests to a
tenantvault tenant and an OpenBao namespace of the same name get the same statuses, error
texts, granted TTLs and display name — renewal under the role's current TTL and period,
and a refusal by every renew endpoint once the role is deleted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.conftest import OpenBaoServer, TenantVaultServer
from tests.integration.test_differential import Pair, Step, Target, new_pair

pytestmark = pytest.mark.integration

ROLE = "auth/approle/role/app"


def _call(target: Target, method: str, path: str, body: Any = None, token: str = "") -> Any:
    if token:
        target = Target(target.name, target.client, token, target.namespace)
    outcome = target.send(Step(method, path, body))
    return outcome.status, outcome.body


def _seen(status: int, body: Any) -> tuple[int, Any]:
    """What must match: the status, the errors, and what a renewal grants."""
    if not isinstance(body, dict):
        return status, body
    if "errors" in body:
        return status, body["errors"]
    auth = body.get("auth") or {}
    data = body.get("data") or {}
    return status, {
        "lease_duration": auth.get("lease_duration"),
        "renewable": auth.get("renewable"),
        "policies": auth.get("policies"),
        "display_name": data.get("display_name"),
        "path": data.get("path"),
        "meta": data.get("meta"),
    }


def _scenario(target: Target) -> list[tuple[int, Any]]:
    steps: list[tuple[int, Any]] = []

    def step(method: str, path: str, body: Any = None, token: str = "") -> Any:
        status, answer = _call(target, method, path, body, token)
        steps.append(_seen(status, answer))
        return answer

    step("POST", "sys/auth/approle", {"type": "approle"})
    step("POST", ROLE, {"token_policies": "default", "token_ttl": "1h", "token_max_ttl": "3h"})
    step("POST", f"{ROLE}/role-id", {"role_id": "renewal-role-id"})
    step("POST", f"{ROLE}/custom-secret-id", {"secret_id": "renewal-secret-id"})
    login = step(
        "POST",
        "auth/approle/login",
        {"role_id": "renewal-role-id", "secret_id": "renewal-secret-id"},
    )
    token, accessor = login["auth"]["client_token"], login["auth"]["accessor"]
    step("GET", "auth/token/lookup-self", token=token)
    step("POST", "auth/token/renew-self", token=token)
    # The role's TTL lowered: a renewal without an increment gets the new TTL.
    step("POST", ROLE, {"token_ttl": "10m", "token_max_ttl": "3h"})
    step("POST", "auth/token/renew-self", token=token)
    step("POST", "auth/token/renew", {"token": token})
    step("POST", "auth/token/renew-accessor", {"accessor": accessor})
    # A period set later: renewed to the period, whatever the increment.
    step("POST", ROLE, {"token_ttl": "0", "token_max_ttl": "0", "token_period": "30m"})
    step("POST", "auth/token/renew-self", {"increment": "5m"}, token=token)
    step("DELETE", ROLE)
    step("POST", "auth/token/renew-self", token=token)
    step("POST", "auth/token/renew", {"token": token})
    step("POST", "auth/token/renew-accessor", {"accessor": accessor})
    step("GET", "auth/token/lookup-self", token=token)
    return steps


def test_renewing_a_logins_token_answers_like_openbao(
    clients: tuple[httpx.Client, httpx.Client],
    tenantvault_server: TenantVaultServer,
    openbao_server: OpenBaoServer,
) -> None:
    pair: Pair = new_pair(clients, tenantvault_server, openbao_server)
    theirs, mine = _scenario(pair.bao), _scenario(pair.ours)
    # The reference itself, so that a change in OpenBao shows up here and not as a mystery.
    gone = [
        '1 error occurred:\n\t* failed to renew entry: role "app" does not exist during renewal\n\n'
    ]
    assert theirs[-4] == (500, gone)
    differences = [
        (index, got, expected)
        for index, (got, expected) in enumerate(zip(mine, theirs, strict=True))
        if got != expected
    ]
    assert not differences
