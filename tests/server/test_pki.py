"""The pki engine over HTTP: a CA hierarchy per mount, roles, issue, sign, revoke, CRL, tidy,
and the sys/pki/expiring watch. Texts and statuses were checked against OpenBao 2.7.2
(`bao server -dev`); the differential test in tests/integration re-checks them live."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tenantvault import Core
from tenantvault._config import ServerSettings
from tenantvault.backends import MemoryBackend
from tenantvault.server import TenantVaultApp, create_app
from tests.conftest import FakeClock
from tests.server.conftest import BASE_URL, Vault

ROLE = {
    "allowed_domains": ["example.com"],
    "allow_subdomains": True,
    "key_type": "ec",
    "max_ttl": "72h",
}


@contextlib.asynccontextmanager
async def serving_with_clock(
    root_token: str, clock: FakeClock
) -> AsyncIterator[tuple[Vault, Core]]:
    """A server whose clock the test moves, and its Core (for the background passes)."""
    cores: list[Core] = []

    async def factory() -> Core:
        core = Core(MemoryBackend(), clock=clock)
        await core.start()
        await core.initialize_root_token(root_token)
        cores.append(core)
        return core

    app: TenantVaultApp = create_app(
        ServerSettings(dev=True, dev_root_token=root_token), core_factory=factory
    )
    async with app as started:
        transport = httpx.ASGITransport(app=started)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Vault(client, root_token), cores[0]


@pytest.fixture
async def pki_vault(root_token: str, clock: FakeClock) -> AsyncIterator[Vault]:
    """A server whose clock the test moves (certificate lifetimes, tidy)."""
    async with serving_with_clock(root_token, clock) as (vault, _core):
        yield vault


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json() if response.content else {}
    return body


async def mount_pki(vault: Vault, path: str = "pki", *, namespace: str | None = None) -> None:
    response = await vault.root(
        "POST",
        f"sys/mounts/{path}",
        namespace=namespace,
        json={"type": "pki", "config": {"max_lease_ttl": "87600h"}},
    )
    assert response.status_code == 204, response.text


async def root_ca(
    vault: Vault, path: str = "pki", *, namespace: str | None = None
) -> dict[str, Any]:
    body = await ok(
        await vault.root(
            "POST",
            f"{path}/root/generate/internal",
            namespace=namespace,
            json={"common_name": "Root CA", "ttl": "8760h", "key_type": "ec"},
        )
    )
    data: dict[str, Any] = body["data"]
    return data


def cert_of(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


async def test_root_intermediate_leaf_chain_verifies(vault: Vault) -> None:
    """Root → intermediate → leaf: each signature verifies, names and usages are the role's."""
    await mount_pki(vault)
    await mount_pki(vault, "pki_int")
    root = await root_ca(vault)
    assert "private_key" not in root
    csr = (
        await ok(
            await vault.root(
                "POST",
                "pki_int/intermediate/generate/internal",
                json={"common_name": "Int CA", "key_type": "ec"},
            )
        )
    )["data"]
    assert set(csr) == {"csr", "key_id"}
    signed = (
        await ok(
            await vault.root(
                "POST",
                "pki/root/sign-intermediate",
                json={"csr": csr["csr"], "common_name": "Int CA", "ttl": "4380h"},
            )
        )
    )["data"]
    assert len(signed["ca_chain"]) == 2
    imported = (
        await ok(
            await vault.root(
                "POST",
                "pki_int/intermediate/set-signed",
                json={"certificate": signed["certificate"]},
            )
        )
    )["data"]
    assert imported["mapping"] == {imported["imported_issuers"][0]: csr["key_id"]}
    await ok(await vault.root("POST", "pki_int/roles/web", json=ROLE))
    leaf = (
        await ok(
            await vault.root(
                "POST", "pki_int/issue/web", json={"common_name": "api.example.com", "ttl": "24h"}
            )
        )
    )["data"]
    assert leaf["private_key_type"] == "ec"
    root_cert, int_cert, leaf_cert = (
        cert_of(root["certificate"]),
        cert_of(signed["certificate"]),
        cert_of(leaf["certificate"]),
    )
    leaf_cert.verify_directly_issued_by(int_cert)
    int_cert.verify_directly_issued_by(root_cert)
    assert leaf_cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName) == ["api.example.com"]
    usage = leaf_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.key_agreement
    assert not usage.key_cert_sign
    eku = leaf_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    lifetime = leaf_cert.not_valid_after_utc - leaf_cert.not_valid_before_utc
    assert lifetime == timedelta(hours=24, seconds=30)
    assert leaf["expiration"] == int(leaf_cert.not_valid_after_utc.timestamp())
    assert leaf["serial_number"] == ":".join(
        f"{b:02x}"
        for b in leaf_cert.serial_number.to_bytes(
            (leaf_cert.serial_number.bit_length() + 7) // 8, "big"
        )
    )
    assert int_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf["issuing_ca"].strip() == signed["certificate"].strip()


async def test_ttl_capped_by_role_then_by_ca(vault: Vault) -> None:
    """A TTL above the role's max is capped with Vault's warning; past the CA's expiry it is
    refused (err), cut to the CA's notAfter (truncate) or allowed (permit)."""
    await mount_pki(vault)
    root = await root_ca(vault)
    await ok(await vault.root("POST", "pki/roles/web", json=ROLE))
    body = await ok(
        await vault.root(
            "POST", "pki/issue/web", json={"common_name": "a.example.com", "ttl": "100h"}
        )
    )
    assert body["warnings"] == [
        'TTL "100h0m0s" is longer than permitted maxTTL "72h0m0s", so maxTTL is being used'
    ]
    cert = cert_of(body["data"]["certificate"])
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(hours=72, seconds=30)
    await ok(await vault.root("POST", "pki/roles/long", json={**ROLE, "max_ttl": "87600h"}))
    refused = await vault.root(
        "POST", "pki/issue/long", json={"common_name": "a.example.com", "ttl": "9000h"}
    )
    assert refused.status_code == 400
    (error,) = refused.json()["errors"]
    assert error.startswith("cannot satisfy request, as TTL would result in notAfter of ")
    assert "that is beyond the expiration of the CA certificate at " in error
    await ok(
        await vault.root("POST", "pki/issuer/default", json={"leaf_not_after_behavior": "truncate"})
    )
    cut = cert_of(
        (
            await ok(
                await vault.root(
                    "POST", "pki/issue/long", json={"common_name": "a.example.com", "ttl": "9000h"}
                )
            )
        )["data"]["certificate"]
    )
    assert cut.not_valid_after_utc == cert_of(root["certificate"]).not_valid_after_utc
    bad = await vault.root("POST", "pki/issuer/default", json={"leaf_not_after_behavior": "never"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("request_body", "error"),
    [
        ({"common_name": "api.other.com"}, "common name api.other.com not allowed by this role"),
        (
            {"common_name": "bad_name.example.com"},
            "common name bad_name.example.com not allowed by this role",
        ),
        (
            {"common_name": "a.example.com", "alt_names": "b.other.com"},
            "subject alternate name b.other.com not allowed by this role",
        ),
        (
            {},
            "the common_name field is required, or must be provided in a CSR with "
            '"use_csr_common_name" set to true, unless "require_cn" is set to false',
        ),
        (
            {"common_name": "a.example.com", "ip_sans": "nope"},
            'the value "nope" is not a valid IP address',
        ),
        (
            {"common_name": "a.example.com", "ttl": "1h", "not_after": "2030-01-01T00:00:00Z"},
            "Either ttl or not_after should be provided. Both should not be provided in the "
            "same request.",
        ),
    ],
)
async def test_names_outside_the_role_are_refused(
    vault: Vault, request_body: dict[str, Any], error: str
) -> None:
    """Vault's 400 and text for each name the role does not allow."""
    await mount_pki(vault)
    await root_ca(vault)
    await ok(await vault.root("POST", "pki/roles/web", json=ROLE))
    response = await vault.root("POST", "pki/issue/web", json=request_body)
    assert (response.status_code, response.json()["errors"]) == (400, [error])


async def test_role_rules(vault: Vault) -> None:
    """Bare domains, globs, wildcards, localhost and IP SANs follow the role's flags."""
    await mount_pki(vault)
    await root_ca(vault)
    await ok(
        await vault.root(
            "POST",
            "pki/roles/bare",
            json={
                "allowed_domains": "example.com",
                "allow_bare_domains": True,
                "allow_ip_sans": False,
                "key_type": "ec",
            },
        )
    )
    await ok(await vault.root("POST", "pki/issue/bare", json={"common_name": "example.com"}))
    assert (
        await vault.root("POST", "pki/issue/bare", json={"common_name": "a.example.com"})
    ).status_code == 400
    no_ip = await vault.root(
        "POST", "pki/issue/bare", json={"common_name": "example.com", "ip_sans": "10.0.0.1"}
    )
    assert no_ip.json()["errors"] == [
        "IP Subject Alternative Names are not allowed in this role, but was provided via the API"
    ]
    await ok(
        await vault.root(
            "POST",
            "pki/roles/glob",
            json={
                "allowed_domains": "svc-*.example.com",
                "allow_glob_domains": True,
                "key_type": "ec",
                "allow_localhost": False,
            },
        )
    )
    await ok(await vault.root("POST", "pki/issue/glob", json={"common_name": "svc-a.example.com"}))
    assert (
        await vault.root("POST", "pki/issue/glob", json={"common_name": "localhost"})
    ).status_code == 400
    await ok(
        await vault.root(
            "POST", "pki/roles/sub", json={**ROLE, "allow_wildcard_certificates": False}
        )
    )
    assert (
        await vault.root("POST", "pki/issue/sub", json={"common_name": "*.example.com"})
    ).status_code == 400
    await ok(
        await vault.root(
            "POST", "pki/roles/any", json={"allow_any_name": True, "key_type": "ed25519"}
        )
    )
    ed = (
        await ok(
            await vault.root(
                "POST",
                "pki/issue/any",
                json={"common_name": "anything.test", "ip_sans": "10.0.0.1"},
            )
        )
    )["data"]
    assert ed["private_key_type"] == "ed25519"
    ips = (
        cert_of(ed["certificate"])
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.IPAddress)
    )
    assert [str(ip) for ip in ips] == ["10.0.0.1"]
    small = await vault.root("POST", "pki/roles/small", json={"key_type": "rsa", "key_bits": 1024})
    assert small.json()["errors"] == ["RSA keys < 2048 bits are unsafe and not supported: got 1024"]
    assert (await vault.root("POST", "pki/issue/none", json={"common_name": "x"})).json()[
        "errors"
    ] == ["unknown role: none"]


async def test_sign_csr_takes_names_from_it(vault: Vault) -> None:
    """`sign/<role>` keeps the caller's key: the certificate holds the CSR's public key and
    names (use_csr_common_name, use_csr_sans), checked against the role."""
    await mount_pki(vault)
    root = await root_ca(vault)
    await ok(await vault.root("POST", "pki/roles/web", json=ROLE))
    key = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import hashes, serialization

    def csr_for(name: str) -> str:
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        return request.public_bytes(serialization.Encoding.PEM).decode()

    body = await ok(
        await vault.root(
            "POST",
            "pki/sign/web",
            json={"csr": csr_for("svc.example.com"), "common_name": "ignored.example.com"},
        )
    )
    assert "private_key" not in body["data"]
    assert (
        'the common_name field was provided but the role is set with "use_csr_common_name" '
        "set to true"
    ) in body["warnings"]
    cert = cert_of(body["data"]["certificate"])
    cert.verify_directly_issued_by(cert_of(root["certificate"]))
    assert cert.public_key() == key.public_key()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "svc.example.com"
    refused = await vault.root("POST", "pki/sign/web", json={"csr": csr_for("svc.other.com")})
    assert refused.json()["errors"] == ["common name svc.other.com not allowed by this role"]
    assert (await vault.root("POST", "pki/sign/web", json={})).json()["errors"] == [
        '"csr" is empty'
    ]
    assert (await vault.root("POST", "pki/sign/web", json={"csr": "garbage"})).json()["errors"] == [
        "csr contains no data"
    ]


async def test_revoke_lists_serial_in_crl(vault: Vault) -> None:
    """Revoking a certificate puts its serial in the CRL the CA signs; revoking again answers
    the same; unknown serials and the CA's own are refused with Vault's texts."""
    await mount_pki(vault)
    root = await root_ca(vault)
    await ok(await vault.root("POST", "pki/roles/web", json=ROLE))
    leaf = (
        await ok(await vault.root("POST", "pki/issue/web", json={"common_name": "a.example.com"}))
    )["data"]
    serial = leaf["serial_number"]
    listed = (await ok(await vault.root("LIST", "pki/certs")))["data"]["keys"]
    assert serial in listed
    assert root["serial_number"] in listed
    first = (await ok(await vault.root("POST", "pki/revoke", json={"serial_number": serial})))[
        "data"
    ]
    assert first["state"] == "revoked"
    again = (
        await ok(
            await vault.root("POST", "pki/revoke", json={"serial_number": serial.replace(":", "-")})
        )
    )["data"]
    assert again == first
    crl_pem = (await ok(await vault.root("GET", "pki/cert/crl")))["data"]["certificate"]
    crl = x509.load_pem_x509_crl(crl_pem.encode())
    root_key = cert_of(root["certificate"]).public_key()
    assert isinstance(root_key, ec.EllipticCurvePublicKey)
    assert crl.is_signature_valid(root_key)
    assert (
        crl.get_revoked_certificate_by_serial_number(cert_of(leaf["certificate"]).serial_number)
        is not None
    )
    read = (await ok(await vault.root("GET", f"pki/cert/{serial}")))["data"]
    assert read["revocation_time"] == first["revocation_time"]
    assert read["issuer_id"] == root["issuer_id"]
    unknown = await vault.root("POST", "pki/revoke", json={"serial_number": "aa:bb"})
    assert unknown.json()["errors"] == ["certificate with serial aa:bb not found."]
    own = await vault.root("POST", "pki/revoke", json={"serial_number": root["serial_number"]})
    assert own.json()["errors"] == [
        f"adding issuer (id: {root['issuer_id']}) to its own CRL is not allowed"
    ]
    assert (await ok(await vault.root("GET", "pki/crl/rotate")))["data"] == {"success": True}


async def test_tidy_removes_expired_entries(pki_vault: Vault, clock: FakeClock) -> None:
    """After NotAfter + safety_buffer, tidy removes the certificate (and its revocation)."""
    vault = pki_vault
    await mount_pki(vault)
    await root_ca(vault)
    await ok(await vault.root("POST", "pki/roles/web", json=ROLE))
    short = (
        await ok(
            await vault.root(
                "POST", "pki/issue/web", json={"common_name": "a.example.com", "ttl": "1h"}
            )
        )
    )["data"]
    revoked = (
        await ok(
            await vault.root(
                "POST", "pki/issue/web", json={"common_name": "b.example.com", "ttl": "1h"}
            )
        )
    )["data"]
    kept = (
        await ok(
            await vault.root(
                "POST", "pki/issue/web", json={"common_name": "c.example.com", "ttl": "48h"}
            )
        )
    )["data"]
    await ok(
        await vault.root("POST", "pki/revoke", json={"serial_number": revoked["serial_number"]})
    )
    assert (await vault.root("POST", "pki/tidy", json={"safety_buffer": "0s"})).json()[
        "errors"
    ] == ["safety_buffer must be greater than zero"]
    clock.advance(3 * 3600)
    body = await ok(
        await vault.root(
            "POST",
            "pki/tidy",
            json={"tidy_cert_store": True, "tidy_revoked_certs": True, "safety_buffer": "1h"},
        ),
        202,
    )
    assert body["warnings"][0].startswith("Tidy operation successfully started.")
    keys = (await ok(await vault.root("LIST", "pki/certs")))["data"]["keys"]
    assert short["serial_number"] not in keys
    assert revoked["serial_number"] not in keys
    assert kept["serial_number"] in keys
    status = (await ok(await vault.root("GET", "pki/tidy-status")))["data"]
    assert (
        status["state"],
        status["cert_store_deleted_count"],
        status["revoked_cert_deleted_count"],
    ) == ("Finished", 1, 1)
    crl = x509.load_pem_x509_crl(
        (await ok(await vault.root("GET", "pki/cert/crl")))["data"]["certificate"].encode()
    )
    assert len(list(crl)) == 0


async def test_exported_keys_only_when_asked(vault: Vault) -> None:
    """`internal` never returns the key; `exported` returns it once and never again."""
    await mount_pki(vault)
    exported = (
        await ok(
            await vault.root(
                "POST",
                "pki/root/generate/exported",
                json={"common_name": "X", "key_type": "ec", "issuer_name": "x"},
            )
        )
    )["data"]
    assert exported["private_key"].startswith("-----BEGIN EC PRIVATE KEY-----")
    issuer = (await ok(await vault.root("GET", "pki/issuer/x")))["data"]
    assert "private_key" not in str(issuer)
    assert "PRIVATE KEY" not in str(issuer)
    assert (
        await vault.root("POST", "pki/root/generate/bogus", json={"common_name": "Y"})
    ).status_code == 400
    missing = await vault.root("GET", "pki/issuer/nope")
    assert missing.status_code == 500
    assert missing.json()["errors"] == [
        "1 error occurred:\n\t* unable to find PKI issuer for reference: nope\n\n"
    ]


async def test_tenants_have_separate_cas(vault: Vault) -> None:
    """Same-named mounts and roles in two tenants are two CAs with two keys; tenant B's
    admin cannot issue from, read or revoke in tenant A's mount."""
    policy = (
        'path "pki/*" { capabilities = ["create", "read", "update", "delete", "list"] }\n'
        'path "sys/pki/*" { capabilities = ["read"] }'
    )
    tokens = {}
    for tenant in ("a", "b"):
        await vault.create_tenant(tenant)
        await vault.write_policy(tenant, "pki", policy)
        tokens[tenant] = (await vault.create_token(tenant, ["pki"]))["client_token"]
        await mount_pki(vault, namespace=tenant)
        await root_ca(vault, namespace=tenant)
        await ok(await vault.request("POST", "pki/roles/web", token=tokens[tenant], json=ROLE))
    cas = [
        (await ok(await vault.request("GET", "pki/cert/ca", token=tokens[t])))["data"][
            "certificate"
        ]
        for t in ("a", "b")
    ]
    assert cert_of(cas[0]).public_key() != cert_of(cas[1]).public_key()
    leaf = (
        await ok(
            await vault.request(
                "POST", "pki/issue/web", token=tokens["a"], json={"common_name": "api.example.com"}
            )
        )
    )["data"]
    serial = leaf["serial_number"]
    from_b = (
        await ok(
            await vault.request(
                "POST", "pki/issue/web", token=tokens["b"], json={"common_name": "api.example.com"}
            )
        )
    )["data"]
    cert_of(from_b["certificate"]).verify_directly_issued_by(cert_of(cas[1]))
    with pytest.raises(InvalidSignature):
        cert_of(from_b["certificate"]).verify_directly_issued_by(cert_of(cas[0]))
    assert (await vault.request("GET", f"pki/cert/{serial}", token=tokens["b"])).status_code == 404
    refused = await vault.request(
        "POST", "pki/revoke", token=tokens["b"], json={"serial_number": serial}
    )
    assert refused.json()["errors"] == [f"certificate with serial {serial} not found."]
    # B's token names A's namespace: refused before any engine runs.
    assert (
        await vault.request("GET", f"pki/cert/{serial}", token=tokens["b"], namespace="a")
    ).status_code == 403
    assert (await ok(await vault.request("GET", f"pki/cert/{serial}", token=tokens["a"])))["data"][
        "revocation_time"
    ] == 0
    watch_b = (
        await ok(
            await vault.request(
                "GET", "sys/pki/expiring", token=tokens["b"], params={"within": "87600h"}
            )
        )
    )["data"]
    assert serial not in {entry["serial_number"] for entry in watch_b["certificates"]}


async def test_expiring_lists_certificates_and_cas_in_window(
    pki_vault: Vault, clock: FakeClock
) -> None:
    """sys/pki/expiring lists leaves and CAs whose NotAfter falls within the window, soonest
    first, across every pki mount of the namespace; revoked ones are left out."""
    vault = pki_vault
    await mount_pki(vault)
    await mount_pki(vault, "other")
    root = await root_ca(vault)
    await root_ca(vault, "other")
    await ok(await vault.root("POST", "pki/roles/web", json=ROLE))
    soon = (
        await ok(
            await vault.root(
                "POST", "pki/issue/web", json={"common_name": "soon.example.com", "ttl": "2h"}
            )
        )
    )["data"]
    later = (
        await ok(
            await vault.root(
                "POST", "pki/issue/web", json={"common_name": "later.example.com", "ttl": "48h"}
            )
        )
    )["data"]
    gone = (
        await ok(
            await vault.root(
                "POST", "pki/issue/web", json={"common_name": "gone.example.com", "ttl": "1h"}
            )
        )
    )["data"]
    await ok(await vault.root("POST", "pki/revoke", json={"serial_number": gone["serial_number"]}))
    within = (await ok(await vault.root("GET", "sys/pki/expiring", params={"within": "24h"})))[
        "data"
    ]
    assert [entry["serial_number"] for entry in within["certificates"]] == [soon["serial_number"]]
    assert within["certificates"][0]["common_name"] == "soon.example.com"
    assert within["certificates"][0]["mount"] == "pki/"
    wide = (await ok(await vault.root("GET", "sys/pki/expiring", params={"within": "9000h"})))[
        "data"
    ]
    serials = [entry["serial_number"] for entry in wide["certificates"]]
    assert serials[:2] == [soon["serial_number"], later["serial_number"]]
    cas = [entry for entry in wide["certificates"] if entry["is_ca"]]
    assert {entry["mount"] for entry in cas} == {"pki/", "other/"}
    assert root["serial_number"] in serials
    clock.advance(3 * 3600)
    expired = (await ok(await vault.root("GET", "sys/pki/expiring", params={"within": "1h"})))[
        "data"
    ]["certificates"]
    assert [(entry["serial_number"], entry["expired"]) for entry in expired] == [
        (soon["serial_number"], True)
    ]
    assert (
        await vault.root("GET", "sys/pki/expiring", params={"within": "soon"})
    ).status_code == 400


async def test_policy_gates_pki_paths(vault: Vault) -> None:
    """Issue needs update on pki/issue/<role>; a reader of cert/ cannot issue or revoke."""
    await vault.create_tenant("t")
    await mount_pki(vault, namespace="t")
    await root_ca(vault, namespace="t")
    await ok(await vault.root("POST", "pki/roles/web", namespace="t", json=ROLE))
    await vault.write_policy("t", "reader", 'path "pki/cert/*" { capabilities = ["read"] }')
    token = (await vault.create_token("t", ["reader"]))["client_token"]
    assert (await ok(await vault.request("GET", "pki/cert/ca", token=token)))["data"]["certificate"]
    assert (
        await vault.request(
            "POST", "pki/issue/web", token=token, json={"common_name": "a.example.com"}
        )
    ).status_code == 403
    assert (
        await vault.request("POST", "pki/revoke", token=token, json={"serial_number": "aa"})
    ).status_code == 403
    assert (await vault.request("GET", "sys/pki/expiring", token=token)).status_code == 403


async def test_issued_at_now(pki_vault: Vault, clock: FakeClock) -> None:
    """Certificates are dated by the server's clock (NotBefore 30 s back, as Vault)."""
    vault = pki_vault
    await mount_pki(vault)
    await root_ca(vault)
    await ok(await vault.root("POST", "pki/roles/web", json=ROLE))
    clock.advance(86400)
    leaf = cert_of(
        (
            await ok(
                await vault.root(
                    "POST", "pki/issue/web", json={"common_name": "a.example.com", "ttl": "1h"}
                )
            )
        )["data"]["certificate"]
    )
    expected = datetime.fromtimestamp(clock.now // 1_000_000_000, UTC) - timedelta(seconds=30)
    assert abs((leaf.not_valid_before_utc - expected).total_seconds()) <= 1


async def test_generate_lease_revokes_with_the_lease(vault: Vault) -> None:
    """With `generate_lease` the certificate comes with a non-renewable lease until NotAfter;
    revoking the lease revokes the certificate (it shows in the CRL)."""
    await mount_pki(vault)
    await root_ca(vault)
    lease_role = {"allow_any_name": True, "key_type": "ec", "generate_lease": True, "ttl": "1h"}
    await ok(await vault.root("POST", "pki/roles/lease", json=lease_role))
    body = await ok(await vault.root("POST", "pki/issue/lease", json={"common_name": "x.test"}))
    assert body["lease_id"].startswith("pki/issue/lease/")
    assert body["renewable"] is False
    assert 3590 <= body["lease_duration"] <= 3600
    serial = body["data"]["serial_number"]
    revoke = await vault.root("PUT", "sys/leases/revoke", json={"lease_id": body["lease_id"]})
    assert revoke.status_code == 204, revoke.text
    read = (await ok(await vault.root("GET", f"pki/cert/{serial}")))["data"]
    assert read["revocation_time"] > 0


async def test_rsa_root_and_leaf(vault: Vault) -> None:
    """The one RSA case (slow keys): a 2048-bit root and leaf, SHA-256 signatures, PKCS#1
    keys by default and PKCS#8 on request, DER answers on `format=der`."""
    await mount_pki(vault)
    root = (
        await ok(
            await vault.root(
                "POST", "pki/root/generate/exported", json={"common_name": "RSA Root", "ttl": "48h"}
            )
        )
    )["data"]
    assert root["private_key_type"] == "rsa"
    assert root["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    await ok(await vault.root("POST", "pki/roles/rsa", json={"allow_any_name": True}))
    body = await ok(
        await vault.root(
            "POST",
            "pki/issue/rsa",
            json={
                "common_name": "rsa.test",
                "ttl": "1h",
                "private_key_format": "pkcs8",
                "format": "der",
            },
        )
    )
    data = body["data"]
    assert data["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    import base64

    leaf = x509.load_der_x509_certificate(base64.b64decode(data["certificate"]))
    leaf.verify_directly_issued_by(cert_of(root["certificate"]))
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == "sha256"
    leaf_key = leaf.public_key()
    assert isinstance(leaf_key, rsa.RSAPublicKey)
    assert leaf_key.key_size == 2048


@pytest.fixture
async def audited_vault(root_token: str, tmp_path: Path) -> AsyncIterator[Vault]:
    """A dev server that may write file audit devices under `tmp_path`."""
    settings = ServerSettings(dev=True, dev_root_token=root_token, audit_dir=tmp_path)
    async with create_app(settings) as started:
        transport = httpx.ASGITransport(app=started)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Vault(client, root_token)


async def test_keys_never_in_audit_or_logs(
    audited_vault: Vault, tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    """Exported CA keys and issued private keys reach the caller once; the audit log holds
    only their HMACs and the server log nothing of them."""
    vault = audited_vault
    log = tmp_path / "audit.log"
    enabled = await vault.root(
        "PUT", "sys/audit/file", json={"type": "file", "options": {"file_path": str(log)}}
    )
    assert enabled.status_code == 204, enabled.text
    await mount_pki(vault)
    exported = (
        await ok(
            await vault.root(
                "POST",
                "pki/root/generate/exported",
                json={"common_name": "Root", "key_type": "ec", "ttl": "480h"},
            )
        )
    )["data"]
    await ok(await vault.root("POST", "pki/roles/web", json=ROLE))
    leaf = (
        await ok(await vault.root("POST", "pki/issue/web", json={"common_name": "a.example.com"}))
    )["data"]
    text = log.read_text()
    assert "pki/issue/web" in text
    for secret in (exported["private_key"], leaf["private_key"]):
        body = secret.splitlines()[1]  # a line of the base64 key material
        assert body not in text
        assert all(body not in record.getMessage() for record in logs.records)


async def test_other_sans_uri_sans_and_subject_serial(vault: Vault) -> None:
    """Allowed other SANs (UTF8 otherName), URI SANs and the subject serial number land in the
    certificate; `basic_constraints_valid_for_non_ca` adds CA:FALSE."""
    await mount_pki(vault)
    await root_ca(vault)
    role = {
        **ROLE,
        "allowed_other_sans": "1.2.3.4;UTF8:ok-*",
        "allowed_serial_numbers": "sn-*",
        "allowed_uri_sans": "spiffe://example.com/*",
        "basic_constraints_valid_for_non_ca": True,
    }
    await ok(await vault.root("POST", "pki/roles/other", json=role))
    request = {
        "common_name": "a.example.com",
        "other_sans": "1.2.3.4;UTF8:ok-1",
        "serial_number": "sn-1",
        "uri_sans": "spiffe://example.com/a",
    }
    data = (await ok(await vault.root("POST", "pki/issue/other", json=request)))["data"]
    cert = cert_of(data["certificate"])
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://example.com/a"]
    (other,) = names.get_values_for_type(x509.OtherName)
    assert (other.type_id.dotted_string, other.value) == ("1.2.3.4", b"\x0c\x04ok-1")
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "sn-1"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca
    refused = await vault.root(
        "POST", "pki/issue/other", json={**request, "other_sans": "1.2.3.4;UTF8:bad"}
    )
    assert refused.json()["errors"] == ["other SAN bad not allowed for OID 1.2.3.4 by this role"]


async def test_raw_fetch_endpoints_answer_files(vault: Vault) -> None:
    """`ca`, `ca/pem`, `ca_chain`, `crl`, `crl/pem` answer the CA certificate, chain and CRL
    as files with OpenBao's content types (hvac's read_ca_certificate and read_crl read
    them); before any CA exists each answers 204."""
    await mount_pki(vault)
    for path in ("ca", "ca/pem", "ca_chain", "crl", "crl/pem"):
        assert (await vault.root("GET", f"pki/{path}")).status_code == 204, path
    root = await root_ca(vault)
    await ok(await vault.root("POST", "pki/roles/web", json=ROLE))
    leaf = (
        await ok(await vault.root("POST", "pki/issue/web", json={"common_name": "a.example.com"}))
    )["data"]
    await ok(await vault.root("POST", "pki/revoke", json={"serial_number": leaf["serial_number"]}))
    root_cert = cert_of(root["certificate"])

    der = await vault.root("GET", "pki/ca")
    assert der.headers["content-type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(der.content) == root_cert
    pem = await vault.root("GET", "pki/ca/pem")
    assert pem.headers["content-type"] == "application/pem-certificate-chain"
    assert x509.load_pem_x509_certificate(pem.content) == root_cert
    chain = await vault.root("GET", "pki/ca_chain")
    assert x509.load_pem_x509_certificates(chain.content)[0] == root_cert

    crl_der = await vault.root("GET", "pki/crl")
    assert crl_der.headers["content-type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(crl_der.content)
    serial = cert_of(leaf["certificate"]).serial_number
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    crl_pem = await vault.root("GET", "pki/crl/pem")
    assert crl_pem.headers["content-type"] == "application/x-pem-file"
    assert x509.load_pem_x509_crl(crl_pem.content) == crl
