"""Use-limited and periodic tokens, and token trees under concurrency, over real HTTP against
`tenantvault serve` and a real `bao server -dev` (issue 8: items 1, 3, 4 and 10).

Tokens differ between the servers, so each scenario runs once per server, with that server's
own tokens, and the lists of answers must match.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.integration._support import assert_no_secret, remember_secret, unique_name
from tests.integration.conftest import OpenBaoServer, TenantVaultServer

pytestmark = pytest.mark.integration

MAKER = 'path "auth/token/*" { capabilities = ["create", "update", "read"] }'
SUDOER = 'path "auth/token/*" { capabilities = ["create", "update", "read", "sudo"] }'
CONCURRENT = 60


@dataclass
class Server:
    """One server and one namespace on it, spoken to in raw HTTP."""

    name: str
    client: httpx.AsyncClient
    root_token: str = field(repr=False)
    namespace: str = ""

    async def call(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        headers = {"X-Vault-Token": token, "X-Vault-Namespace": self.namespace}
        response = await self.client.request(method, f"/v1/{path}", json=body, headers=headers)
        answer = response.json() if response.content.strip() else None
        if response.status_code >= 400 and self.name == "tenantvault":
            assert_no_secret(response.text, "an error answer")
        return response.status_code, answer

    async def token(self, policy: str, **fields: Any) -> str:
        status, answer = await self.call(
            "POST", "auth/token/create", self.root_token, {"policies": [policy], **fields}
        )
        assert status == 200, answer
        return remember_secret(str(answer["auth"]["client_token"]))


async def _open(server: Server) -> Server:
    """A fresh namespace holding the `maker` and `sudoer` policies."""
    name = unique_name()
    status, answer = await server.call("POST", f"sys/namespaces/{name}", server.root_token)
    assert status == 200, answer
    server.namespace = name
    for policy, text in (("maker", MAKER), ("sudoer", SUDOER)):
        status, answer = await server.call(
            "PUT", f"sys/policies/acl/{policy}", server.root_token, {"policy": text}
        )
        assert status == 204, answer
    return server


@pytest.fixture
async def servers(
    tenantvault_server: TenantVaultServer, openbao_server: OpenBaoServer
) -> AsyncIterator[tuple[Server, Server]]:
    limits = httpx.Limits(max_connections=CONCURRENT + 10)
    async with (
        httpx.AsyncClient(base_url=tenantvault_server.addr, timeout=30, limits=limits) as ours,
        httpx.AsyncClient(base_url=openbao_server.addr, timeout=30, limits=limits) as bao,
    ):
        yield (
            await _open(Server("tenantvault", ours, tenantvault_server.root_token)),
            await _open(Server("openbao", bao, openbao_server.root_token)),
        )


def _shape(status: int, answer: Any) -> tuple[int, Any]:
    """What must match: the status, the error texts, and the token fields these tests set."""
    if not isinstance(answer, dict):
        return status, answer
    if "errors" in answer:
        return status, answer["errors"]
    auth = answer.get("auth") or {}
    data = answer.get("data") or {}
    lease = auth.get("lease_duration")
    return status, {
        "policies": auth.get("policies", data.get("policies")),
        # Periodic tokens get exactly their period. The 32-day default may be a second short
        # here: we cap a child at its parent's expiry, which began a moment earlier.
        "lease_duration": lease if lease is None or lease <= 7200 else "default",
        "num_uses": auth.get("num_uses", data.get("num_uses")),
        "period": data.get("period"),
    }


async def _limits_scenario(server: Server) -> list[tuple[int, Any]]:
    answers = []

    async def step(method: str, path: str, token: str, body: Any = None) -> None:
        answers.append(_shape(*await server.call(method, path, token, body)))

    # Item 1: a use-limited token mints nothing, and each refusal still counts as a use.
    limited = await server.token("sudoer", num_uses=3)
    await step("POST", "auth/token/create", limited, {"policies": ["sudoer"]})
    await step("POST", "auth/token/create-orphan", limited, {"policies": ["sudoer"]})
    await step("GET", "auth/token/lookup-self", limited)
    await step("GET", "auth/token/lookup-self", limited)
    last = await server.token("sudoer", num_uses=1)
    await step("POST", "auth/token/create", last, {"policies": ["sudoer"]})
    await step("GET", "auth/token/lookup-self", last)
    # Item 10: a period needs root or sudo; no period (or a zero one) needs neither.
    plain = await server.token("maker")
    for period in ("1h", 3600, "0", 0):
        await step("POST", "auth/token/create", plain, {"policies": ["maker"], "period": period})
    sudo = await server.token("sudoer")
    await step("POST", "auth/token/create", sudo, {"policies": ["sudoer"], "period": "1h"})
    await step(
        "POST", "auth/token/create", server.root_token, {"policies": ["maker"], "period": "2h"}
    )
    return answers


async def test_use_limited_and_periodic_tokens_answer_like_openbao(
    servers: tuple[Server, Server],
) -> None:
    """Items 1 and 10: the same requests get the same statuses and error texts."""
    ours, bao = servers
    theirs = await _limits_scenario(bao)
    # The reference itself, so that a change in OpenBao shows up here and not as a mystery.
    assert theirs[0] == (400, ["restricted use token cannot generate child tokens"])
    assert theirs[4] == (400, ["parent token lookup failed: no parent found"])
    assert theirs[6] == (400, ["root or sudo privileges required to create periodic token"])
    assert await _limits_scenario(ours) == theirs


async def _served(server: Server, uses: int) -> tuple[int, int]:
    """Of CONCURRENT simultaneous requests with a token of `num_uses=uses`: how many were
    served (200), and how many refused as a used-up token is (403 "permission denied")."""
    token = await server.token("default", num_uses=uses)
    answers = await asyncio.gather(
        *(server.call("GET", "auth/token/lookup-self", token) for _ in range(CONCURRENT))
    )
    served = sum(status == 200 for status, _ in answers)
    refused = sum(answer == {"errors": ["permission denied"]} for _, answer in answers)
    return served, refused


async def test_num_uses_is_exact_under_concurrency_as_in_openbao(
    servers: tuple[Server, Server],
) -> None:
    """Item 3: 60 requests at once on a token with `num_uses=N`. OpenBao never serves more
    than N; now and then it loses one of the N to a 500 or a "bad token" (its deferred
    revocation racing the request), so "at most N" is what it promises. We serve exactly N
    and refuse the rest with 403."""
    ours, bao = servers
    for trial in range(9):
        uses = 1 + trial % 3
        served, _ = await _served(bao, uses)
        assert served <= uses, f"openbao, trial {trial}: {served} served"
        assert await _served(ours, uses) == (uses, CONCURRENT - uses), f"trial {trial}"


async def _race(server: Server, delay_seconds: float) -> tuple[int, int]:
    """A parent mints 30 children at once while root revokes it after `delay_seconds`;
    returns how many children were handed out and how many of them still work."""
    parent = await server.token("maker")

    async def revoke() -> None:
        await asyncio.sleep(delay_seconds)
        status, answer = await server.call(
            "POST", "auth/token/revoke", server.root_token, {"token": parent}
        )
        assert status == 204, answer

    async def child() -> str | None:
        status, answer = await server.call(
            "POST", "auth/token/create", parent, {"policies": ["maker"]}
        )
        if status != 200:
            assert status in (400, 403), answer
            return None
        return remember_secret(str(answer["auth"]["client_token"]))

    results = await asyncio.gather(revoke(), *(child() for _ in range(30)))
    children = [token for token in results[1:] if token is not None]
    survivors = 0
    for token in children:
        status, _ = await server.call("GET", "auth/token/lookup-self", token)
        survivors += status == 200
    return len(children), survivors


async def test_no_child_outlives_a_parent_revoked_while_it_mints(
    servers: tuple[Server, Server],
) -> None:
    """Item 4, over real HTTP: revocation lands at different moments of 30 concurrent
    creations. OpenBao itself lets an occasional child slip through (1 of 165 in the
    adversarial pass), so it is no reference here; we allow none."""
    ours, _ = servers
    # How long 30 concurrent creations take here: the span the revocations must land in.
    warm_up = await ours.token("maker")
    started = time.perf_counter()
    await asyncio.gather(
        *(
            ours.call("POST", "auth/token/create", warm_up, {"policies": ["maker"]})
            for _ in range(30)
        )
    )
    span = time.perf_counter() - started
    minted = []
    for trial in range(12):
        count, survivors = await _race(ours, delay_seconds=span * trial / 12)
        assert survivors == 0, f"trial {trial}: {survivors} of {count} children outlived it"
        minted.append(count)
    assert any(0 < count < 30 for count in minted), f"no trial raced: {minted}"
