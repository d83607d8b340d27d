"""JWT login end to end through the HTTP API (issue 11, acceptance 3), with keys generated
here: a valid token gets a tenant token with the role's policies; expired, wrong audience,
wrong issuer, bad signature, `alg=none` and HS256-keyed-with-the-public-key tokens are
refused, and every attempt is audited with the JWT only as its HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tenantvault._config import ServerSettings
from tests.server.conftest import Vault, assert_no_canary

ISSUER = "https://mcp-platform.example"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
READER = 'path "secret/data/app/*" { capabilities = ["read"] }'
NO_KEY = (
    "error validating token: error verifying token signature: "
    "no known key successfully validated the token signature"
)


def _pem(private: Any) -> str:
    return str(
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "tool-server-7",
        "aud": "tenantvault",
        "iat": now,
        "exp": now + 600,
        "tenant_team": "payments",
        # A marker: if the token or its claims leaked anywhere, this would be found.
        "jti": f"CANARY-jti-{time.time_ns()}",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(private: Any = RSA_KEY, alg: str = "RS256", **changes: Any) -> str:
    return jwt.encode(_claims(**changes), private, algorithm=alg)


def _alg_none() -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(_claims()).encode())}."


def _hs256_with_public_key() -> str:
    signing_input = (
        _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        + "."
        + _b64(json.dumps(_claims()).encode())
    )
    mac = hmac.new(_pem(RSA_KEY).encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


async def _setup(vault: Vault, tenant: str, *roles: str, **config: Any) -> None:
    """A tenant with a jwt mount trusting RSA_KEY, EC_KEY and ED_KEY, and reader roles."""
    await vault.create_tenant(tenant)
    await vault.write_policy(tenant, "reader", READER)
    response = await vault.root("POST", "sys/auth/jwt", namespace=tenant, json={"type": "jwt"})
    assert response.status_code == 204, response.text
    body = config or {
        "jwt_validation_pubkeys": [_pem(RSA_KEY), _pem(EC_KEY), _pem(ED_KEY)],
        "bound_issuer": ISSUER,
    }
    response = await vault.root("POST", "auth/jwt/config", namespace=tenant, json=body)
    assert response.status_code == 204, response.text
    for role in roles or ("tools",):
        response = await vault.root(
            "POST",
            f"auth/jwt/role/{role}",
            namespace=tenant,
            json={
                "role_type": "jwt",
                "user_claim": "sub",
                "bound_audiences": ["tenantvault"],
                "claim_mappings": {"tenant_team": "team"},
                "token_policies": ["reader"],
                "token_ttl": "10m",
            },
        )
        assert response.status_code == 204, response.text


async def _login(vault: Vault, tenant: str, token: str, role: str = "tools") -> Any:
    response = await vault.request(
        "POST", "auth/jwt/login", namespace=tenant, json={"role": role, "jwt": token}
    )
    return response.status_code, response.json()


async def _login_events(vault: Vault, tenant: str) -> list[dict[str, Any]]:
    response = await vault.root(
        "GET",
        "sys/audit/events",
        params={"tenant": tenant, "path_prefix": "auth/jwt/login", "limit": "1000"},
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]["events"]
    return events


@pytest.mark.parametrize(
    ("private", "alg"), [(RSA_KEY, "RS256"), (EC_KEY, "ES256"), (ED_KEY, "EdDSA")]
)
async def test_a_valid_token_logs_in_with_the_roles_policies(
    vault: Vault, private: Any, alg: str
) -> None:
    await _setup(vault, "acme")
    await vault.put("acme", "app/db", {"password": "hunter2"})
    await vault.put("acme", "other/db", {"password": "hunter3"})
    status, body = await _login(vault, "acme", _token(private, alg))
    assert status == 200, body
    auth = body["auth"]
    assert auth["policies"] == ["default", "reader"]
    assert auth["metadata"] == {"role": "tools", "team": "payments"}
    assert auth["lease_duration"] == 600
    assert auth["orphan"] is True
    token = auth["client_token"]
    read = await vault.request("GET", "secret/data/app/db", token=token, namespace="acme")
    assert read.status_code == 200
    assert read.json()["data"]["data"] == {"password": "hunter2"}
    denied = await vault.request("GET", "secret/data/other/db", token=token, namespace="acme")
    assert denied.status_code == 403
    lookup = await vault.request("GET", "auth/token/lookup-self", token=token, namespace="acme")
    assert lookup.json()["data"]["path"] == "auth/jwt/login"
    # OpenBao's: the mount point (in a namespace: its path too), dashed, and the user claim.
    assert lookup.json()["data"]["display_name"] == "acme-auth-jwt-tool-server-7"


REFUSALS: dict[str, tuple[Callable[[], str], str]] = {
    "expired": (
        lambda: _token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "error validating token: invalid expiration time (exp) claim: token is expired",
    ),
    "wrong-audience": (
        lambda: _token(aud="another-service"),
        "error validating token: invalid audience (aud) claim: "
        "audience claim does not match any expected audience",
    ),
    "wrong-issuer": (
        lambda: _token(iss="https://evil.example"),
        "error validating token: invalid issuer (iss) claim",
    ),
    "bad-signature": (lambda: _token(OTHER_KEY), NO_KEY),
    "alg-none": (_alg_none, NO_KEY),
    "hs256-with-public-key": (_hs256_with_public_key, NO_KEY),
}


async def test_each_bad_token_is_refused_and_audited(vault: Vault, logs: Any) -> None:
    # One role per case: the failed-login limit counts per role and address.
    await _setup(vault, "acme", *REFUSALS)
    sent: list[str] = []
    for case, (make, message) in REFUSALS.items():
        token = make()
        sent.append(token)
        status, body = await _login(vault, "acme", token, role=case)
        assert (status, body) == (400, {"errors": [message]}), case
    events = await _login_events(vault, "acme")
    responses = [e for e in events if e["type"] == "response"]
    assert [e["response"]["status"] for e in responses] == [400] * len(REFUSALS)
    requests = [e for e in events if e["type"] == "request"]
    assert len(requests) == len(REFUSALS)
    for event in events:
        assert event["request"]["data"]["jwt"].startswith("hmac-sha256:")
        assert event["request"]["path"] == "auth/jwt/login"
    texts = [orjson.dumps(e).decode() for e in events] + vault.seen.texts
    texts += [record.getMessage() for record in logs.records]
    # No audit entry, answer or log line holds a token or any part of it.
    assert_no_canary(texts, *sent, *(t.split(".")[1] for t in sent if t.count(".") == 2))


async def test_failed_logins_are_rate_limited_per_role(vault: Vault) -> None:
    await _setup(vault, "acme", "tools", "spare")
    for _ in range(5):
        status, _body = await _login(vault, "acme", _token(OTHER_KEY))
        assert status == 400
    status, body = await _login(vault, "acme", _token())
    assert status == 429, body
    status, _body = await _login(vault, "acme", _token(), role="spare")
    assert status == 200


async def test_a_role_of_one_tenant_logs_no_one_into_another(vault: Vault) -> None:
    await _setup(vault, "acme")
    await _setup(vault, "globex", "tools", jwt_validation_pubkeys=[_pem(OTHER_KEY)])
    status, body = await _login(vault, "globex", _token())
    assert (status, body) == (400, {"errors": [NO_KEY]})
    status, body = await _login(vault, "acme", _token())
    assert status == 200
    token = body["auth"]["client_token"]
    await vault.put("globex", "app/db", {"password": "theirs"})
    foreign = await vault.request("GET", "secret/data/app/db", token=token, namespace="globex")
    assert foreign.status_code == 403
    # A namespace that does not exist has no auth mount: the usual pipeline's 403.
    assert await _login(vault, "initech", _token()) == (403, {"errors": ["permission denied"]})


async def test_login_errors_before_the_token_is_checked(vault: Vault) -> None:
    await _setup(vault, "acme")
    assert await _login(vault, "acme", _token(), role="nope") == (
        400,
        {"errors": ['role "nope" could not be found']},
    )
    assert await _login(vault, "acme", "", role="tools") == (400, {"errors": ["missing token"]})
    response = await vault.request(
        "POST", "auth/jwt/login", namespace="acme", json={"jwt": _token()}
    )
    assert response.json() == {"errors": ["missing role"]}


async def test_default_role_and_bound_cidrs(vault: Vault) -> None:
    await _setup(
        vault,
        "acme",
        jwt_validation_pubkeys=[_pem(RSA_KEY)],
        bound_issuer=ISSUER,
        default_role="tools",
    )
    response = await vault.request(
        "POST", "auth/jwt/login", namespace="acme", json={"jwt": _token()}
    )
    assert response.status_code == 200, response.text
    response = await vault.root(
        "POST",
        "auth/jwt/role/tools",
        namespace="acme",
        json={"role_type": "jwt", "token_bound_cidrs": ["10.0.0.0/8"]},
    )
    assert response.status_code == 204, response.text
    # The test client connects from 127.0.0.1, outside the role's CIDR binding.
    assert await _login(vault, "acme", _token()) == (403, {"errors": ["permission denied"]})


async def test_role_management_needs_a_policy(vault: Vault) -> None:
    await _setup(vault, "acme")
    admin = await vault.tenant_admin("globex")  # admin of another tenant
    response = await vault.request("GET", "auth/jwt/role/tools", token=admin, namespace="acme")
    assert response.status_code == 403
    reader = (await vault.create_token("acme", ["reader"]))["client_token"]
    for method, path in [("GET", "auth/jwt/config"), ("LIST", "auth/jwt/role")]:
        response = await vault.request(method, path, token=reader, namespace="acme")
        assert response.status_code == 403
    response = await vault.root("LIST", "auth/jwt/role", namespace="acme")
    assert response.json()["data"] == {"keys": ["tools"]}


# -- JWKS ---------------------------------------------------------------------------------------


@dataclass
class Jwks:
    """A real local JWKS endpoint publishing RSA_KEY as kid "k1" and EC_KEY as "k2"."""

    url: str = ""
    prefix: str = ""  # what the operator allows (`--jwt-jwks-allow`): loopback is refused else
    up: bool = True


@pytest.fixture
async def jwks() -> AsyncIterator[Jwks]:
    state = Jwks()
    document = {
        "keys": [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key())), "kid": "k1"},
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key())), "kid": "k2"},
        ]
    }

    async def serve(request: web.Request) -> web.StreamResponse:
        return web.json_response(document) if state.up else web.Response(status=503)

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    await web.SockSite(runner, listener).start()
    state.prefix = f"http://127.0.0.1:{listener.getsockname()[1]}/.well-known/"
    state.url = state.prefix + "jwks.json"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
def settings(root_token: str, jwks: Jwks) -> ServerSettings:
    """The operator allows this module's local JWKS endpoint (loopback is refused else)."""
    return ServerSettings(dev=True, dev_root_token=root_token, jwt_jwks_allow=(jwks.prefix,))


async def test_login_with_keys_from_a_jwks_url(vault: Vault, jwks: Jwks) -> None:
    await _setup(vault, "acme", jwks_url=jwks.url, bound_issuer=ISSUER)
    config = await vault.root("GET", "auth/jwt/config", namespace="acme")
    assert config.json()["data"]["jwks_url"] == jwks.url
    signers: list[tuple[Any, str, str]] = [(RSA_KEY, "RS256", "k1"), (EC_KEY, "ES256", "k2")]
    for private, alg, kid in signers:
        token = jwt.encode(_claims(), private, algorithm=alg, headers={"kid": kid})
        status, body = await _login(vault, "acme", token)
        assert status == 200, body
    # A kid the JWKS does not have, and a key it does not publish.
    token = jwt.encode(_claims(), RSA_KEY, algorithm="RS256", headers={"kid": "k9"})
    failed = (
        "error validating token: error verifying token signature: "
        "failed to verify id token signature"
    )
    assert await _login(vault, "acme", token) == (400, {"errors": [failed]})
    assert await _login(vault, "acme", _token(OTHER_KEY)) == (400, {"errors": [failed]})


async def test_an_outage_of_the_jwks_url_is_no_failed_login(vault: Vault, jwks: Jwks) -> None:
    """The issuer's JWKS being down is not the tool server's fault: its logins fail while
    it lasts, but do not count towards the failed-login limit (no 429 afterwards)."""
    await _setup(vault, "acme", jwks_url=jwks.url, bound_issuer=ISSUER)
    jwks.up = False
    failed = "error validating token: error verifying token signature: fetching keys failed"
    for _ in range(8):
        assert await _login(vault, "acme", _token()) == (400, {"errors": [failed]})


async def test_a_jwks_url_that_serves_no_keys_is_refused_at_config(
    vault: Vault, jwks: Jwks
) -> None:
    await vault.create_tenant("acme")
    await vault.root("POST", "sys/auth/jwt", namespace="acme", json={"type": "jwt"})
    body = {"jwks_url": jwks.prefix + "missing.json"}
    response = await vault.root("POST", "auth/jwt/config", namespace="acme", json=body)
    assert (response.status_code, response.json()) == (
        400,
        {"errors": ["error checking jwks URL"]},
    )
    response = await vault.root(
        "POST",
        "auth/jwt/config",
        namespace="acme",
        json={"oidc_discovery_url": "https://idp.example"},
    )
    assert response.status_code == 400
    assert "OIDC is not supported" in response.json()["errors"][0]
