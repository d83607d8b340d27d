"""Concurrent reads for several tenants at once: every response must carry its own canary.

Run by bench/run.py in a process of its own (it can also be run by hand):

    BENCH_TOKEN=<root token> python bench/routing_check.py --url http://127.0.0.1:8200 \
        --tenants route-a,route-b --seconds 10 --concurrency 500

The tenants must exist (with KV v2 at `secret/`). For each tenant it writes a read-only
policy, creates a token bound to that tenant with it, and writes `KEYS_PER_TENANT` secrets
at the same paths in every tenant, each holding a distinct canary. Then `--concurrency`
workers read random (tenant, key) pairs with that tenant's token for `--seconds`. A response
passes only if it is a 200 whose body holds exactly one canary: the one of the secret this
request asked for. A response that reached the wrong request (the uvloop report in issue 3)
or was served from the wrong tenant therefore counts as a mismatch.

Prints one JSON line; exits 0 if there were no mismatches and no errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

KEYS_PER_TENANT = 20
POLICY_NAME = "bench-routing"
POLICY = 'path "secret/data/routing/*" { capabilities = ["read"] }'
CANARY = re.compile(r"CANARY\.[A-Za-z0-9.-]+")
# Enough mismatches to see a pattern; more would only flood the report.
MAX_SAMPLES = 5


@dataclass
class Outcome:
    url: str
    tenants: int
    keys_per_tenant: int
    concurrency: int
    seconds: float = 0.0
    requests: int = 0
    ok: int = 0
    mismatches: int = 0
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.requests > 0 and self.mismatches == 0 and self.errors == 0

    def note(self, text: str) -> None:
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(text)


async def _call(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    *,
    token: str,
    tenant: str,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    headers = {"X-Vault-Token": token, "X-Vault-Namespace": tenant}
    async with http.request(method, f"/v1/{path}", headers=headers, json=body) as response:
        text = await response.text()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} in {tenant}: {response.status} {text[:200]}")
        return json.loads(text) if text else {}


async def _prepare(
    http: aiohttp.ClientSession, root: str, tenant: str
) -> tuple[str, dict[str, str]]:
    """Policy, tenant token and canary secrets of one tenant: (token, {key: canary})."""
    await _call(
        http,
        "PUT",
        f"sys/policies/acl/{POLICY_NAME}",
        token=root,
        tenant=tenant,
        body={"policy": POLICY},
    )
    created = await _call(
        http,
        "POST",
        "auth/token/create",
        token=root,
        tenant=tenant,
        body={"policies": [POLICY_NAME], "ttl": "1h"},
    )
    canaries = {}
    for index in range(KEYS_PER_TENANT):
        key = f"k{index}"
        canaries[key] = f"CANARY.{tenant}.{key}.{uuid.uuid4().hex}"
        await _call(
            http,
            "POST",
            f"secret/data/routing/{key}",
            token=root,
            tenant=tenant,
            body={"data": {"canary": canaries[key]}},
        )
    return str(created["auth"]["client_token"]), canaries


async def check(
    url: str, root: str, tenants: list[str], *, seconds: float, concurrency: int
) -> Outcome:
    outcome = Outcome(url, len(tenants), KEYS_PER_TENANT, concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as http:
        prepared = {tenant: await _prepare(http, root, tenant) for tenant in tenants}
        pairs = [(tenant, key) for tenant in tenants for key in prepared[tenant][1]]
        rng = random.Random()  # not for security: which pair to read next
        start = time.monotonic()
        deadline = start + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                tenant, key = rng.choice(pairs)
                token, canaries = prepared[tenant]
                headers = {"X-Vault-Token": token, "X-Vault-Namespace": tenant}
                outcome.requests += 1
                try:
                    async with http.get(
                        f"/v1/secret/data/routing/{key}", headers=headers
                    ) as response:
                        status, body = response.status, await response.text()
                except (aiohttp.ClientError, TimeoutError) as error:
                    outcome.errors += 1
                    outcome.note(f"{tenant}/{key}: {type(error).__name__}")
                    continue
                found = CANARY.findall(body)
                if found and found != [canaries[key]]:
                    outcome.mismatches += 1
                    outcome.note(f"{tenant}/{key}: expected {canaries[key]}, got {found}")
                elif status != 200 or not found:
                    outcome.errors += 1
                    outcome.note(f"{tenant}/{key}: {status} {body[:200]}")
                else:
                    outcome.ok += 1

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        outcome.seconds = round(time.monotonic() - start, 2)
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--tenants", required=True, help="comma-separated, at least two")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=500)
    args = parser.parse_args()
    tenants = args.tenants.split(",")
    if len(tenants) < 2:
        parser.error("--tenants: at least two, or nothing could reach the wrong one")
    root = os.environ.get("BENCH_TOKEN")
    if not root:
        parser.error("set BENCH_TOKEN to a token that may administer the tenants")
    outcome = asyncio.run(
        check(args.url, root, tenants, seconds=args.seconds, concurrency=args.concurrency)
    )
    print(json.dumps({**asdict(outcome), "passed": outcome.passed}))
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main())
