"""Issuing a certificate under a role: Vault's name, SAN and TTL rules, then the signature.

`plan_leaf` reads a request (`issue/<role>` or `sign/<role>`) against the role and the issuer
and returns what the certificate will say, or raises with Vault's texts (all 400): names the
role does not allow, IP or URI SANs it does not allow, a TTL beyond the issuer's expiry when
its `leaf_not_after_behavior` is `err`. TTLs are capped by the role's `max_ttl` (else the
mount's max lease TTL) with Vault's warning.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from tenantvault._durations import format_duration, parse_duration
from tenantvault._exceptions import InvalidRequestError
from tenantvault.engines.pki._names import glob_match, name_allowed
from tenantvault.engines.pki._roles import name_rules, string_list
from tenantvault.engines.pki._x509 import IpAddress, Names, Subject, Usage, ext_key_usages

__all__ = ["LeafPlan", "go_time", "parse_ip", "plan_leaf", "resolve_ttl"]


@dataclass(slots=True)
class LeafPlan:
    """What a leaf certificate will contain, and the warnings for the answer."""

    subject: Subject
    names: Names
    usage: Usage
    not_before: datetime
    not_after: datetime
    warnings: list[str] = field(default_factory=list)


def go_time(moment: datetime) -> str:
    """Go's RFC 3339 with nanoseconds as `time.Time` prints in Vault's messages."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    micro = moment.microsecond
    return f"{text}.{micro:06d}".rstrip("0").rstrip(".") + "Z" if micro else text + "Z"


def parse_ip(text: str) -> IpAddress:
    """One IP SAN, or Vault's refusal quoting it."""
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidRequestError(f'the value "{text}" is not a valid IP address') from None


def resolve_ttl(
    data: Mapping[str, Any],
    *,
    role_ttl: int,
    role_max_ttl: int,
    mount_default: int,
    mount_max: int,
    warnings: list[str],
) -> int:
    """Vault's TTL: the request's, else the role's, else the mount's; capped by the max."""
    raw = data.get("ttl")
    ttl = 0 if raw in (None, "") else parse_duration(raw, field="ttl")
    ttl = ttl or role_ttl or mount_default
    maximum = role_max_ttl or mount_max
    if ttl > maximum:
        warnings.append(
            f'TTL "{format_duration(ttl)}" is longer than permitted maxTTL '
            f'"{format_duration(maximum)}", so maxTTL is being used'
        )
        ttl = maximum
    return ttl


def _not_after(data: Mapping[str, Any]) -> datetime | None:
    raw = data.get("not_after")
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise InvalidRequestError("invalid value for not_after: expected a string")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError(
            f'cannot parse not_after as RFC3339 (got "{raw}")'  # quoted: a time, not a secret
        ) from None
    if parsed.tzinfo is None:
        raise InvalidRequestError(f'cannot parse not_after as RFC3339 (got "{raw}")')
    return parsed


def _csr_names(
    csr: x509.CertificateSigningRequest,
) -> tuple[list[str], list[str], list[IpAddress], list[str]]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], [], [], []
    return (
        list(san.get_values_for_type(x509.DNSName)),
        list(san.get_values_for_type(x509.RFC822Name)),
        [
            ip
            for ip in san.get_values_for_type(x509.IPAddress)
            if not isinstance(ip, ipaddress.IPv4Network | ipaddress.IPv6Network)
        ],
        list(san.get_values_for_type(x509.UniformResourceIdentifier)),
    )


def _csr_common_name(csr: x509.CertificateSigningRequest) -> str:
    values = csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _parse_other(text: str, *, what: str) -> tuple[str, str, str]:
    """`<oid>;UTF8:<value>` as (oid, type, value), or Vault's refusal."""
    oid, semicolon, rest = text.partition(";")
    if not semicolon:
        raise InvalidRequestError(f'{what}: expected a semicolon in other SAN "{text}"')
    kind, colon, value = rest.partition(":")
    if not colon:
        raise InvalidRequestError(f'{what}: expected a colon in other SAN "{text}"')
    if kind.lower() not in ("utf8", "utf-8"):
        raise InvalidRequestError(
            f"{what}: only utf8 other SANs are supported; found non-supported type in other "
            f'SAN "{text}"'
        )
    return oid, kind, value


def _other_sans(requested: list[str], allowed: list[str]) -> list[tuple[str, str]]:
    """The requested other SANs, each allowed by the role's `allowed_other_sans` globs."""
    parsed = [_parse_other(text, what="could not parse requested other SAN") for text in requested]
    if allowed == ["*"]:
        return [(oid, value) for oid, _, value in parsed]
    rules = [_parse_other(text, what="error parsing role's allowed SANs") for text in allowed]
    for oid, _, value in parsed:
        patterns = [pattern for rule_oid, _, pattern in rules if rule_oid == oid]
        if not patterns:
            raise InvalidRequestError(f"other SAN OID {oid} not allowed by this role")
        if not any(glob_match(pattern, value) for pattern in patterns):
            raise InvalidRequestError(f"other SAN {value} not allowed for OID {oid} by this role")
    return [(oid, value) for oid, _, value in parsed]


def plan_leaf(
    data: Mapping[str, Any],
    role: Mapping[str, Any],
    *,
    issuer_not_after: datetime,
    leaf_not_after_behavior: str,
    now: datetime,
    mount_default: int,
    mount_max: int,
    csr: x509.CertificateSigningRequest | None = None,
) -> LeafPlan:
    """The leaf `data` asks for under `role`, checked as Vault checks it."""
    warnings: list[str] = []
    source = "CSR" if csr is not None else "the API"
    common_name = str(data.get("common_name") or "")
    alt_names = string_list(data, "alt_names") or []
    ip_texts = string_list(data, "ip_sans") or []
    uri_sans = string_list(data, "uri_sans") or []
    ips = [parse_ip(text) for text in ip_texts]
    if csr is not None:
        if role["use_csr_common_name"]:
            if common_name:
                warnings.append(
                    "the common_name field was provided but the role is set with "
                    '"use_csr_common_name" set to true'
                )
            common_name = _csr_common_name(csr)
        if role["use_csr_sans"]:
            if alt_names:
                warnings.append(
                    "the alt_names field was provided but the role is set with "
                    '"use_csr_sans" set to true'
                )
            dns, emails, ips, uri_sans = _csr_names(csr)
            alt_names = dns + emails
        else:
            source = "the API"
    if not common_name and role["require_cn"]:
        raise InvalidRequestError(
            "the common_name field is required, or must be provided in a CSR with "
            '"use_csr_common_name" set to true, unless "require_cn" is set to false'
        )
    rules = name_rules(role)
    validations = role["cn_validations"]
    if common_name and validations != ["disabled"] and not name_allowed(common_name, rules):
        raise InvalidRequestError(f"common name {common_name} not allowed by this role")
    for name in alt_names:
        if not name_allowed(name, rules):
            raise InvalidRequestError(f"subject alternate name {name} not allowed by this role")
    if ips and not role["allow_ip_sans"]:
        raise InvalidRequestError(
            "IP Subject Alternative Names are not allowed in this role, but was provided via "
            + source
        )
    cidrs = [ipaddress.ip_network(block, strict=False) for block in role["allowed_ip_sans_cidr"]]
    for ip in ips:
        if cidrs and not any(ip in block for block in cidrs):
            raise InvalidRequestError(f'the IP address "{ip}" is not allowed in this role')
    if uri_sans:
        if not role["allowed_uri_sans"]:
            raise InvalidRequestError(
                "URI Subject Alternative Names are not allowed in this role, but were "
                "provided via " + ("CSR" if source == "CSR" else "the API")
            )
        for uri in uri_sans:
            if not any(glob_match(pattern, uri) for pattern in role["allowed_uri_sans"]):
                raise InvalidRequestError(
                    "URI Subject Alternative Names were provided via the API which are not "
                    "valid for this role"
                )
    other = _other_sans(string_list(data, "other_sans") or [], role["allowed_other_sans"])
    subject_serial = str(data.get("serial_number") or "")
    if subject_serial and not any(
        allowed == subject_serial or ("*" in allowed and glob_match(allowed, subject_serial))
        for allowed in role["allowed_serial_numbers"]
        if allowed
    ):
        raise InvalidRequestError(f"serial_number {subject_serial} not allowed by this role")
    dns = [name for name in alt_names if "@" not in name]
    emails = [name for name in alt_names if "@" in name]
    exclude_cn = bool(data.get("exclude_cn_from_sans"))
    if common_name and not exclude_cn:
        target = emails if "@" in common_name else dns
        if common_name not in target:
            target.insert(0, common_name)
    requested_not_after = _not_after(data)
    if requested_not_after is not None and data.get("ttl") not in (None, ""):
        raise InvalidRequestError(
            "Either ttl or not_after should be provided. Both should not be provided in the "
            "same request."
        )
    if requested_not_after is not None:
        not_after = requested_not_after
    else:
        ttl = resolve_ttl(
            data,
            role_ttl=role["ttl"],
            role_max_ttl=role["max_ttl"],
            mount_default=mount_default,
            mount_max=mount_max,
            warnings=warnings,
        )
        not_after = now + timedelta(seconds=ttl)
    if not_after > issuer_not_after:
        if leaf_not_after_behavior == "err":
            raise InvalidRequestError(
                f"cannot satisfy request, as TTL would result in notAfter of {go_time(not_after)}"
                f" that is beyond the expiration of the CA certificate at "
                f"{go_time(issuer_not_after)}"
            )
        if leaf_not_after_behavior == "truncate":
            not_after = issuer_not_after
    eku_names = [
        name
        for flag, name in (
            ("server_flag", "ServerAuth"),
            ("client_flag", "ClientAuth"),
            ("code_signing_flag", "CodeSigning"),
            ("email_protection_flag", "EmailProtection"),
        )
        if role[flag]
    ]
    usage = Usage(
        leaf_constraints=role["basic_constraints_valid_for_non_ca"],
        key_usage=tuple(role["key_usage"]),
        ext_key_usage=tuple(
            ext_key_usages(eku_names + list(role["ext_key_usage"]), role["ext_key_usage_oids"])
        ),
    )
    subject = Subject(
        common_name=common_name,
        country=tuple(role["country"]),
        province=tuple(role["province"]),
        locality=tuple(role["locality"]),
        street_address=tuple(role["street_address"]),
        postal_code=tuple(role["postal_code"]),
        organization=tuple(role["organization"]),
        ou=tuple(role["ou"]),
        serial_number=subject_serial,
    )
    return LeafPlan(
        subject=subject,
        names=Names(
            dns=tuple(dns),
            emails=tuple(emails),
            ips=tuple(ips),
            uris=tuple(uri_sans),
            other=tuple(other),
        ),
        usage=usage,
        not_before=now - timedelta(seconds=role["not_before_duration"]),
        not_after=not_after,
        warnings=warnings,
    )
