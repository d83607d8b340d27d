"""The jwt auth method's verification: signatures with keys generated here (RSA, EC, Ed25519),
the algorithm-confusion and `alg=none` refusals, and OpenBao's claim checks and texts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from tenantvault._exceptions import InvalidRequestError
from tenantvault.engines.auth.jwt._claims import MAX_LEEWAY_SECONDS, matches_glob
from tenantvault.engines.auth.jwt._config import JwtConfig
from tenantvault.engines.auth.jwt._keys import (
    ASYMMETRIC_ALGORITHMS,
    MAX_JWKS_KEYS,
    VerificationKey,
    algorithms_for,
    parse_jwks,
    parse_pem,
)
from tenantvault.engines.auth.jwt._role import JwtRole
from tenantvault.engines.auth.jwt._verify import MAX_TOKEN_CHARS, KeySource, verify

NOW = 1_800_000_000
ISSUER = "https://issuer.example"
NO_KEY = "no known key successfully validated the token signature"
SIGNATURE = "error validating token: error verifying token signature: "

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC384_KEY = ec.generate_private_key(ec.SECP384R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def _pem(private: Any) -> str:
    public = private.public_key()
    return str(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "tool-server-1",
        "aud": "mcp",
        "iat": NOW - 10,
        "exp": NOW + 300,
        "team": "payments",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(private: Any, alg: str, claims: Mapping[str, Any] | None = None, **headers: Any) -> str:
    return jwt.encode(dict(claims or _claims()), private, algorithm=alg, headers=headers or None)


def _forge(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes = b"") -> str:
    """A compact JWS built by hand: for the tokens no honest library would produce."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return signing_input + "." + _b64(signature)


def _hs256_with_public_key(pem: str, claims: Mapping[str, Any]) -> str:
    """The algorithm-confusion attack: HS256 keyed with the verifier's public key PEM."""
    signing_input = (
        _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        + "."
        + _b64(json.dumps(dict(claims)).encode())
    )
    mac = hmac.new(pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(mac)


def _role(**fields: Any) -> JwtRole:
    data: dict[str, Any] = {"role_type": "jwt", "user_claim": "sub", "bound_audiences": "mcp"}
    data.update(fields)
    return JwtRole.from_request(data, None)


def _static(*privates: Any) -> KeySource:
    keys = [parse_pem(_pem(p)) for p in privates]

    async def source(kid: str | None) -> list[VerificationKey]:
        return keys

    return KeySource(source, NO_KEY)


async def _verify(
    token: str,
    *,
    role: JwtRole | None = None,
    keys: KeySource | None = None,
    now: float = NOW,
    **config: Any,
) -> Any:
    settings = JwtConfig(jwt_validation_pubkeys=("unused",), bound_issuer=ISSUER)
    if config:
        settings = JwtConfig(**{"bound_issuer": ISSUER, **config})
    return await verify(
        token,
        config=settings,
        role_name="tools",
        role=role or _role(),
        source=keys or _static(RSA_KEY, EC_KEY, ED_KEY),
        now=now,
    )


async def _refused(token: str, **kwargs: Any) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        await _verify(token, **kwargs)
    message = caught.value.message
    assert token not in message
    return message


# -- signatures and algorithms ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("private", "alg"),
    [
        (RSA_KEY, "RS256"),
        (RSA_KEY, "RS512"),
        (RSA_KEY, "PS256"),
        (EC_KEY, "ES256"),
        (EC384_KEY, "ES384"),
        (ED_KEY, "EdDSA"),
    ],
)
async def test_a_token_signed_by_a_configured_key_logs_in(private: Any, alg: str) -> None:
    keys = _static(RSA_KEY, EC_KEY, EC384_KEY, ED_KEY)
    found = await _verify(_sign(private, alg), keys=keys)
    assert found.name == "tool-server-1"
    assert found.metadata == {"role": "tools"}


async def test_alg_none_is_refused_as_no_key_verifying_it() -> None:
    token = _forge({"alg": "none", "typ": "JWT"}, _claims())
    assert await _refused(token) == SIGNATURE + NO_KEY


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "", "HS256", "HS512", "RSA-OAEP", "dir"])
async def test_no_symmetric_or_unknown_alg_is_ever_tried(alg: str) -> None:
    token = _forge({"alg": alg}, _claims(), b"\x00" * 32)
    assert await _refused(token) == SIGNATURE + NO_KEY


async def test_hs256_signed_with_the_rsa_public_key_is_refused() -> None:
    """The classic confusion: the verifier's own public key PEM used as the HMAC secret."""
    pem = _pem(RSA_KEY)
    token = _hs256_with_public_key(pem, _claims())
    # HS* is never an algorithm of any key here, so no key is even tried (PyJWT would also
    # refuse a PEM as an HMAC secret, a second line of defence this test does not rely on).
    assert await _refused(token, keys=_static(RSA_KEY)) == SIGNATURE + NO_KEY
    assert await _refused(token, jwt_supported_algs=("RS256",)) == SIGNATURE + NO_KEY


async def test_a_token_from_another_key_is_refused() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await _refused(_sign(other, "RS256")) == SIGNATURE + NO_KEY


async def test_a_tampered_payload_is_refused() -> None:
    header, _, signature = _sign(RSA_KEY, "RS256").split(".")
    payload = _b64(json.dumps(_claims(sub="admin")).encode())
    assert await _refused(f"{header}.{payload}.{signature}") == SIGNATURE + NO_KEY


async def test_an_ec_key_never_verifies_with_another_curve_or_an_rsa_algorithm() -> None:
    assert algorithms_for(EC_KEY.public_key()) == {"ES256"}
    assert algorithms_for(EC384_KEY.public_key()) == {"ES384"}
    assert algorithms_for(ED_KEY.public_key()) == {"EdDSA"}
    assert "ES256" not in algorithms_for(RSA_KEY.public_key())
    # An ES384 signature presented as ES256 (the header lies) verifies with no key.
    forged = jwt.encode(_claims(), EC384_KEY, algorithm="ES384").split(".")
    lying = _b64(json.dumps({"alg": "ES256"}).encode()) + "." + ".".join(forged[1:])
    assert await _refused(lying, keys=_static(EC384_KEY)) == SIGNATURE + NO_KEY


async def test_an_algorithm_outside_jwt_supported_algs_is_refused() -> None:
    token = _sign(RSA_KEY, "PS256")
    message = await _refused(token, jwt_supported_algs=("RS256",))
    assert message == (
        "error validating token: invalid algorithm (alg) header parameter: "
        "token signed with unexpected algorithm"
    )
    assert (await _verify(token, jwt_supported_algs=("PS256",))).name == "tool-server-1"


def test_short_rsa_keys_and_symmetric_jwks_are_not_keys() -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 -- the weak key under test
    with pytest.raises(ValueError, match="does not contain any valid public keys"):
        parse_pem(_pem(short))
    with pytest.raises(ValueError, match="no usable keys"):
        parse_jwks({"keys": [{"kty": "oct", "k": _b64(b"secret-bytes-0123456789abcdef")}]})


def test_a_jwk_is_used_only_with_its_declared_alg() -> None:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    keys = parse_jwks({"keys": [{**jwk, "kid": "k1", "alg": "PS384"}, {**jwk, "use": "enc"}]})
    assert [(k.kid, k.algorithms) for k in keys] == [("k1", frozenset({"PS384"}))]
    assert ASYMMETRIC_ALGORITHMS >= keys[0].algorithms


def test_a_jwks_document_is_bounded_in_keys() -> None:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key()))
    keys = parse_jwks({"keys": [{**jwk, "kid": str(n)} for n in range(MAX_JWKS_KEYS * 3)]})
    assert len(keys) == MAX_JWKS_KEYS


def test_a_certificate_pem_gives_its_public_key() -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(EC_KEY.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(EC_KEY, hashes.SHA256())
    )
    key = parse_pem(cert.public_bytes(serialization.Encoding.PEM).decode())
    assert key.algorithms == {"ES256"}


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "..", "e30.e30.", "x" * 100])
async def test_a_malformed_token_is_a_signature_error_without_echo(token: str) -> None:
    message = await _refused(token)
    assert message.startswith(SIGNATURE)


async def test_a_deeply_nested_header_is_a_malformed_token() -> None:
    header = _b64(('{"alg":"RS256","x":' + "[" * 6000 + "]" * 6000 + "}").encode())
    assert await _refused(f"{header}.e30.AAAA") == SIGNATURE + "malformed token"


async def test_an_oversized_token_is_refused_before_parsing() -> None:
    token = _sign(RSA_KEY, "RS256", _claims(pad="x" * MAX_TOKEN_CHARS))
    assert await _refused(token) == SIGNATURE + "token too large"


# -- registered claims ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iss": "https://evil.example"}, "invalid issuer (iss) claim"),
        ({"iss": None}, "invalid issuer (iss) claim"),
        (
            {"aud": "someone-else"},
            "invalid audience (aud) claim: audience claim does not match any expected audience",
        ),
        (
            {"aud": None},
            "invalid audience (aud) claim: audience claim does not match any expected audience",
        ),
        ({"exp": NOW - 61}, "invalid expiration time (exp) claim: token is expired"),
        ({"nbf": NOW + 61}, "invalid not before (nbf) claim: token not yet valid"),
        # With an nbf (without one, OpenBao takes iat as nbf: "not yet valid").
        (
            {"iat": NOW + 61, "nbf": NOW},
            "invalid issued at (iat) claim: token issued in the future",
        ),
        ({"iat": NOW + 61}, "invalid not before (nbf) claim: token not yet valid"),
        (
            {"iat": None, "exp": None},
            "no issued at (iat), not before (nbf), or expiration time (exp) claims in token",
        ),
        # OpenBao checks iss before the times: a foreign expired token names its issuer.
        ({"iss": "x", "exp": NOW - 1000}, "invalid issuer (iss) claim"),
        ({"exp": "soon"}, "invalid expiration time (exp) claim: expected a number"),
    ],
)
async def test_registered_claims_are_checked_with_openbao_texts(
    changes: dict[str, Any], message: str
) -> None:
    token = _sign(RSA_KEY, "RS256", _claims(**changes))
    assert await _refused(token) == "error validating token: " + message


async def test_an_audience_list_matches_if_any_entry_is_bound() -> None:
    token = _sign(RSA_KEY, "RS256", _claims(aud=["other", "mcp"]))
    assert (await _verify(token)).name == "tool-server-1"


async def test_a_token_with_an_audience_needs_a_role_that_binds_one() -> None:
    role = _role(bound_audiences=[], bound_subject="tool-server-1")
    message = await _refused(_sign(RSA_KEY, "RS256"), role=role)
    assert message == "audience claim found in JWT but no audiences bound to the role"
    token = _sign(RSA_KEY, "RS256", _claims(aud=None))
    assert (await _verify(token, role=role)).name == "tool-server-1"


async def test_bound_subject() -> None:
    role = _role(bound_subject="tool-server-2")
    message = await _refused(_sign(RSA_KEY, "RS256"), role=role)
    assert message == "error validating token: invalid subject (sub) claim"


async def test_default_clock_skew_is_sixty_seconds() -> None:
    assert await _verify(_sign(RSA_KEY, "RS256", _claims(exp=NOW - 59)))
    assert await _verify(_sign(RSA_KEY, "RS256", _claims(nbf=NOW + 59)))
    await _refused(_sign(RSA_KEY, "RS256", _claims(exp=NOW - 61)))


async def test_clock_skew_leeway_minus_one_means_none() -> None:
    role = _role(clock_skew_leeway=-1)
    await _refused(_sign(RSA_KEY, "RS256", _claims(exp=NOW - 1)), role=role)
    assert await _verify(_sign(RSA_KEY, "RS256", _claims(exp=NOW + 1)), role=role)


async def test_a_missing_exp_is_derived_from_iat_and_the_expiration_leeway() -> None:
    """OpenBao: exp = iat + expiration_leeway (150 s by default), then the clock skew."""
    role = _role(clock_skew_leeway=-1)
    token = _sign(RSA_KEY, "RS256", _claims(exp=None, iat=NOW - 149))
    assert await _verify(token, role=role)
    token = _sign(RSA_KEY, "RS256", _claims(exp=None, iat=NOW - 151))
    message = await _refused(token, role=role)
    assert message.endswith("token is expired")


async def test_a_missing_nbf_and_iat_is_derived_from_exp() -> None:
    """OpenBao: nbf = exp - not_before_leeway (150 s by default) when there is no iat."""
    role = _role(clock_skew_leeway=-1, not_before_leeway=100)
    assert await _verify(_sign(RSA_KEY, "RS256", _claims(iat=None, exp=NOW + 99)), role=role)
    message = await _refused(_sign(RSA_KEY, "RS256", _claims(iat=None, exp=NOW + 101)), role=role)
    assert message.endswith("token not yet valid")


async def test_leeways_are_bounded() -> None:
    with pytest.raises(InvalidRequestError, match=f"at most {MAX_LEEWAY_SECONDS} seconds"):
        _role(clock_skew_leeway=MAX_LEEWAY_SECONDS + 1)
    with pytest.raises(InvalidRequestError, match="at most"):
        _role(expiration_leeway="1h")
    role = _role(clock_skew_leeway=MAX_LEEWAY_SECONDS)
    await _refused(_sign(RSA_KEY, "RS256", _claims(exp=NOW - MAX_LEEWAY_SECONDS - 1)), role=role)
    assert await _verify(
        _sign(RSA_KEY, "RS256", _claims(exp=NOW - MAX_LEEWAY_SECONDS + 1)), role=role
    )


# -- identity and bound claims --------------------------------------------------------------


async def test_user_claim_claim_mappings_and_groups() -> None:
    role = _role(
        user_claim="/identity/name",
        user_claim_json_pointer=True,
        claim_mappings={"team": "team", "/org/id": "org"},
        groups_claim="groups",
    )
    token = _sign(
        RSA_KEY,
        "RS256",
        _claims(identity={"name": "svc"}, org={"id": "o-1"}, groups=["a", "", "b"]),
    )
    found = await _verify(token, role=role)
    assert found.name == "svc"
    assert found.metadata == {"team": "payments", "org": "o-1", "role": "tools"}
    assert found.groups == ("a", "b")


@pytest.mark.parametrize(
    ("fields", "changes", "message"),
    [
        ({"user_claim": "email"}, {}, 'claim "email" not found in token'),
        ({"user_claim": "iat"}, {}, 'claim "iat" could not be converted to string'),
        (
            {"claim_mappings": {"team": "t"}},
            {"team": ["x"]},
            "error converting claim 'team' to string",
        ),
        (
            {"groups_claim": "groups"},
            {},
            'failed to fetch groups: "groups" claim not found in token',
        ),
        (
            {"groups_claim": "groups"},
            {"groups": {"a": 1}},
            '"groups" claim could not be converted to string list',
        ),
    ],
)
async def test_identity_refusals(
    fields: dict[str, Any], changes: dict[str, Any], message: str
) -> None:
    token = _sign(RSA_KEY, "RS256", _claims(**changes))
    assert await _refused(token, role=_role(**fields)) == message


@pytest.mark.parametrize(
    ("bound", "kind", "changes", "ok"),
    [
        ({"team": "payments"}, "string", {}, True),
        ({"team": ["x", "payments"]}, "string", {}, True),
        ({"team": "pay*"}, "string", {}, False),
        ({"team": "pay*"}, "glob", {}, True),
        ({"team": "*ments"}, "glob", {}, True),
        ({"team": "p*y*s"}, "glob", {}, True),
        ({"team": "p*z*"}, "glob", {}, False),
        ({"teams": "b"}, "string", {"teams": ["a", "b"]}, True),
        ({"admin": True}, "string", {"admin": True}, True),
        ({"admin": True}, "string", {"admin": "true"}, False),
        ({"level": 3}, "string", {"level": 3}, True),
        ({"/org/id": "o-1"}, "string", {"org": {"id": "o-1"}}, True),
    ],
)
async def test_bound_claims(
    bound: dict[str, Any], kind: str, changes: dict[str, Any], ok: bool
) -> None:
    role = _role(bound_claims=bound, bound_claims_type=kind)
    token = _sign(RSA_KEY, "RS256", _claims(**changes))
    if ok:
        assert await _verify(token, role=role)
    else:
        message = await _refused(token, role=role)
        assert message.startswith("error validating claims: claim ")
        assert message.endswith("does not match any associated bound claim values")


async def test_a_missing_bound_claim() -> None:
    role = _role(bound_claims={"env": "prod"})
    message = await _refused(_sign(RSA_KEY, "RS256"), role=role)
    assert message == 'error validating claims: claim "env" is missing'


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("", "", True),
        ("*", "", True),
        ("*", "anything", True),
        ("a*", "a", True),
        ("*a", "ba", True),
        ("a*a", "a", False),
        ("a*b*c", "abc", True),
        ("a*b*c", "acb", False),
        ("exact", "exact", True),
        ("exact", "exactly", False),
        ("x?", "xy", False),  # only `*` is special
    ],
)
def test_glob(pattern: str, value: str, expected: bool) -> None:
    assert matches_glob(pattern, value) is expected


@given(
    st.lists(st.text(alphabet="ab*?.", max_size=4), max_size=4).map("".join),
    st.text(alphabet="ab*?.", max_size=12),
)
def test_glob_is_star_matches_any_run_and_nothing_else_is_special(pattern: str, value: str) -> None:
    reference = ".*".join(re.escape(part) for part in pattern.split("*"))
    assert matches_glob(pattern, value) is (re.fullmatch(reference, value, re.DOTALL) is not None)
