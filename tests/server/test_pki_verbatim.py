"""`sign-verbatim` over HTTP: the CSR's subject and extensions kept, no role name rules, the
request's usage fields, a named role's TTLs, storage and lease, and the ACL like any `update`
path. Checked against OpenBao 2.7.2 (tests/integration/test_pki_crl_differential.py)."""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import FakeClock
from tests.server.conftest import Vault
from tests.server.test_pki import cert_of, mount_pki, ok, pki_vault, root_ca

__all__ = ["pki_vault"]  # the fixture, shared with test_pki

_CUSTOM = x509.ObjectIdentifier("1.3.6.1.4.1.99999.1")
SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"),
        x509.NameAttribute(NameOID.COMMON_NAME, "svc.internal"),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@acme.test"),
    ]
)
SANS = x509.SubjectAlternativeName(
    [
        x509.DNSName("svc.internal"),
        x509.DNSName("not-a-role-domain.test"),
        x509.RFC822Name("a@b.test"),
        x509.UniformResourceIdentifier("spiffe://acme/svc"),
    ]
)


def csr(*, key_usage: bool = False, custom: bool = False, constraints: bool = False) -> str:
    """A CSR with SUBJECT and SANS, and optionally its own extensions."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(SUBJECT)
    builder = builder.add_extension(SANS, critical=False)
    if key_usage:
        only_signing = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(only_signing, critical=True)
    if custom:
        builder = builder.add_extension(x509.UnrecognizedExtension(_CUSTOM, b"\x05\x00"), False)
    if constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    signed = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    return signed.public_bytes(serialization.Encoding.PEM).decode()


async def test_subject_and_extensions_are_kept(vault: Vault) -> None:
    """The certificate's subject is the CSR's (every attribute, in order) and its SANs and
    other extensions are the CSR's, names no role would allow included; a CSR's key usage
    replaces the default one; its basic constraints are dropped with OpenBao's warning."""
    await mount_pki(vault)
    root = await root_ca(vault)
    body = await ok(
        await vault.root(
            "POST",
            "pki/sign-verbatim",
            json={"csr": csr(key_usage=True, custom=True, constraints=True), "ttl": "1h"},
        )
    )
    assert body["warnings"] == [
        "specified CSR contained a Basic Constraints extension that was ignored during issuance"
    ]
    data = body["data"]
    assert sorted(data) == [
        "ca_chain",
        "certificate",
        "expiration",
        "issuing_ca",
        "not_before",
        "serial_number",
    ]
    certificate = cert_of(data["certificate"])
    assert certificate.subject == SUBJECT
    assert certificate.issuer == cert_of(root["certificate"]).subject
    extensions = certificate.extensions
    assert extensions.get_extension_for_class(x509.SubjectAlternativeName).value == SANS
    custom = extensions.get_extension_for_oid(_CUSTOM).value
    assert isinstance(custom, x509.UnrecognizedExtension)
    assert custom.value == b"\x05\x00"
    usage = extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_encipherment
    assert not usage.key_agreement
    assert x509.BasicConstraints not in {type(extension.value) for extension in extensions}
    root_key = cert_of(root["certificate"]).public_key()
    assert isinstance(root_key, ec.EllipticCurvePublicKey)
    certificate.verify_directly_issued_by(cert_of(root["certificate"]))
    listed = (await ok(await vault.root("LIST", "pki/certs")))["data"]["keys"]
    assert data["serial_number"] in listed


async def test_defaults_without_a_role(pki_vault: Vault, clock: FakeClock) -> None:
    """No role: the mount's default TTL (768h), NotBefore 30s back, OpenBao's default key
    usage (DigitalSignature, KeyAgreement, KeyEncipherment) and no extended key usage; a CSR
    without SANs gets none (the CN is not added)."""
    await mount_pki(pki_vault)
    await root_ca(pki_vault)
    bare = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "only.cn")]))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    data = (await ok(await pki_vault.root("POST", "pki/sign-verbatim", json={"csr": bare})))["data"]
    certificate = cert_of(data["certificate"])
    now = clock.now // 1_000_000_000
    assert data["not_before"] == now - 30
    assert data["expiration"] == now + 768 * 3600
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.digital_signature, usage.key_agreement, usage.key_encipherment) == (
        True,
        True,
        True,
    )
    kinds = {type(extension.value) for extension in certificate.extensions}
    assert x509.ExtendedKeyUsage not in kinds
    assert x509.SubjectAlternativeName not in kinds


async def test_request_usage_fields_and_formats(vault: Vault) -> None:
    """`key_usage`, `ext_key_usage` and `ext_key_usage_oids` shape the usage; `der` answers
    base64 DER; `remove_roots_from_chain` drops the root and with it `ca_chain`;
    `pem_bundle` appends the chain to the certificate."""
    await mount_pki(vault)
    root = await root_ca(vault)
    data = (
        await ok(
            await vault.root(
                "POST",
                "pki/sign-verbatim",
                json={
                    "csr": csr(),
                    "ttl": "1h",
                    "key_usage": "CRLSign",
                    "ext_key_usage": ["ServerAuth", "clientauth"],
                    "ext_key_usage_oids": "1.2.3.4",
                    "format": "der",
                    "remove_roots_from_chain": True,
                },
            )
        )
    )["data"]
    assert "ca_chain" not in data
    certificate = x509.load_der_x509_certificate(base64.b64decode(data["certificate"]))
    assert base64.b64decode(data["issuing_ca"]) == cert_of(root["certificate"]).public_bytes(
        serialization.Encoding.DER
    )
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.crl_sign
    assert not usage.digital_signature
    assert list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        x509.ObjectIdentifier("1.2.3.4"),
    ]
    bundle = (
        await ok(
            await vault.root(
                "POST", "pki/sign-verbatim", json={"csr": csr(), "format": "pem_bundle"}
            )
        )
    )["data"]
    blocks = x509.load_pem_x509_certificates(bundle["certificate"].encode())
    assert [block.subject for block in blocks] == [SUBJECT, cert_of(root["certificate"]).subject]


async def test_a_named_role_lends_its_ttls_storage_and_lease(
    pki_vault: Vault, clock: FakeClock
) -> None:
    """`sign-verbatim/<role>`: the role's ttl, max_ttl (with sign's warning) and
    not_before_duration apply, its key usage and name rules do not; `no_store` keeps the
    certificate out of the store; `generate_lease` gives a lease; an unknown role is 400."""
    vault = pki_vault
    await mount_pki(vault)
    await root_ca(vault)
    role = {
        "ttl": "2h",
        "max_ttl": "3h",
        "not_before_duration": "60s",
        "key_usage": ["CertSign"],
        "allowed_domains": ["nothing.test"],
    }
    await ok(await vault.root("POST", "pki/roles/v", json=role))
    now = clock.now // 1_000_000_000
    signed = await ok(await vault.root("POST", "pki/sign-verbatim/v", json={"csr": csr()}))
    assert signed["data"]["not_before"] == now - 60
    assert signed["data"]["expiration"] == now + 2 * 3600
    usage = cert_of(signed["data"]["certificate"]).extensions.get_extension_for_class(x509.KeyUsage)
    assert not usage.value.key_cert_sign
    capped = await ok(
        await vault.root("POST", "pki/sign-verbatim/v", json={"csr": csr(), "ttl": "5h"})
    )
    assert capped["warnings"] == [
        'TTL "5h0m0s" is longer than permitted maxTTL "3h0m0s", so maxTTL is being used'
    ]
    assert capped["data"]["expiration"] == now + 3 * 3600
    await ok(await vault.root("POST", "pki/roles/quiet", json={"no_store": True}))
    quiet = await ok(await vault.root("POST", "pki/sign-verbatim/quiet", json={"csr": csr()}))
    listed = (await ok(await vault.root("LIST", "pki/certs")))["data"]["keys"]
    assert quiet["data"]["serial_number"] not in listed
    assert signed["data"]["serial_number"] in listed
    await ok(await vault.root("POST", "pki/roles/leased", json={"generate_lease": True}))
    leased = await ok(await vault.root("POST", "pki/sign-verbatim/leased", json={"csr": csr()}))
    assert leased["lease_id"].startswith("pki/sign-verbatim/leased/")
    assert leased["lease_duration"] == 768 * 3600
    unknown = await vault.root("POST", "pki/sign-verbatim/nope", json={"csr": csr()})
    assert unknown.status_code == 400
    assert unknown.json()["errors"] == ["unknown role: nope"]


async def test_issuer_paths_and_refusals(vault: Vault) -> None:
    """`issuer/<ref>/sign-verbatim(/<role>)` signs with that issuer; an unknown issuer is
    OpenBao's 500; a missing or unparsable CSR, or one for a weak RSA key, is 400 with its
    texts."""
    await mount_pki(vault)
    root = await root_ca(vault)
    await ok(await vault.root("POST", "pki/roles/v", json={"ttl": "2h"}))
    for path in (
        f"pki/issuer/{root['issuer_id']}/sign-verbatim",
        "pki/issuer/default/sign-verbatim/v",
    ):
        data = (await ok(await vault.root("POST", path, json={"csr": csr()})))["data"]
        assert cert_of(data["certificate"]).subject == SUBJECT
    missing = await vault.root("POST", "pki/issuer/nope/sign-verbatim", json={"csr": csr()})
    assert missing.status_code == 500
    assert missing.json()["errors"] == [
        "1 error occurred:\n\t* could not fetch the CA certificate (was one set?): unable to "
        "find PKI issuer for reference: nope\n\n"
    ]
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused
    weak_csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(SUBJECT)
        .sign(weak, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    refusals: tuple[tuple[dict[str, str], str], ...] = (
        ({}, '"csr" is empty'),
        ({"csr": "garbage"}, "csr contains no data"),
        ({"csr": weak_csr}, "RSA keys < 2048 bits are unsafe and not supported"),
    )
    for body, error in refusals:
        response = await vault.root("POST", "pki/sign-verbatim", json=body)
        assert response.status_code == 400
        assert response.json()["errors"] == [error]


async def test_policy_gates_sign_verbatim(vault: Vault) -> None:
    """`update` on the path is what it takes (as for `sign`); `update` on `sign/*` is not
    enough, and a role-named path needs its own grant."""
    await vault.create_tenant("t")
    await mount_pki(vault, namespace="t")
    await root_ca(vault, namespace="t")
    await vault.write_policy(
        "t",
        "verbatim",
        'path "pki/sign-verbatim" { capabilities = ["update"] }\n'
        'path "pki/sign/*" { capabilities = ["update"] }',
    )
    token = (await vault.create_token("t", ["verbatim"]))["client_token"]
    granted = await vault.request("POST", "pki/sign-verbatim", token=token, json={"csr": csr()})
    assert granted.status_code == 200, granted.text
    assert cert_of(granted.json()["data"]["certificate"]).subject == SUBJECT
    denied = await vault.request("POST", "pki/sign-verbatim/v", token=token, json={"csr": csr()})
    assert denied.status_code == 403
