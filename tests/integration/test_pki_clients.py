"""Real clients on the pki engine: hvac builds a root CA, an intermediate signed by it and a
leaf under a role, signs a CSR, revokes and tidies; `openssl verify` (a real subprocess)
accepts the chain; the `bao` CLI enables the engine and issues; two tenants' same-named
mounts and roles are two CAs that cannot reach each other."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration._support import BaoCLI, BaoResult, unique_name
from tests.integration.conftest import TenantVaultServer

pytestmark = pytest.mark.integration

ROLE = {
    "allowed_domains": ["example.com"],
    "allow_subdomains": True,
    "key_type": "ec",
    "max_ttl": "720h",
}


def ok(result: BaoResult) -> BaoResult:
    assert result.code == 0, f"bao failed ({result.code}):\n{result.err}\n{result.out}"
    return result


def _tenant_client(server: TenantVaultServer) -> tuple[hvac.Client, str]:
    addr, root = server
    tenant = unique_name()
    hvac.Client(url=addr, token=root).sys.create_namespace(tenant)
    return hvac.Client(url=addr, token=root, namespace=tenant), tenant


def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _hierarchy(client: hvac.Client) -> dict[str, Any]:
    """Root CA on pki/, an intermediate on pki_int/ signed by it, a role on the intermediate."""
    for path in ("pki", "pki_int"):
        client.sys.enable_secrets_engine("pki", path=path, config={"max_lease_ttl": "87600h"})
    root = client.secrets.pki.generate_root(
        "internal", "Example Root", extra_params={"key_type": "ec", "ttl": "8760h"}
    )["data"]
    csr = client.secrets.pki.generate_intermediate(
        "internal", "Example Intermediate", extra_params={"key_type": "ec"}, mount_point="pki_int"
    )["data"]["csr"]
    signed = client.secrets.pki.sign_intermediate(
        csr, "Example Intermediate", extra_params={"ttl": "4380h"}
    )["data"]
    client.secrets.pki.set_signed_intermediate(signed["certificate"], mount_point="pki_int")
    client.secrets.pki.create_or_update_role("web", extra_params=ROLE, mount_point="pki_int")
    return {"root": root, "intermediate": signed}


def test_hvac_issues_a_chain_openssl_verifies(
    tenantvault_server: TenantVaultServer, tmp_path: Path
) -> None:
    client, _ = _tenant_client(tenantvault_server)
    made = _hierarchy(client)
    leaf = client.secrets.pki.generate_certificate(
        "web", "api.example.com", extra_params={"ttl": "2000h"}, mount_point="pki_int"
    )
    assert leaf["warnings"] == [
        'TTL "2000h0m0s" is longer than permitted maxTTL "720h0m0s", so maxTTL is being used'
    ]
    data = leaf["data"]
    assert set(data) >= {
        "certificate",
        "issuing_ca",
        "ca_chain",
        "private_key",
        "private_key_type",
        "serial_number",
        "expiration",
    }
    root, intermediate, cert = (
        _cert(made["root"]["certificate"]),
        _cert(made["intermediate"]["certificate"]),
        _cert(data["certificate"]),
    )
    cert.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["api.example.com"]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    assert (
        ExtendedKeyUsageOID.SERVER_AUTH
        in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    # Capped by the role's max_ttl (720h), not the request's 2000h; NotBefore is 30 s back.
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(hours=720, seconds=30)
    assert cert.not_valid_after_utc <= intermediate.not_valid_after_utc

    (tmp_path / "root.pem").write_text(made["root"]["certificate"] + "\n")
    # The intermediates as the issue answer hands them over (`ca_chain`).
    (tmp_path / "chain.pem").write_text("\n".join(data["ca_chain"]) + "\n")
    (tmp_path / "leaf.pem").write_text(data["certificate"] + "\n")

    def openssl_verify(*trust: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["openssl", "verify", *trust, "-purpose", "sslserver", str(tmp_path / "leaf.pem")],
            capture_output=True,
            text=True,
            check=False,
        )

    verified = openssl_verify(
        "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "chain.pem")
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip().endswith(": OK")
    # Without the root as trust anchor the same chain is refused: openssl really checks.
    assert openssl_verify("-CAfile", str(tmp_path / "chain.pem")).returncode != 0


def test_hvac_refuses_names_signs_revokes_tidies(tenantvault_server: TenantVaultServer) -> None:
    client, _ = _tenant_client(tenantvault_server)
    _hierarchy(client)
    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        client.secrets.pki.generate_certificate("web", "api.other.com", mount_point="pki_int")
    assert refused.value.errors == ["common name api.other.com not allowed by this role"]

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svc.example.com")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    signed = client.secrets.pki.sign_certificate(
        "web", csr, "svc.example.com", mount_point="pki_int"
    )["data"]
    assert "private_key" not in signed
    assert _cert(signed["certificate"]).public_key() == key.public_key()

    serial = signed["serial_number"]
    assert serial in client.secrets.pki.list_certificates(mount_point="pki_int")["data"]["keys"]
    revoked = client.secrets.pki.revoke_certificate(serial, mount_point="pki_int")["data"]
    assert revoked["state"] == "revoked"
    crl_pem = client.secrets.pki.read_certificate("crl", mount_point="pki_int")["data"]
    crl = x509.load_pem_x509_crl(crl_pem["certificate"].encode())
    assert crl.get_revoked_certificate_by_serial_number(int(serial.replace(":", ""), 16))
    tidied = client.secrets.pki.tidy(
        extra_params={"tidy_cert_store": True, "tidy_revoked_certs": True},
        mount_point="pki_int",
    )
    assert tidied.status_code == 202
    # Nothing expired yet: tidy keeps the certificate (the server tests move a fake clock).
    assert serial in client.secrets.pki.list_certificates(mount_point="pki_int")["data"]["keys"]


def test_two_tenants_same_named_pki_are_separate_cas(
    tenantvault_server: TenantVaultServer,
) -> None:
    addr, root = tenantvault_server
    first, tenant_a = _tenant_client(tenantvault_server)
    second, tenant_b = _tenant_client(tenantvault_server)
    for client in (first, second):
        _hierarchy(client)
    cas = [
        _cert(c.secrets.pki.read_certificate("ca", mount_point="pki_int")["data"]["certificate"])
        for c in (first, second)
    ]
    assert cas[0].public_key() != cas[1].public_key()
    serial = first.secrets.pki.generate_certificate(
        "web", "api.example.com", mount_point="pki_int"
    )["data"]["serial_number"]
    # B's tenant admin: full rights on its own pki mounts, none elsewhere.
    second.sys.create_or_update_policy(
        "pki-admin", 'path "pki_int/*" { capabilities = ["create", "read", "update", "list"] }'
    )
    token = second.auth.token.create(policies=["pki-admin"])["auth"]["client_token"]
    b_admin = hvac.Client(url=addr, token=token, namespace=tenant_b)
    with pytest.raises(hvac.exceptions.InvalidPath):
        b_admin.secrets.pki.read_certificate(serial, mount_point="pki_int")
    with pytest.raises(hvac.exceptions.InvalidRequest) as revoke:
        b_admin.secrets.pki.revoke_certificate(serial, mount_point="pki_int")
    assert revoke.value.errors == [f"certificate with serial {serial} not found."]
    b_leaf = b_admin.secrets.pki.generate_certificate(
        "web", "api.example.com", mount_point="pki_int"
    )["data"]
    _cert(b_leaf["certificate"]).verify_directly_issued_by(cas[1])
    # B's token in A's namespace: refused by the Core, whatever the path.
    intruder = hvac.Client(url=addr, token=token, namespace=tenant_a)
    with pytest.raises(hvac.exceptions.Forbidden):
        intruder.secrets.pki.generate_certificate("web", "api.example.com", mount_point="pki_int")
    with pytest.raises(hvac.exceptions.Forbidden):
        intruder.secrets.pki.revoke_certificate(serial, mount_point="pki_int")
    assert (
        first.secrets.pki.read_certificate(serial, mount_point="pki_int")["data"]["revocation_time"]
        == 0
    )
    del root


def test_bao_cli_enables_pki_and_issues(bao: BaoCLI, tenantvault_server: TenantVaultServer) -> None:
    root = tenantvault_server.root_token
    tenant = unique_name()
    ok(bao.run("namespace", "create", tenant, token=root))

    def run(*args: str) -> BaoResult:
        return bao.run(*args, token=root, namespace=tenant)

    ok(run("secrets", "enable", "-max-lease-ttl=87600h", "pki"))
    generated = json.loads(
        ok(
            run(
                "write",
                "-format=json",
                "pki/root/generate/internal",
                "common_name=CLI Root",
                "key_type=ec",
                "ttl=8760h",
            )
        ).out
    )["data"]
    ok(
        run(
            "write",
            "pki/roles/web",
            "allowed_domains=example.com",
            "allow_subdomains=true",
            "key_type=ec",
            "max_ttl=72h",
        )
    )
    issued = json.loads(
        ok(
            run("write", "-format=json", "pki/issue/web", "common_name=api.example.com", "ttl=24h")
        ).out
    )["data"]
    _cert(issued["certificate"]).verify_directly_issued_by(_cert(generated["certificate"]))
    refused = run("write", "pki/issue/web", "common_name=api.other.com")
    assert refused.code == 2
    assert "common name api.other.com not allowed by this role" in refused.err
    listed = json.loads(ok(run("list", "-format=json", "pki/certs")).out)
    assert issued["serial_number"] in listed
    expiring = json.loads(ok(run("read", "-format=json", "sys/pki/expiring", "within=48h")).out)[
        "data"
    ]
    assert [entry["serial_number"] for entry in expiring["certificates"]] == [
        issued["serial_number"]
    ]
