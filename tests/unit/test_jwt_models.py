"""The jwt auth method's `config` and `role/<name>` writes: OpenBao's rules and texts, the
OIDC refusals, and the stored form round-tripping."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tenantvault._exceptions import InvalidRequestError
from tenantvault.engines.auth.jwt._config import JwtConfig
from tenantvault.engines.auth.jwt._keys import ASYMMETRIC_ALGORITHMS
from tenantvault.engines.auth.jwt._role import JwtRole

PEM = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
EXACTLY_ONE = (
    "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs', "
    "'oidc_discovery_url', or 'provider_config' must be set"
)


def _config(**data: Any) -> JwtConfig:
    return JwtConfig.from_request(data, None)


def _config_error(**data: Any) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        _config(**data)
    return caught.value.message


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"bound_issuer": "x"},
        {"jwt_validation_pubkeys": [PEM], "jwks_url": "http://127.0.0.1/jwks"},
        {"jwt_validation_pubkeys": [PEM], "oidc_discovery_url": "https://idp"},
    ],
)
def test_config_needs_exactly_one_key_source(data: dict[str, Any]) -> None:
    assert _config_error(**data) == EXACTLY_ONE


@pytest.mark.parametrize(
    "data",
    [
        {"oidc_discovery_url": "https://idp.example"},
        {"jwks_pairs": [{"jwks_url": "https://idp.example/jwks"}]},
        {"provider_config": {"provider": "azure"}},
        {"jwks_url": "https://idp.example/jwks", "oidc_client_id": "c"},
    ],
)
def test_oidc_is_refused_with_a_clear_reason(data: dict[str, Any]) -> None:
    message = _config_error(**data)
    assert message.startswith("OIDC is not supported by tenantvault's jwt auth method")
    assert "jwt_validation_pubkeys or jwks_url" in message


def test_a_bad_pem_is_refused_with_openbao_text() -> None:
    message = _config_error(jwt_validation_pubkeys=["garbage"])
    assert message == "error parsing public key: data does not contain any valid public keys"


@pytest.mark.parametrize("alg", ["HS256", "HS512", "none", "RSA1_5", "es256"])
def test_only_asymmetric_algorithms_are_supported(alg: str) -> None:
    message = _config_error(jwt_validation_pubkeys=[PEM], jwt_supported_algs=["RS256", alg])
    assert message == f'invalid jwt_supported_algs: unsupported signing algorithm "{alg}"'


def test_config_reads_back_in_openbao_shape_and_round_trips() -> None:
    config = _config(
        jwt_validation_pubkeys=PEM,
        jwt_supported_algs="ES256,RS256",
        bound_issuer="https://issuer",
        default_role="Tools",
    )
    assert config.algorithms == {"ES256", "RS256"}
    data = config.read()
    assert data["jwt_validation_pubkeys"] == [PEM.strip()]
    assert data["default_role"] == "tools"
    assert data["status"] == "valid"
    assert data["oidc_discovery_url"] == ""
    assert JwtConfig.from_record(config.to_record()) == config
    assert _config(jwks_url="https://idp/jwks").algorithms == ASYMMETRIC_ALGORITHMS


def _role(existing: JwtRole | None = None, **data: Any) -> JwtRole:
    return JwtRole.from_request(data, existing)


def _role_error(existing: JwtRole | None = None, **data: Any) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        _role(existing, **data)
    return caught.value.message


BASE: dict[str, Any] = {"role_type": "jwt", "user_claim": "sub", "bound_subject": "x"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"role_type": "jwt"}, "a user claim must be defined on the role"),
        (
            {"role_type": "jwt", "user_claim": "sub"},
            "must have at least one bound constraint when creating/updating a role",
        ),
        (
            {"user_claim": "sub", "bound_subject": "x"},
            "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.",
        ),
        ({**BASE, "role_type": "bad"}, "invalid 'role_type': bad"),
        ({**BASE, "bound_claims_type": "regex"}, "invalid 'bound_claims_type': regex"),
        (
            {**BASE, "bound_claims_type": "glob", "bound_claims": {"a": 5}},
            "claim is not a string: 5",
        ),
        (
            {**BASE, "claim_mappings": {"a": "role"}},
            'metadata key "role" is reserved and may not be a mapping destination',
        ),
        (
            {**BASE, "claim_mappings": {"a": "x", "b": "x"}},
            'multiple keys are mapped to metadata key "x"',
        ),
        (
            {**BASE, "token_ttl": "2h", "token_max_ttl": "1h"},
            "'token_ttl' cannot be greater than 'token_max_ttl'",
        ),
        ({**BASE, "token_type": "weird"}, "invalid 'token_type' value \"weird\""),
        ({**BASE, "token_num_uses": -1}, "'token_num_uses' cannot be negative"),
        (
            {**BASE, "token_period": "1h", "token_type": "batch"},
            "'token_type' cannot be 'batch' or 'default_batch' when set to generate "
            "periodic tokens",
        ),
        ({**BASE, "token_bound_cidrs": "300.1.1.1/8"}, 'invalid CIDR block "300.1.1.1/8"'),
    ],
)
def test_role_refusals(data: dict[str, Any], message: str) -> None:
    assert _role_error(**data) == message


def test_an_oidc_role_is_refused_with_a_clear_reason() -> None:
    message = _role_error(user_claim="sub", bound_subject="x", allowed_redirect_uris="https://cb")
    assert 'role_type "oidc" is not supported' in message


def test_a_write_updates_only_what_it_names_but_role_type_must_be_repeated() -> None:
    first = _role(**BASE, token_policies="a,B", token_ttl="1h", bound_audiences="mcp")
    assert first.token_policies == ("a", "b")
    second = _role(first, role_type="jwt", token_ttl=60)
    assert (second.token_ttl, second.token_policies, second.bound_audiences) == (
        60,
        ("a", "b"),
        ("mcp",),
    )
    # As in OpenBao: a write without role_type means "oidc", which needs redirect URIs.
    assert "allowed_redirect_uris" in _role_error(first, token_ttl=60)


def test_role_reads_back_in_openbao_shape_and_round_trips() -> None:
    role = _role(
        **BASE,
        bound_claims={"team": ["a", "b"]},
        claim_mappings={"team": "team"},
        token_policies=["p1"],
        token_bound_cidrs="10.0.0.0/8",
        expiration_leeway=-1,
    )
    data = role.read()
    assert data["bound_claims"] == {"team": ["a", "b"]}
    assert data["bound_audiences"] is None
    assert data["token_bound_cidrs"] == ["10.0.0.0/8"]
    assert data["expiration_leeway"] == -1
    assert data["role_type"] == "jwt"
    assert data["token_type"] == "default"
    assert JwtRole.from_record(role.to_record()).read() == data
    result = role.login_result(display_name="svc", metadata={"role": "r"})
    assert result.policies == ("p1",)
    assert result.bound_cidrs == ("10.0.0.0/8",)


def test_legacy_token_field_names_are_aliases_until_the_new_name_is_written() -> None:
    role = _role(**BASE, policies="p1,p2", ttl="1h", num_uses=3)
    assert (role.token_policies, role.token_ttl, role.token_num_uses) == (("p1", "p2"), 3600, 3)
    data = role.read()
    assert (data["policies"], data["ttl"], data["num_uses"]) == (["p1", "p2"], 3600, 3)
    role = _role(role, role_type="jwt", token_policies="p3", ttl="2h")
    data = role.read()
    assert "policies" not in data
    assert (data["token_policies"], data["ttl"], data["token_ttl"]) == (["p3"], 7200, 7200)
    assert JwtRole.from_record(role.to_record()).read() == data
