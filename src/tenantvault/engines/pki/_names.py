"""Vault's name rules for certificates: hostnames, wildcards, emails and a role's domains.

`rejected_name` is Vault's `validateNames` (openbao `path_issue_sign` / `cert_util.go`) for one
name: the order of the checks matters (wildcard refusal and hostname syntax apply even with
`allow_any_name`), and a name is refused unless a role rule accepts it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import idna

__all__ = ["NameRules", "glob_match", "is_hostname", "name_allowed"]

# Vault's hostnameRegex and leftWildLabelRegex (RFC 1123 labels; one '*' in the left label).
_HOSTNAME: Final = re.compile(
    r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])\.?$"
)
_LEFT_WILDCARD: Final = re.compile(
    r"^(\*|[a-zA-Z0-9]*\*[a-zA-Z0-9\-]*[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*\*[a-zA-Z0-9]*)$"
)


@dataclass(frozen=True, slots=True)
class NameRules:
    """The role fields `validateNames` reads."""

    allowed_domains: tuple[str, ...]
    allow_bare_domains: bool
    allow_subdomains: bool
    allow_glob_domains: bool
    allow_any_name: bool
    allow_localhost: bool
    allow_wildcard_certificates: bool
    enforce_hostnames: bool


def glob_match(pattern: str, text: str) -> bool:
    """ryanuber/go-glob: '*' matches any run of characters (dots included)."""
    if "*" not in pattern:
        return pattern == text
    parts = pattern.split("*")
    if not text.startswith(parts[0]) or not text.endswith(parts[-1]):
        return False
    position = len(parts[0])
    end = len(text) - len(parts[-1])
    for part in parts[1:-1]:
        found = text.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return position <= end


def is_hostname(name: str) -> bool:
    """RFC hostname syntax after IDNA conversion (Vault's strict `idna` profile)."""
    try:
        converted = idna.encode(name, uts46=True).decode("ascii") if not name.isascii() else name
    except idna.IDNAError:
        return False
    if len(converted.rstrip(".")) > 253 or any(len(label) > 63 for label in converted.split(".")):
        return False
    return _HOSTNAME.match(converted) is not None


def name_allowed(name: str, rules: NameRules) -> bool:
    """Whether the role accepts `name` (a CN, DNS SAN or email SAN)."""
    reduced = name
    email_domain = name
    is_email = False
    is_wildcard = False
    if "@" in reduced:
        parts = reduced.split("@")
        if len(parts) != 2:
            return False
        reduced = email_domain = parts[1]
        is_email = True
    wildcard_label = ""
    if "*" in reduced:
        is_wildcard = True
        if not rules.allow_wildcard_certificates or reduced.count("*") > 1:
            return False
        left, dot, rest = reduced.partition(".")
        wildcard_label = left
        reduced = rest if dot else ""
        if "*" in reduced:
            return False
    if is_email and is_wildcard:
        return False
    if rules.enforce_hostnames:
        if reduced and not is_hostname(reduced):
            return False
        if is_wildcard and _LEFT_WILDCARD.match(wildcard_label) is None:
            return False
    if rules.allow_any_name:
        return True
    if rules.allow_localhost:
        if reduced in ("localhost", "localdomain"):
            return True
        if rules.allow_subdomains and (
            reduced.endswith((".localhost", ".localdomain"))
            or (is_wildcard and reduced in ("localhost", "localdomain"))
        ):
            return True
    for domain in rules.allowed_domains:
        if not domain:
            continue  # a trailing comma in the role's list
        if rules.allow_bare_domains and (
            name.lower() == domain.lower() or (is_email and email_domain.lower() == domain.lower())
        ):
            return True
        if rules.allow_subdomains and (
            reduced.endswith("." + domain) or (is_wildcard and reduced.lower() == domain.lower())
        ):
            return True
        if rules.allow_glob_domains and "*" in domain and glob_match(domain, name):
            return True
    return False
