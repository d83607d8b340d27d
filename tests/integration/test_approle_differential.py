"""The differential test extended to AppRole and sys/auth: the same requests, as raw HTTP, to
a tenantvault tenant and to a namespace of a real `bao server -dev` get the same statuses and
the same `data` shapes (error texts word for word). Role-ids and secret-ids are set by the
test (`role-id`, `custom-secret-id`) so that later steps can name them; random values (uuids,
accessors, tokens, times) are compared by shape only."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.integration.conftest import OpenBaoServer, TenantVaultServer
from tests.integration.test_differential import Outcome, Pair, Step, new_pair
from tests.integration.test_mounts_differential import _differing

pytestmark = pytest.mark.integration

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_ACCESSOR = re.compile(r"auth_[a-z]+_[0-9a-f]{8}\Z")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\Z")
# Random by construction on both sides (compared by presence and type only).
_RANDOM_KEYS = frozenset({"client_token", "accessor", "request_id"})


def _shape(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {
            k: _shape(v, k)
            for k, v in value.items()
            # token/ is built in: a namespace of OpenBao shows it as `ns_token` with a uuid,
            # tenantvault as the root namespace's (as sys/internal/ui/mounts does).
            if k not in ("running_plugin_version", "request_id", "token/")
        }
    if isinstance(value, list):
        return [_shape(item) for item in value]
    if key == "entity_id":
        # A deliberate difference: tenantvault has no identity store, so no entities.
        return "<entity>"
    if isinstance(value, str):
        if key in _RANDOM_KEYS and value:
            return "<random>"
        if _UUID.match(value):
            return "<uuid>"
        if _ACCESSOR.match(value):
            return "<accessor>"
        if _TIME.match(value) and not value.startswith("0001-"):
            return "<time>"
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
            differences.append(f"{line}\n   differing: {_differing(ours.body, theirs.body)}")
    if differences:
        pytest.fail(
            f"tenantvault and OpenBao differ on {len(differences)} steps:\n"
            + "\n".join(differences)
        )


@pytest.fixture
def pair(
    clients: tuple[httpx.Client, httpx.Client],
    tenantvault_server: TenantVaultServer,
    openbao_server: OpenBaoServer,
) -> Pair:
    return new_pair(clients, tenantvault_server, openbao_server)


def _login(role_id: str, secret_id: str | None = None) -> Step:
    body = (
        {"role_id": role_id} if secret_id is None else {"role_id": role_id, "secret_id": secret_id}
    )
    return Step("POST", "auth/approle/login", body)


def test_sys_auth(pair: Pair) -> None:
    _run(
        pair,
        [
            Step("POST", "sys/auth/approle", {"type": "approle", "description": "m"}),
            Step("POST", "sys/auth/other", {"type": "approle", "config": {"token_type": "batch"}}),
            Step("GET", "sys/auth"),
            Step("GET", "sys/auth/approle"),
            Step("GET", "sys/auth/approle/tune"),
            Step("POST", "sys/auth/approle/tune", {"default_lease_ttl": "1h"}),
            Step("GET", "sys/auth/approle/tune"),
            Step("POST", "sys/auth/approle/tune", {"token_type": "bogus"}),
            Step("POST", "sys/auth/approle", {"type": "approle"}),
            Step("POST", "sys/auth/token", {"type": "approle"}),
            Step("POST", "sys/auth/x", {"type": "token"}),
            Step("POST", "sys/auth/x", {"type": "nope"}),
            Step("POST", "sys/auth/x", {}),
            Step("DELETE", "sys/auth/token"),
            Step("GET", "sys/auth/nope"),
            Step("GET", "sys/auth/nope/tune"),
            Step("GET", "sys/mounts/auth/approle/tune"),
            Step("POST", "sys/mounts/auth/approle/tune", {"max_lease_ttl": "2h"}),
            Step("GET", "sys/auth/approle/tune"),
            Step("GET", "sys/mounts/auth/approle"),
            Step("DELETE", "sys/auth/other"),
            Step("DELETE", "sys/auth/other"),
            Step("GET", "sys/auth"),
        ],
    )


def test_role_field_endpoints(pair: Pair) -> None:
    role = "auth/approle/role/f"
    fields = [
        ("policies", {"token_policies": "x,y"}),
        ("secret-id-num-uses", {"secret_id_num_uses": 4}),
        ("secret-id-ttl", {"secret_id_ttl": "1h"}),
        ("token-ttl", {"token_ttl": "10m"}),
        ("token-max-ttl", {"token_max_ttl": "1h"}),
        ("token-num-uses", {"token_num_uses": 2}),
        ("bind-secret-id", {"bind_secret_id": True}),
        ("secret-id-bound-cidrs", {"secret_id_bound_cidrs": ["10.0.0.0/8"]}),
        ("token-bound-cidrs", {"token_bound_cidrs": ["10.0.0.1"]}),
        ("bound-cidr-list", {"bound_cidr_list": ["10.0.0.0/16"]}),
        ("period", {"period": "30m"}),
    ]
    steps = [
        Step("POST", "sys/auth/approle", {"type": "approle"}),
        Step("POST", role, {"token_policies": "a"}),
        Step("GET", f"{role}/local-secret-ids"),
    ]
    for sub, body in fields:
        steps += [
            Step("GET", f"{role}/{sub}"),
            Step("POST", f"{role}/{sub}", body),
            Step("GET", f"{role}/{sub}"),
        ]
    steps += [Step("GET", role)]
    steps += [Step("DELETE", f"{role}/{sub}") for sub, _ in fields]
    steps += [Step("GET", role)]
    _run(pair, steps)


def test_roles_secret_ids_and_login(pair: Pair) -> None:
    role = "auth/approle/role/app"
    _run(
        pair,
        [
            Step("POST", "sys/auth/approle", {"type": "approle"}),
            Step("LIST", "auth/approle/role"),
            Step(
                "POST",
                role,
                {
                    "token_policies": "app",
                    "token_ttl": "20m",
                    "secret_id_num_uses": 3,
                    "secret_id_ttl": "1h",
                },
            ),
            Step("GET", role),
            Step("LIST", "auth/approle/role"),
            Step("GET", "auth/approle/role/nope"),
            Step("POST", "auth/approle/role/bad", {"secret_id_num_uses": -1}),
            Step("POST", "auth/approle/role/bad", {"token_ttl": "2h", "token_max_ttl": "1h"}),
            Step("POST", "auth/approle/role/bad", {"bind_secret_id": False}),
            Step("POST", "auth/approle/role/bad", {"token_type": "weird"}),
            Step("POST", "auth/approle/role/bad", {"secret_id_bound_cidrs": "10.0.0.1"}),
            Step("POST", "auth/approle/role/warn", {"token_type": "default-batch"}),
            Step(
                "POST",
                "auth/approle/role/legacy",
                {"policies": "a,b", "period": "1h", "bound_cidr_list": "10.0.0.0/8"},
            ),
            Step("GET", "auth/approle/role/legacy"),
            Step("POST", f"{role}/role-id", {"role_id": "fixed-role-id"}),
            Step("GET", f"{role}/role-id"),
            Step("POST", "auth/approle/role/legacy/role-id", {"role_id": "fixed-role-id"}),
            Step("POST", f"{role}/role-id", {}),
            Step("GET", "auth/approle/role/nope/role-id"),
            Step("POST", f"{role}/secret-id", {"num_uses": 5}),
            Step("POST", f"{role}/secret-id", {"ttl": "2h"}),
            Step("POST", f"{role}/secret-id", {"metadata": "notjson"}),
            Step("POST", f"{role}/secret-id", {"num_uses": 2, "metadata": '{"k":"v"}'}),
            Step("POST", f"{role}/custom-secret-id", {"secret_id": "s3cret-one", "num_uses": 2}),
            Step("POST", f"{role}/custom-secret-id", {"secret_id": "s3cret-one", "num_uses": 1}),
            Step("POST", f"{role}/custom-secret-id", {}),
            Step("POST", "auth/approle/role/nope/secret-id", {}),
            Step("POST", "auth/approle/role/nope/custom-secret-id", {"secret_id": "x"}),
            Step("LIST", "auth/approle/role/nope/secret-id"),
            Step("POST", f"{role}/secret-id/lookup", {"secret_id": "s3cret-one"}),
            Step("POST", f"{role}/secret-id/lookup", {"secret_id": "nope"}),
            Step("POST", f"{role}/secret-id/lookup", {}),
            Step("POST", f"{role}/secret-id-accessor/lookup", {"secret_id_accessor": "nope"}),
            Step("POST", f"{role}/secret-id-accessor/destroy", {"secret_id_accessor": "nope"}),
            _login("fixed-role-id", "s3cret-one"),
            Step("POST", f"{role}/secret-id/lookup", {"secret_id": "s3cret-one"}),
            _login("fixed-role-id", "s3cret-one"),
            _login("fixed-role-id", "s3cret-one"),
            Step("POST", f"{role}/secret-id/lookup", {"secret_id": "s3cret-one"}),
            _login("fixed-role-id", "wrong"),
            _login("nope", "wrong"),
            _login("fixed-role-id"),
            Step("POST", "auth/approle/login", {}),
            Step("POST", f"{role}/custom-secret-id", {"secret_id": "s3cret-two", "num_uses": 1}),
            Step("POST", f"{role}/secret-id/destroy", {"secret_id": "s3cret-two"}),
            Step("POST", f"{role}/secret-id/destroy", {"secret_id": "s3cret-two"}),
            _login("fixed-role-id", "s3cret-two"),
            Step("POST", "auth/approle/tidy/secret-id"),
            Step("DELETE", role),
            Step("DELETE", role),
            _login("fixed-role-id", "s3cret-one"),
        ],
    )


def test_cidr_refusals(pair: Pair) -> None:
    """Both servers see the test as 127.0.0.1: every CIDR refusal reads the same."""
    fenced, open_ = "auth/approle/role/fenced", "auth/approle/role/open"
    _run(
        pair,
        [
            Step("POST", "sys/auth/approle", {"type": "approle"}),
            Step("POST", fenced, {"secret_id_bound_cidrs": ["10.0.0.0/8"]}),
            Step("POST", f"{fenced}/role-id", {"role_id": "fenced-id"}),
            Step("POST", f"{fenced}/custom-secret-id", {"secret_id": "fenced-secret"}),
            _login("fenced-id", "fenced-secret"),
            Step("POST", open_, {"token_policies": "app"}),
            Step("POST", f"{open_}/role-id", {"role_id": "open-id"}),
            Step(
                "POST",
                f"{open_}/custom-secret-id",
                {"secret_id": "limited", "num_uses": 2, "cidr_list": ["10.0.0.0/8"]},
            ),
            Step(
                "POST",
                f"{open_}/custom-secret-id",
                {"secret_id": "unlimited", "cidr_list": ["10.0.0.0/8"]},
            ),
            _login("open-id", "limited"),
            _login("open-id", "unlimited"),
            Step("POST", f"{open_}/secret-id/lookup", {"secret_id": "limited"}),
            Step(
                "POST",
                f"{fenced}/custom-secret-id",
                {"secret_id": "wider", "cidr_list": ["11.0.0.0/8"]},
            ),
        ],
    )
