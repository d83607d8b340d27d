"""Vault's name rules for PKI roles (`validateNames`): each flag accepts what Vault accepts and
nothing more, in Vault's order (wildcard refusal and hostname syntax beat allow_any_name)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tenantvault._exceptions import InvalidRequestError
from tenantvault.engines.pki._keys import normalize_key
from tenantvault.engines.pki._names import NameRules, glob_match, is_hostname, name_allowed
from tenantvault.engines.pki._roles import read_role_write, string_list
from tenantvault.engines.pki._x509 import format_serial

NONE = NameRules(
    allowed_domains=("example.com",),
    allow_bare_domains=False,
    allow_subdomains=False,
    allow_glob_domains=False,
    allow_any_name=False,
    allow_localhost=False,
    allow_wildcard_certificates=True,
    enforce_hostnames=True,
)


def rules(**changes: Any) -> NameRules:
    return dataclasses.replace(NONE, **changes)


def test_allowed_domains_alone_accepts_nothing() -> None:
    """Vault's pitfall: a domain without bare/subdomain/glob flags matches no name."""
    assert not name_allowed("example.com", NONE)
    assert not name_allowed("a.example.com", NONE)


@pytest.mark.parametrize(
    ("name", "bare", "sub"),
    [
        ("example.com", True, False),
        ("EXAMPLE.com", True, False),
        ("a.example.com", False, True),
        ("a.b.example.com", False, True),
        ("*.example.com", False, True),
        ("user@example.com", True, False),
        ("notexample.com", False, False),
        ("example.com.evil.org", False, False),
    ],
)
def test_bare_and_subdomains(name: str, bare: bool, sub: bool) -> None:
    assert name_allowed(name, rules(allow_bare_domains=True)) is bare
    assert name_allowed(name, rules(allow_subdomains=True)) is sub


def test_hostname_rules_apply_even_to_any_name() -> None:
    anything = rules(allow_any_name=True)
    assert name_allowed("whatever.test", anything)
    assert not name_allowed("bad_name.test", anything)
    assert not name_allowed("-lead.test", anything)
    assert name_allowed("bad_name.test", rules(allow_any_name=True, enforce_hostnames=False))
    assert not name_allowed(
        "*.example.com", rules(allow_any_name=True, allow_wildcard_certificates=False)
    )
    assert not name_allowed("*.*.example.com", rules(allow_subdomains=True))
    assert not name_allowed("a.*.example.com", rules(allow_subdomains=True))
    assert not name_allowed("user@*.example.com", rules(allow_any_name=True))
    assert name_allowed("b*z.example.com", rules(allow_subdomains=True))


def test_localhost_and_globs() -> None:
    assert name_allowed("localhost", rules(allow_localhost=True))
    assert not name_allowed("a.localhost", rules(allow_localhost=True))
    assert name_allowed("a.localhost", rules(allow_localhost=True, allow_subdomains=True))
    globbed = rules(allowed_domains=("svc-*.example.com",), allow_glob_domains=True)
    assert name_allowed("svc-api.example.com", globbed)
    assert not name_allowed("api.example.com", globbed)
    assert glob_match("a*c", "abbbc")
    assert not glob_match("a*c", "abbb")
    assert glob_match("*", "")


def test_hostnames_and_idna() -> None:
    assert is_hostname("api.example.com")
    assert is_hostname("bücher.example")
    assert not is_hostname("a" * 64 + ".com")
    assert not is_hostname("under_score.com")


def test_key_sizes_and_serials() -> None:
    assert normalize_key("rsa", 0) == ("rsa", 2048)
    assert normalize_key("ec", 0) == ("ec", 256)
    assert normalize_key("ed25519", 0) == ("ed25519", 0)
    with pytest.raises(
        InvalidRequestError, match="RSA keys < 2048 bits are unsafe and not supported: got 1024"
    ):
        normalize_key("rsa", 1024)
    with pytest.raises(InvalidRequestError, match="unsupported bit length for EC key: 1024"):
        normalize_key("ec", 1024)
    with pytest.raises(InvalidRequestError, match="unknown key type dsa"):
        normalize_key("dsa", 0)
    assert format_serial(0x0A0B) == "0a:0b"
    assert format_serial(0x1FF) == "01:ff"


def test_role_defaults_and_lists() -> None:
    role = read_role_write({"allowed_domains": "a.com, b.com", "ttl": "1h", "key_type": "ec"})
    assert role["allowed_domains"] == ["a.com", "b.com"]
    assert (role["ttl"], role["max_ttl"], role["not_before_duration"]) == (3600, 0, 30)
    assert (role["key_type"], role["key_bits"]) == ("ec", 256)
    assert role["allow_localhost"]
    assert role["server_flag"]
    assert role["client_flag"]
    assert role["key_usage"] == ["DigitalSignature", "KeyAgreement", "KeyEncipherment"]
    assert list(role) == sorted(role)
    with pytest.raises(InvalidRequestError, match='"ttl" value must be less than "max_ttl" value'):
        read_role_write({"ttl": "2h", "max_ttl": "1h"})
    assert string_list({"x": ["a ", "", "b"]}, "x") == ["a", "b"]
