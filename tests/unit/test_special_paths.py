"""Vault's `PathsSpecial` pattern matching (exact, `*` prefix, `+` segment), as its router
matches unauthenticated paths, and the LIST form with its trailing '/'."""

from __future__ import annotations

import pytest

from tenantvault._request import Operation
from tenantvault.engines._special import PathPatterns, is_unauthenticated
from tenantvault.engines.pki import PKIEngine

PATTERNS = PathPatterns(("ca", "cert/*", "issuer/+/pem", "issuers/", "ocsp/*", "a/+/b*"))


@pytest.mark.parametrize(
    ("path", "matched"),
    [
        ("ca", True),
        ("ca/pem", False),
        ("cax", False),
        ("cert/", True),
        ("cert/ab:cd", True),
        ("cert/ab:cd/raw/pem", True),
        ("cert", False),
        ("issuer/default/pem", True),
        ("issuer/x/y/pem", False),
        ("issuer/default/der", False),
        ("issuer/default/pem/more", False),
        ("issuers/", True),
        ("issuers", False),
        ("a/x/bcd", True),
        ("a/x/bcd/e", True),
        ("a/x/c", False),
        ("roles/web", False),
        ("", False),
    ],
)
def test_patterns_match_as_vault(path: str, matched: bool) -> None:
    assert PATTERNS.matches(path) is matched


def test_pki_declares_openbao_fetches_and_nothing_else() -> None:
    """The pki type's declaration: the fetches (and LIST issuers) only."""
    engine = PKIEngine()
    for path in ("ca", "ca/pem", "ca_chain", "crl", "crl/pem", "cert/ca", "issuer/x/crl/der"):
        assert is_unauthenticated(engine, Operation.READ, path), path
    assert is_unauthenticated(engine, Operation.LIST, "issuers")
    for path in ("issuers", "issuer/x", "roles/web", "issue/web", "certs", "config/urls", "root"):
        assert not is_unauthenticated(engine, Operation.READ, path), path
    assert not is_unauthenticated(object(), Operation.READ, "ca")
