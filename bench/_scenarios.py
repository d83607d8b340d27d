"""The workloads: what each scenario sends, the tenants and data it needs, as raw requests.

A scenario renders to a request file (bench/loadgen.py's format, NUL-separated raw HTTP/1.1
requests, sent round robin; bench/wrk/requests.lua reads the same file), so the closed-loop
cells (wrk) and the open-loop cells (loadgen) send byte-for-byte the same requests.

Scenarios (all with a tenant token whose policy names four paths, unless `--as-root`):

- `read`: GET one small secret (two fields) over and over: the cached read.
- `uncached-read`: GET `DISTINCT_KEYS` distinct secrets in turn. On the `-nocache` server
  variants (the read cache switched off) every read goes to the store: *that* is the
  uncached read. On servers with the cache on it measures a 1,000-key working set instead;
  no finite key set can promise a miss under a cache of unknown size, an off switch can.
- `write`: POST a new secret to a unique path per request (creating version 1), so no
  request waits on another's per-key lock and no secret grows a version list.
- `cas-write`: the same with `options.cas = 0` (create only if absent): the check-and-set
  path without conflicts. (Needs unique keys: not for a bounded `--key-space`.)
- `encrypt` / `decrypt`: transit with a 64-byte plaintext under one aes256-gcm96 key.
- `mixed`: across `--tenants` tenants (50), each with its own token: 80 % reads, 15 %
  writes, 5 % encrypts, interleaved so that every tenant sees the same 80/15/5.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from _servers import HTTPError, Server, is_openbao

SCENARIOS = ("read", "uncached-read", "write", "cas-write", "encrypt", "decrypt", "mixed")
TENANT = "bench"
MIX_TENANTS = 50
DISTINCT_KEYS = 1000
READ_PATH = "bench/read"
# One cycle of the mixed scenario: 16 reads (r), 3 writes (w), 1 encrypt (e): 80/15/5.
MIX_PATTERN = "rrrrwrrrrrrwrrrrrwre"
MARKER = "@@@@@@@@@@"
SECRET = {"username": "svc-read", "password": "p4ssw0rd-0123456789abcdef0123456789"}
# What a benchmark token may do, and nothing more: the ACL is evaluated on every request.
POLICY = """
path "secret/data/bench/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/bench/*" { capabilities = ["read", "list"] }
path "transit/encrypt/bench" { capabilities = ["update"] }
path "transit/decrypt/bench" { capabilities = ["update"] }
"""
PLAINTEXT_B64 = base64.b64encode(
    b"p4ssw0rd-0123456789abcdef0123456789-transit-payload-64-bytes!!"
).decode()
READY_SECONDS = 30.0


def mix_tenants(count: int) -> list[str]:
    """The tenants of the mixed scenario."""
    return [f"mix-{index:03d}" for index in range(count)]


def add_tenant(server: Server, tenant: str) -> None:
    """Create `tenant` with KV v2 at secret/ and transit at transit/ (OpenBao needs both)."""
    server.call("POST", f"sys/namespaces/{tenant}")
    if is_openbao(server.name):
        # `bao server -dev` mounts KV v2 at secret/ in the root namespace only.
        kv = {"type": "kv", "options": {"version": "2"}}
        server.call("POST", "sys/mounts/secret", kv, namespace=tenant)
        server.call("POST", "sys/mounts/transit", {"type": "transit"}, namespace=tenant)
    # A new KV v2 mount in OpenBao answers 400 until its upgrade finished: wait for a write.
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            server.call("POST", "secret/data/ready", {"data": {"ready": "yes"}}, namespace=tenant)
            return
        except HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _equip(server: Server, tenant: str, *, as_root: bool) -> None:
    """The secret to read, the transit key and the benchmark token of `tenant`."""
    server.call("POST", f"secret/data/{READ_PATH}", {"data": SECRET}, namespace=tenant)
    server.call("POST", "transit/keys/bench", {"type": "aes256-gcm96"}, namespace=tenant)
    if as_root:
        server.tokens[tenant] = server.root_token
        return
    server.call("PUT", "sys/policies/acl/bench", {"policy": POLICY}, namespace=tenant)
    created = server.call(
        "POST", "auth/token/create", {"policies": ["bench"], "ttl": "4h"}, namespace=tenant
    )
    server.tokens[tenant] = created["auth"]["client_token"]


def prepare(server: Server, scenarios: list[str], *, tenants: int, as_root: bool) -> None:
    """Create what `scenarios` read and the tokens they send, on `server`."""
    add_tenant(server, TENANT)
    _equip(server, TENANT, as_root=as_root)
    encrypted = server.call(
        "POST", "transit/encrypt/bench", {"plaintext": PLAINTEXT_B64}, namespace=TENANT
    )
    server.ciphertext = encrypted["data"]["ciphertext"]
    if "uncached-read" in scenarios:
        for key in range(DISTINCT_KEYS):
            data = {**SECRET, "username": f"svc-{key}"}
            server.call("POST", f"secret/data/bench/many/{key}", {"data": data}, namespace=TENANT)
    if "mixed" in scenarios:
        for tenant in mix_tenants(tenants):
            add_tenant(server, tenant)
            _equip(server, tenant, as_root=as_root)


def request(
    method: str, path: str, *, token: str, tenant: str, body: dict[str, Any] | None = None
) -> bytes:
    """One raw HTTP/1.1 request (keep-alive), as Vault clients send it."""
    lines = [f"{method} /v1/{path} HTTP/1.1", "Host: bench"]
    lines += [f"X-Vault-Token: {token}", f"X-Vault-Namespace: {tenant}"]
    payload = b""
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def _write(tenant: str, token: str, tag: str, *, cas: bool = False) -> bytes:
    data = {"username": f"svc-{MARKER}", "password": SECRET["password"]}
    body: dict[str, Any] = {"options": {"cas": 0}, "data": data} if cas else {"data": data}
    folder = "cas" if cas else "w"
    path = f"secret/data/bench/{folder}/{tag}/{MARKER}"
    return request("POST", path, token=token, tenant=tenant, body=body)


def _read(tenant: str, token: str) -> bytes:
    return request("GET", f"secret/data/{READ_PATH}", token=token, tenant=tenant)


def _encrypt(tenant: str, token: str) -> bytes:
    body = {"plaintext": PLAINTEXT_B64}
    return request("POST", "transit/encrypt/bench", token=token, tenant=tenant, body=body)


def render(server: Server, scenario: str, tag: str, *, tenants: int) -> list[bytes]:
    """The requests of `scenario` on `server`; `tag` keeps each cell's written paths apart."""
    token = server.tokens[TENANT]
    if scenario == "read":
        return [_read(TENANT, token)]
    if scenario == "uncached-read":
        return [
            request("GET", f"secret/data/bench/many/{key}", token=token, tenant=TENANT)
            for key in range(DISTINCT_KEYS)
        ]
    if scenario in ("write", "cas-write"):
        return [_write(TENANT, token, tag, cas=scenario == "cas-write")]
    if scenario == "encrypt":
        return [_encrypt(TENANT, token)]
    if scenario == "decrypt":
        body = {"ciphertext": server.ciphertext}
        return [request("POST", "transit/decrypt/bench", token=token, tenant=TENANT, body=body)]
    if scenario == "mixed":
        names = mix_tenants(tenants)
        requests = []
        # 20 rounds over all tenants; tenant t's kind in round r is MIX_PATTERN[(r + t) % 20],
        # so each tenant gets exactly 16 reads, 3 writes and 1 encrypt per cycle, and each
        # round mixes the kinds instead of sending them in bursts.
        for round_ in range(len(MIX_PATTERN)):
            for offset, name in enumerate(names):
                kind = MIX_PATTERN[(round_ + offset) % len(MIX_PATTERN)]
                tenant_token = server.tokens[name]
                if kind == "r":
                    requests.append(_read(name, tenant_token))
                elif kind == "w":
                    requests.append(_write(name, tenant_token, tag))
                else:
                    requests.append(_encrypt(name, tenant_token))
        return requests
    raise SystemExit(f"error: unknown scenario {scenario} (one of {', '.join(SCENARIOS)})")


def write_file(path: Path, requests: list[bytes]) -> Path:
    """Write a request file readable by its owner only (it holds tokens)."""
    path.touch(mode=0o600)
    path.write_bytes(b"\0".join(requests))
    return path
