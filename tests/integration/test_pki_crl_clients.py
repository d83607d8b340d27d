"""Real clients on `config/crl`, delta CRLs and `sign-verbatim`: hvac's own methods
(`set_crl_configuration`, `read_crl_configuration`, `sign_verbatim`) and the `bao` CLI
(`bao write pki/config/crl`, `bao read pki/crl/rotate-delta`, `bao write pki/sign-verbatim`)
against our server, unchanged."""

from __future__ import annotations

import json

import hvac
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration._support import BaoCLI, unique_name
from tests.integration.conftest import TenantVaultServer
from tests.integration.test_pki_clients import ROLE, ok

pytestmark = pytest.mark.integration

SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
        x509.NameAttribute(NameOID.COMMON_NAME, "svc.internal"),
    ]
)


def _csr() -> str:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(SUBJECT)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def test_hvac_configures_crls_and_signs_verbatim(tenantvault_server: TenantVaultServer) -> None:
    """hvac writes and reads `config/crl`, and its `sign_verbatim` keeps the CSR's subject
    under a role's TTL."""
    addr, root = tenantvault_server
    tenant = unique_name()
    hvac.Client(url=addr, token=root).sys.create_namespace(tenant)
    client = hvac.Client(url=addr, token=root, namespace=tenant)
    client.sys.enable_secrets_engine("pki", path="pki", config={"max_lease_ttl": "87600h"})
    client.secrets.pki.generate_root("internal", "Root", extra_params={"key_type": "ec"})
    client.secrets.pki.set_crl_configuration(
        expiry="36h", extra_params={"auto_rebuild": True, "enable_delta": True}
    )
    config = client.secrets.pki.read_crl_configuration()["data"]
    assert (config["expiry"], config["auto_rebuild"], config["enable_delta"]) == ("36h", True, True)
    client.secrets.pki.create_or_update_role("web", extra_params={**ROLE, "ttl": "2h"})
    signed = client.secrets.pki.sign_verbatim(_csr(), name="web")["data"]
    certificate = x509.load_pem_x509_certificate(signed["certificate"].encode())
    assert certificate.subject == SUBJECT
    assert signed["expiration"] - signed["not_before"] == 2 * 3600 + 30


def test_bao_cli_rotates_a_delta_crl(bao: BaoCLI, tenantvault_server: TenantVaultServer) -> None:
    """The CLI's `write`/`read` on the new paths: config, a revoke reaching the delta CRL
    after `crl/rotate-delta`, and `sign-verbatim` from a CSR file's contents."""
    _, root = tenantvault_server
    tenant = unique_name()
    ok(bao.run("namespace", "create", tenant, token=root))

    def run(*args: str) -> str:
        return ok(bao.run(*args, token=root, namespace=tenant)).out

    run("secrets", "enable", "-max-lease-ttl=87600h", "pki")
    run("write", "pki/root/generate/internal", "common_name=Root", "key_type=ec", "ttl=8760h")
    run("write", "pki/roles/web", "allowed_domains=example.com", "allow_subdomains=true")
    written = json.loads(
        run("write", "-format=json", "pki/config/crl", "auto_rebuild=true", "enable_delta=true")
    )
    assert written["data"]["enable_delta"] is True
    leaf = json.loads(
        run("write", "-format=json", "pki/issue/web", "common_name=a.example.com", "ttl=1h")
    )
    serial = leaf["data"]["serial_number"]
    run("write", "pki/revoke", f"serial_number={serial}")
    rotated = json.loads(run("read", "-format=json", "pki/crl/rotate-delta"))
    assert rotated["data"] == {"success": True}
    delta_pem = json.loads(run("read", "-format=json", "pki/cert/delta-crl"))["data"]["certificate"]
    delta = x509.load_pem_x509_crl(delta_pem.encode())
    assert delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).critical
    assert [entry.serial_number for entry in delta] == [int(serial.replace(":", ""), 16)]
    signed = json.loads(run("write", "-format=json", "pki/sign-verbatim", f"csr={_csr()}"))
    subject = x509.load_pem_x509_certificate(signed["data"]["certificate"].encode()).subject
    assert subject == SUBJECT
