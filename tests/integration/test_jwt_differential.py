"""The jwt auth method against a real `bao server -dev` (which has it built in): the same
config, role and login requests, with the same JWTs (signed here, so they are valid on both
servers), must get the same statuses, error texts and `data`/`auth` shapes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.integration._support import assert_no_secret, remember_secret, unique_name
from tests.integration.conftest import JWKS_PORT, OpenBaoServer, TenantVaultServer

pytestmark = pytest.mark.integration

ISSUER = "https://issuer.example"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(private: Any) -> str:
    return str(
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Server:
    """One server and one fresh namespace on it, spoken to in raw HTTP."""

    name: str
    client: httpx.AsyncClient
    root_token: str = field(repr=False)
    namespace: str = ""

    async def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"X-Vault-Namespace": self.namespace}
        if token is not None:
            headers["X-Vault-Token"] = token
        response = await self.client.request(method, f"/v1/{path}", json=body, headers=headers)
        answer = response.json() if response.content.strip() else None
        if self.name == "tenantvault" and response.status_code >= 400:
            assert_no_secret(response.text, "an error answer")
        return response.status_code, answer

    async def root(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await self.call(method, path, body, token=self.root_token)


async def _open(server: Server) -> Server:
    name = unique_name("jwt")
    status, answer = await server.call("POST", f"sys/namespaces/{name}", token=server.root_token)
    assert status == 200, answer
    server.namespace = name
    for path in ("jwt", "jwks"):
        status, answer = await server.root("POST", f"sys/auth/{path}", {"type": "jwt"})
        assert status == 204, answer
    return server


@pytest.fixture
async def servers(
    tenantvault_server: TenantVaultServer, openbao_server: OpenBaoServer
) -> AsyncIterator[tuple[Server, Server]]:
    async with (
        httpx.AsyncClient(base_url=tenantvault_server.addr, timeout=30) as ours,
        httpx.AsyncClient(base_url=openbao_server.addr, timeout=30) as bao,
    ):
        yield (
            await _open(Server("tenantvault", ours, tenantvault_server.root_token)),
            await _open(Server("openbao", bao, openbao_server.root_token)),
        )


@pytest.fixture
async def jwks_url() -> AsyncIterator[str]:
    """A local JWKS endpoint both servers fetch: RSA_KEY as kid "k1", EC_KEY as "k2"."""
    document = {
        "keys": [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key())), "kid": "k1"},
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key())), "kid": "k2"},
        ]
    }

    async def serve(request: web.Request) -> web.StreamResponse:
        return web.json_response(document)

    app = web.Application()
    app.router.add_get("/jwks.json", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # The port the server's operator allows JWKS fetches from (loopback is refused else).
    listener.bind(("127.0.0.1", JWKS_PORT))
    await web.SockSite(runner, listener).start()
    try:
        yield f"http://127.0.0.1:{JWKS_PORT}/jwks.json"
    finally:
        await runner.cleanup()


def _shape(status: int, answer: Any) -> tuple[int, Any]:
    """What must match: the status, the error texts, `data`, and the `auth` fields that do
    not differ by construction (tokens, accessors and entity ids are each server's own)."""
    if not isinstance(answer, dict):
        return status, answer
    if "errors" in answer:
        return status, answer["errors"]
    auth = answer.get("auth")
    if auth is not None:
        auth = {k: v for k, v in auth.items() if k not in ("client_token", "accessor", "entity_id")}
    return status, {"data": answer.get("data"), "auth": auth, "warnings": answer.get("warnings")}


def _claims(now: int, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "tool-7",
        "aud": "tv",
        "iat": now,
        "exp": now + 600,
        "team": "payments",
        "groups": ["a", "b"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _tokens() -> dict[str, str]:
    """The JWTs of the scenario, made once so both servers see the very same ones."""
    now = int(time.time())
    signing_input = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "."
    signing_input += _b64(json.dumps(_claims(now)).encode())
    hs256 = hmac.new(_pem(RSA_KEY).encode(), signing_input.encode(), hashlib.sha256).digest()
    none_header = _b64(json.dumps({"alg": "none"}).encode())

    def sign(private: Any = RSA_KEY, alg: str = "RS256", **changes: Any) -> str:
        return jwt.encode(_claims(now, **changes), private, algorithm=alg)

    tokens = {
        "valid": sign(),
        "valid-ec": sign(EC_KEY, "ES256"),
        "valid-ps": sign(alg="PS256"),
        "expired": sign(exp=now - 3600, iat=now - 7200),
        "not-yet": sign(nbf=now + 3600),
        "wrong-aud": sign(aud="elsewhere"),
        "no-aud": sign(aud=None),
        "wrong-iss": sign(iss="https://evil.example"),
        "wrong-sub": sign(sub="tool-8"),
        "bad-signature": sign(OTHER_KEY),
        "alg-none": f"{none_header}.{_b64(json.dumps(_claims(now)).encode())}.",
        "hs256-public-key": f"{signing_input}.{_b64(hs256)}",
        "no-team": sign(team=None),
        "other-team": sign(team="marketing"),
        "team-list": sign(team=["payments"]),
        "no-groups": sign(groups=None),
        "kid-k1": jwt.encode(_claims(now), RSA_KEY, algorithm="RS256", headers={"kid": "k1"}),
        "kid-k2": jwt.encode(_claims(now), EC_KEY, algorithm="ES256", headers={"kid": "k2"}),
        "kid-unknown": jwt.encode(_claims(now), RSA_KEY, algorithm="RS256", headers={"kid": "k9"}),
    }
    # Remembered: the module's log scan fails if a JWT shows up in a server log.
    return {name: remember_secret(token) for name, token in tokens.items()}


ROLE = {
    "role_type": "jwt",
    "user_claim": "sub",
    "bound_audiences": ["tv"],
    "claim_mappings": {"team": "team"},
    "token_policies": ["reader", "writer"],
    "token_ttl": "10m",
    "token_max_ttl": "1h",
}


async def _scenario(server: Server, tokens: dict[str, str], jwks_url: str) -> list[Any]:
    answers: list[Any] = []

    async def step(method: str, path: str, body: Any = None, *, root: bool = True) -> None:
        if root:
            answers.append(_shape(*await server.root(method, path, body)))
        else:
            answers.append(_shape(*await server.call(method, path, body)))

    async def login(role: str, token: str, mount: str = "jwt") -> None:
        await step("POST", f"auth/{mount}/login", {"role": role, "jwt": token}, root=False)

    # Before any config.
    await step("GET", "auth/jwt/config")
    await login("tools", tokens["valid"])
    await step("LIST", "auth/jwt/role")
    # Config refusals, then the config.
    await step("POST", "auth/jwt/config", {})
    await step("POST", "auth/jwt/config", {"jwt_validation_pubkeys": ["garbage"]})
    pems = [_pem(RSA_KEY), _pem(EC_KEY)]
    for algs in (["HS256"], ["none"], ["RS256", "HS512"]):
        await step(
            "POST", "auth/jwt/config", {"jwt_validation_pubkeys": pems, "jwt_supported_algs": algs}
        )
    await step("POST", "auth/jwt/config", {"jwt_validation_pubkeys": pems, "jwks_url": jwks_url})
    await step("POST", "auth/jwt/config", {"jwks_url": "http://127.0.0.1:9/jwks.json"})
    await step(
        "POST",
        "auth/jwt/config",
        {"jwt_validation_pubkeys": pems, "bound_issuer": ISSUER, "default_role": "Tools"},
    )
    await step("GET", "auth/jwt/config")
    # Role refusals, then the roles (each failing login below uses its own role, so that
    # tenantvault's failed-login limit, 5 per role and address, never answers 429 here).
    await step("POST", "auth/jwt/role/tools", {"role_type": "jwt"})
    await step("POST", "auth/jwt/role/tools", {"role_type": "jwt", "user_claim": "sub"})
    await step("POST", "auth/jwt/role/tools", {"user_claim": "sub", "bound_subject": "x"})
    await step("POST", "auth/jwt/role/tools", {**ROLE, "role_type": "other"})
    await step("POST", "auth/jwt/role/tools", {**ROLE, "bound_claims_type": "regex"})
    await step("POST", "auth/jwt/role/tools", {**ROLE, "claim_mappings": {"a": "role"}})
    await step("POST", "auth/jwt/role/tools", {**ROLE, "claim_mappings": {"a": "x", "b": "x"}})
    await step("POST", "auth/jwt/role/tools", {**ROLE, "token_ttl": "2h"})
    await step("POST", "auth/jwt/role/tools", {**ROLE, "token_type": "weird"})
    await step("POST", "auth/jwt/role/tools", {**ROLE, "token_num_uses": -1})
    await step(
        "POST",
        "auth/jwt/role/tools",
        {**ROLE, "bound_claims_type": "glob", "bound_claims": {"team": 5}},
    )
    await step("GET", "auth/jwt/role/tools")
    await step("POST", "auth/jwt/role/Tools", ROLE)
    await step("GET", "auth/jwt/role/tools")
    roles = {
        "claims": {
            **ROLE,
            "bound_claims": {"team": ["payments", "ops"]},
            "groups_claim": "groups",
        },
        "glob": {**ROLE, "bound_claims_type": "glob", "bound_claims": {"team": "pay*"}},
        "subject": {**ROLE, "bound_subject": "tool-7", "bound_audiences": [], "token_period": "1h"},
        "time": {**ROLE, "clock_skew_leeway": -1},
    }
    for name in ("refused-1", "refused-2", "refused-3"):
        roles[name] = ROLE
    for name, body in roles.items():
        await step("POST", f"auth/jwt/role/{name}", body)
    # Vault's pre-tokenutil names, still in its guides: aliases, read back while set.
    legacy = {
        "role_type": "jwt",
        "user_claim": "sub",
        "bound_subject": "x",
        "policies": "p1,p2",
        "ttl": "1h",
        "max_ttl": "2h",
        "period": "30m",
        "num_uses": 3,
        "bound_cidrs": "10.0.0.0/8",
    }
    await step("POST", "auth/jwt/role/legacy", legacy)
    await step("GET", "auth/jwt/role/legacy")
    await step("POST", "auth/jwt/role/legacy", {"role_type": "jwt", "token_policies": "p3"})
    await step("GET", "auth/jwt/role/legacy")
    await step("DELETE", "auth/jwt/role/legacy")
    await step("GET", "auth/jwt/role/claims")
    await step("GET", "auth/jwt/role/glob")
    await step("LIST", "auth/jwt/role")
    await step("GET", "auth/jwt/role/missing")
    # Logins.
    await login("tools", tokens["valid"])
    status, answer = await server.call(
        "POST", "auth/jwt/login", {"role": "tools", "jwt": tokens["valid"]}
    )
    assert status == 200, answer
    issued = remember_secret(answer["auth"]["client_token"])
    status, answer = await server.call("GET", "auth/token/lookup-self", token=issued)
    seen = {k: answer["data"][k] for k in ("display_name", "meta", "path", "policies")}
    # The display name holds the namespace, which each server has its own of.
    seen["display_name"] = seen["display_name"].replace(server.namespace, "<namespace>")
    answers.append((status, seen))
    await login("TOOLS", tokens["valid-ec"])
    await login("tools", tokens["valid-ps"])
    await step("POST", "auth/jwt/login", {"jwt": tokens["valid"]}, root=False)  # default_role
    await login("claims", tokens["valid"])
    await login("glob", tokens["valid"])
    await login("time", tokens["valid"])
    await login("missing", tokens["valid"])
    await login("tools", "")
    for role, case in [
        ("refused-1", "expired"),
        ("refused-1", "not-yet"),
        ("refused-1", "wrong-aud"),
        ("refused-1", "no-aud"),
        ("refused-2", "wrong-iss"),
        ("refused-2", "bad-signature"),
        ("refused-2", "alg-none"),
        ("refused-2", "hs256-public-key"),
        ("refused-3", "team-list"),
        ("subject", "wrong-sub"),
        ("subject", "valid"),  # an audience, but the role binds none
        ("claims", "no-team"),
        ("claims", "other-team"),
        ("claims", "no-groups"),
        ("glob", "other-team"),
    ]:
        await login(role, tokens[case])
    await step("DELETE", "auth/jwt/role/glob")
    await step("DELETE", "auth/jwt/role/glob")
    await login("glob", tokens["valid"])
    # A second mount with keys from a JWKS URL.
    await step("POST", "auth/jwks/config", {"jwks_url": jwks_url, "bound_issuer": ISSUER})
    await step("GET", "auth/jwks/config")
    await step("POST", "auth/jwks/role/tools", ROLE)
    for case in ("kid-k1", "kid-k2", "valid", "kid-unknown", "bad-signature"):
        await login("tools", tokens[case], mount="jwks")
    return answers


async def test_config_roles_and_logins_answer_like_openbao(
    servers: tuple[Server, Server], jwks_url: str
) -> None:
    ours, bao = servers
    tokens = _tokens()
    theirs = await _scenario(bao, tokens, jwks_url)
    mine = await _scenario(ours, tokens, jwks_url)
    # The reference itself, so that a change in OpenBao shows up here and not as a mystery.
    assert theirs[1] == (400, ["could not load configuration"])
    assert len(mine) == len(theirs)
    differences = [
        (index, got, expected)
        for index, (got, expected) in enumerate(zip(mine, theirs, strict=True))
        if got != expected
    ]
    assert not differences
    for token in tokens.values():
        assert token not in str(mine)
