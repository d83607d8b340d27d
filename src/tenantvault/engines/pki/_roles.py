"""PKI roles: Vault's fields, their defaults and how a write reads them (`roles/<name>`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tenantvault._durations import parse_duration
from tenantvault._exceptions import InvalidRequestError
from tenantvault._fields import get_bool, get_int, get_str
from tenantvault.engines.pki._keys import normalize_key
from tenantvault.engines.pki._names import NameRules

__all__ = ["ROLE_FIELDS", "name_rules", "read_role_write", "string_list"]

_BOOLS: Final = {
    "allow_any_name": False,
    "allow_bare_domains": False,
    "allow_glob_domains": False,
    "allow_globs_in_identity_templates": False,
    "allow_ip_sans": True,
    "allow_localhost": True,
    "allow_subdomains": False,
    "allow_token_displayname": False,
    "allow_wildcard_certificates": True,
    "allowed_domains_template": False,
    "allowed_uri_sans_template": False,
    "basic_constraints_valid_for_non_ca": False,
    "client_flag": True,
    "code_signing_flag": False,
    "email_protection_flag": False,
    "enforce_hostnames": True,
    "generate_lease": False,
    "no_store": False,
    "require_cn": True,
    "server_flag": True,
    "use_csr_common_name": True,
    "use_csr_sans": True,
    "use_pss": False,
}
_LISTS: Final[dict[str, list[str]]] = {
    "allowed_domains": [],
    "allowed_ip_sans_cidr": [],
    "allowed_other_sans": [],
    "allowed_serial_numbers": [],
    "allowed_uri_sans": [],
    "allowed_user_ids": [],
    "cn_validations": ["email", "hostname"],
    "country": [],
    "ext_key_usage": [],
    "ext_key_usage_oids": [],
    "key_usage": ["DigitalSignature", "KeyAgreement", "KeyEncipherment"],
    "locality": [],
    "organization": [],
    "ou": [],
    "policy_identifiers": [],
    "postal_code": [],
    "province": [],
    "street_address": [],
}
_STRINGS: Final = {
    "issuer_ref": "default",
    "key_type": "rsa",
    "not_after": "",
    "not_after_bound": "permit",
    "not_before": "",
    "not_before_bound": "permit",
}
_DURATIONS: Final = {"ttl": 0, "max_ttl": 0, "not_before_duration": 30}
_INTS: Final = {"key_bits": 0, "signature_bits": 0}

ROLE_FIELDS: Final = frozenset({*_BOOLS, *_LISTS, *_STRINGS, *_DURATIONS, *_INTS})


def string_list(data: Mapping[str, Any], name: str) -> list[str] | None:
    """A list-of-strings field: a JSON list, or a comma-separated string (Vault's
    `TypeCommaStringSlice`), each item trimmed."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    raise InvalidRequestError(f"invalid value for {name}: expected a list of strings")


def read_role_write(data: Mapping[str, Any]) -> dict[str, Any]:
    """The stored role for a write of `data` (fields not sent keep their default)."""
    role: dict[str, Any] = {}
    for name, default in _BOOLS.items():
        role[name] = get_bool(data, name, default=default)
    for name, default_list in _LISTS.items():
        listed = string_list(data, name)
        role[name] = list(default_list) if listed is None else listed
    for name, default_text in _STRINGS.items():
        role[name] = get_str(data, name, default=default_text) or default_text
    for name, seconds in _DURATIONS.items():
        raw = data.get(name)
        role[name] = seconds if raw in (None, "") else parse_duration(raw, field=name)
    for name, number in _INTS.items():
        role[name] = get_int(data, name, default=number)
    if role["key_type"] != "any":
        role["key_type"], role["key_bits"] = normalize_key(role["key_type"], role["key_bits"])
    elif role["key_type"] not in ("rsa", "ec", "ed25519", "any"):
        raise InvalidRequestError(f"unknown key type {role['key_type']}")
    if role["max_ttl"] and role["ttl"] > role["max_ttl"]:
        raise InvalidRequestError('"ttl" value must be less than "max_ttl" value')
    return dict(sorted(role.items()))  # in the order Vault's JSON lists them


def name_rules(role: Mapping[str, Any]) -> NameRules:
    """The name-validation view of a stored role."""
    return NameRules(
        allowed_domains=tuple(role["allowed_domains"]),
        allow_bare_domains=role["allow_bare_domains"],
        allow_subdomains=role["allow_subdomains"],
        allow_glob_domains=role["allow_glob_domains"],
        allow_any_name=role["allow_any_name"],
        allow_localhost=role["allow_localhost"],
        allow_wildcard_certificates=role["allow_wildcard_certificates"],
        enforce_hostnames=role["enforce_hostnames"],
    )
