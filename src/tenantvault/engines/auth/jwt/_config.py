"""A jwt mount's `config`: what a write accepts (OpenBao's rules and texts), how it is stored
and how it reads back.

Keys come from exactly one source: `jwt_validation_pubkeys` (PEM keys or certificates) or
`jwks_url` (with an optional `jwks_ca_pem`). OIDC (`oidc_discovery_url`, client id/secret,
`jwks_pairs`, `provider_config`) is not implemented: such a write is refused with a 400 that
says so, rather than stored and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tenantvault._exceptions import InvalidRequestError
from tenantvault._fields import get_bool, get_str
from tenantvault.engines.auth.jwt._keys import ASYMMETRIC_ALGORITHMS, parse_pem

__all__ = ["CONFIG_PARAMETERS", "JwtConfig", "string_list"]

# Every field OpenBao's config endpoint takes; the OIDC ones only to refuse them clearly.
CONFIG_PARAMETERS: Final = frozenset(
    {
        "bound_issuer",
        "default_role",
        "jwks_ca_pem",
        "jwks_pairs",
        "jwks_url",
        "jwt_supported_algs",
        "jwt_validation_pubkeys",
        "namespace_in_state",
        "oidc_client_id",
        "oidc_client_secret",
        "oidc_discovery_ca_pem",
        "oidc_discovery_url",
        "oidc_response_mode",
        "oidc_response_types",
        "override_allowed_server_names",
        "provider_config",
        "unsupported_critical_cert_extensions",
    }
)
_OIDC_REFUSAL: Final = (
    "OIDC is not supported by tenantvault's jwt auth method (oidc_discovery_url, "
    "oidc_client_id/oidc_client_secret, jwks_pairs and provider_config are refused): "
    "configure jwt_validation_pubkeys or jwks_url"
)
# One config holds at most this many PEM keys and this much CA PEM: bounds what a tenant
# admin can make every login parse.
_MAX_PUBKEYS: Final = 64
_MAX_PEM_CHARS: Final = 64 * 1024


def string_list(data: Mapping[str, Any], name: str) -> list[str] | None:
    """Vault's TypeCommaStringSlice: a list, or a comma-separated string; None if absent."""
    raw = data.get(name)
    if raw is None:
        return None
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(raw, list):
        items: list[str] = []
        for item in raw:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise InvalidRequestError(f"invalid value for {name}: expected a list of strings")
            text = item if isinstance(item, str) else str(item)
            if text.strip():
                items.append(text.strip())
        return items
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return [str(raw)]
    raise InvalidRequestError(f"invalid value for {name}: expected a list of strings")


@dataclass(frozen=True, slots=True)
class JwtConfig:
    """The stored configuration of one jwt mount (public material only: no secrets)."""

    jwt_validation_pubkeys: tuple[str, ...] = ()
    jwks_url: str = ""
    jwks_ca_pem: str = ""
    jwt_supported_algs: tuple[str, ...] = ()
    bound_issuer: str = ""
    default_role: str = ""
    namespace_in_state: bool = True

    @property
    def algorithms(self) -> frozenset[str]:
        """The algorithms logins may use: the configured ones, or every asymmetric one."""
        return frozenset(self.jwt_supported_algs) or ASYMMETRIC_ALGORITHMS

    @classmethod
    def from_request(cls, data: Mapping[str, Any], existing: JwtConfig | None) -> JwtConfig:
        """Validate a config write (without the JWKS fetch, which the engine does next)."""
        pubkeys = string_list(data, "jwt_validation_pubkeys") or []
        jwks_url = (get_str(data, "jwks_url") or "").strip()
        sources = [
            bool(pubkeys),
            bool(jwks_url),
            bool(data.get("jwks_pairs")),
            bool((get_str(data, "oidc_discovery_url") or "").strip()),
            bool(data.get("provider_config")),
        ]
        if sum(sources) != 1:
            raise InvalidRequestError(
                "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs', "
                "'oidc_discovery_url', or 'provider_config' must be set"
            )
        if any(sources[2:]) or data.get("oidc_client_id") or data.get("oidc_client_secret"):
            raise InvalidRequestError(_OIDC_REFUSAL)
        if len(pubkeys) > _MAX_PUBKEYS:
            raise InvalidRequestError(
                f"jwt_validation_pubkeys: at most {_MAX_PUBKEYS} keys per mount"
            )
        for pem in pubkeys:
            try:
                if len(pem) > _MAX_PEM_CHARS:
                    raise ValueError("data does not contain any valid public keys")
                parse_pem(pem)
            except ValueError as error:
                raise InvalidRequestError(f"error parsing public key: {error}") from None
        ca_pem = get_str(data, "jwks_ca_pem") or ""
        if len(ca_pem) > _MAX_PEM_CHARS:
            raise InvalidRequestError("error checking jwks_ca_pem")
        algorithms = string_list(data, "jwt_supported_algs") or []
        for alg in algorithms:
            if alg not in ASYMMETRIC_ALGORITHMS:
                # Symmetric (HS*) and `none` are never accepted, as in OpenBao.
                raise InvalidRequestError(
                    f'invalid jwt_supported_algs: unsupported signing algorithm "{alg}"'
                )
        in_state = get_bool(data, "namespace_in_state")
        if in_state is None:
            in_state = existing.namespace_in_state if existing is not None else True
        return cls(
            jwt_validation_pubkeys=tuple(pubkeys),
            jwks_url=jwks_url,
            jwks_ca_pem=ca_pem,
            jwt_supported_algs=tuple(algorithms),
            bound_issuer=get_str(data, "bound_issuer") or "",
            default_role=(get_str(data, "default_role") or "").lower(),
            namespace_in_state=in_state,
        )

    def to_record(self) -> dict[str, Any]:
        """The stored form (JSON)."""
        return {
            "jwt_validation_pubkeys": list(self.jwt_validation_pubkeys),
            "jwks_url": self.jwks_url,
            "jwks_ca_pem": self.jwks_ca_pem,
            "jwt_supported_algs": list(self.jwt_supported_algs),
            "bound_issuer": self.bound_issuer,
            "default_role": self.default_role,
            "namespace_in_state": self.namespace_in_state,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> JwtConfig:
        """The inverse of `to_record`."""
        return cls(
            jwt_validation_pubkeys=tuple(record.get("jwt_validation_pubkeys", ())),
            jwks_url=record.get("jwks_url", ""),
            jwks_ca_pem=record.get("jwks_ca_pem", ""),
            jwt_supported_algs=tuple(record.get("jwt_supported_algs", ())),
            bound_issuer=record.get("bound_issuer", ""),
            default_role=record.get("default_role", ""),
            namespace_in_state=bool(record.get("namespace_in_state", True)),
        )

    def read(self) -> dict[str, Any]:
        """`GET config`'s data, with OpenBao's keys (the OIDC ones always empty)."""
        return {
            "bound_issuer": self.bound_issuer,
            "default_role": self.default_role,
            "jwks_ca_pem": self.jwks_ca_pem,
            "jwks_url": self.jwks_url,
            "jwt_supported_algs": list(self.jwt_supported_algs),
            "jwt_validation_pubkeys": list(self.jwt_validation_pubkeys),
            "namespace_in_state": self.namespace_in_state,
            "oidc_client_id": "",
            "oidc_discovery_ca_pem": "",
            "oidc_discovery_url": "",
            "oidc_response_mode": "",
            "oidc_response_types": [],
            "override_allowed_server_names": [],
            "provider_config": {},
            "status": "valid",
        }
