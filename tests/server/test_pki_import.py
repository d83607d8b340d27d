"""Importing, listing and deleting a pki mount's CA material over HTTP: `issuers/import/…`,
`config/ca`, `keys/import`, `keys`, `key/<ref>`, `config/keys`, `DELETE issuer/<ref>` and
`DELETE root`, with OpenBao 2.7.2's answers (fields, warnings, texts)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.server.conftest import Vault
from tests.server.test_pki import ROLE, cert_of, mount_pki, ok, root_ca

DEFAULT_DELETED = (
    "Deleted issuer {id} (via issuer_ref {ref}); this was configured as the default issuer. "
    "Operations without an explicit issuer will not work until a new default is configured."
)


def make_ca(
    name: str, *, parent: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA certificate made outside the server (with key identifiers, as a real CA has)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = parent if parent else (None, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )
    return builder.sign(issuer_key, hashes.SHA256()), key


def pem(item: x509.Certificate | ec.EllipticCurvePrivateKey) -> str:
    if isinstance(item, x509.Certificate):
        return item.public_bytes(serialization.Encoding.PEM).decode()
    return item.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


async def _data(vault: Vault, method: str, path: str, body: Any = None) -> dict[str, Any]:
    return await ok(await vault.root(method, path, json=body))


async def test_bundle_import_then_issue_from_it(vault: Vault) -> None:
    """A key + root bundle becomes an issuer with its key and the default; a leaf issued
    from it verifies against the imported certificate; importing it again is `existing`."""
    await mount_pki(vault)
    root, key = make_ca("Imported Root")
    bundle = pem(key) + pem(root)
    body = await _data(vault, "POST", "pki/issuers/import/bundle", {"pem_bundle": bundle})
    data = body["data"]
    (issuer_id,) = data["imported_issuers"]
    (key_id,) = data["imported_keys"]
    assert data["mapping"] == {issuer_id: key_id}
    assert data["existing_issuers"] is None
    assert data["existing_keys"] is None
    assert any("authority information access" in text for text in body["warnings"])
    assert (await _data(vault, "GET", "pki/config/issuers"))["data"]["default"] == issuer_id
    assert (await _data(vault, "GET", "pki/config/keys"))["data"] == {"default": key_id}
    await ok(await vault.root("POST", "pki/roles/web", json=ROLE))
    leaf = await _data(vault, "POST", "pki/issue/web", {"common_name": "a.example.com"})
    cert_of(leaf["data"]["certificate"]).verify_directly_issued_by(root)
    again = await _data(vault, "POST", "pki/config/ca", {"pem_bundle": bundle})
    assert again["data"] == {
        "existing_issuers": [issuer_id],
        "existing_keys": [key_id],
        "imported_issuers": None,
        "imported_keys": None,
        "mapping": {issuer_id: key_id},
    }


async def test_certificates_first_then_the_key(vault: Vault) -> None:
    """Certificates alone import keyless (no default); the key imported later links to its
    issuer and makes it the default; the intermediate's chain gains the root imported after."""
    await mount_pki(vault)
    root = make_ca("Root")
    intermediate, int_key = make_ca("Intermediate", parent=root)
    first = await _data(vault, "POST", "pki/issuers/import/cert", {"pem_bundle": pem(intermediate)})
    (int_id,) = first["data"]["imported_issuers"]
    assert first["data"]["mapping"] == {int_id: ""}
    assert (await _data(vault, "GET", "pki/config/issuers"))["data"]["default"] == ""
    refused = await vault.root(
        "POST", "pki/issuers/import/cert", json={"pem_bundle": pem(int_key) + pem(root[0])}
    )
    assert refused.status_code == 400
    assert refused.json()["errors"] == [
        "private keys found in the PEM bundle but not allowed by the path; use "
        "/issuers/import/bundle"
    ]
    imported = await _data(
        vault, "POST", "pki/keys/import", {"pem_bundle": pem(int_key), "key_name": "int-key"}
    )
    key_id = imported["data"]["key_id"]
    assert imported["data"] == {"key_id": key_id, "key_name": "int-key", "key_type": "ec"}
    issuer = (await _data(vault, "GET", f"pki/issuer/{int_id}"))["data"]
    assert issuer["key_id"] == key_id
    assert (await _data(vault, "GET", "pki/config/issuers"))["data"]["default"] == int_id
    assert len(issuer["ca_chain"]) == 1
    await _data(vault, "POST", "pki/issuers/import/cert", {"pem_bundle": pem(root[0])})
    chain = (await _data(vault, "GET", f"pki/issuer/{int_id}"))["data"]["ca_chain"]
    assert [cert_of(item) for item in chain] == [intermediate, root[0]]
    twice = await _data(vault, "POST", "pki/keys/import", {"pem_bundle": pem(int_key)})
    assert twice["data"]["key_id"] == key_id
    assert twice["warnings"] == ["Key already imported, use key/ endpoint to update name."]


async def test_import_refusals(vault: Vault) -> None:
    """OpenBao's texts: nothing given, too short, not PEM, a non-CA certificate, a taken
    key name."""
    await mount_pki(vault)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root, root_key = make_ca("Root")
    now = datetime.now(UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
        .issuer_name(root.subject)
        .public_key(leaf_key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    cases = [
        ("pki/issuers/import/bundle", {}, "'pem_bundle' and 'certificate' parameters were empty"),
        (
            "pki/issuers/import/bundle",
            {"pem_bundle": "short"},
            "provided data for import was too short; perhaps a path was passed to the API "
            "rather than the contents of a PEM file",
        ),
        (
            "pki/issuers/import/bundle",
            {"pem_bundle": "x" * 100},
            "error when parsing block 1: invalid PEM data",
        ),
        (
            "pki/issuers/import/bundle",
            {"pem_bundle": pem(leaf)},
            f"Error parsing issuer 0: Refusing to import non-CA certificate\n{pem(leaf)}",
        ),
    ]
    for path, body, text in cases:
        response = await vault.root("POST", path, json=body)
        assert response.status_code == 400, path
        assert response.json() == {"errors": [text]}
    await _data(vault, "POST", "pki/keys/import", {"pem_bundle": pem(root_key), "key_name": "k"})
    taken = await vault.root(
        "POST", "pki/keys/import", json={"pem_bundle": pem(leaf_key), "key_name": "k"}
    )
    assert taken.json() == {"errors": ["key name already in use"]}


async def test_key_endpoints(vault: Vault) -> None:
    """LIST keys, read (never the private key), rename, default key, delete refusals."""
    await mount_pki(vault)
    root = await root_ca(vault)
    key_id = root["key_id"]
    listed = (await _data(vault, "LIST", "pki/keys"))["data"]
    assert listed == {"key_info": {key_id: {"is_default": True, "key_name": ""}}, "keys": [key_id]}
    read = (await _data(vault, "GET", "pki/key/default"))["data"]
    assert set(read) == {"key_id", "key_name", "key_type", "subject_key_id"}
    ski = cert_of(root["certificate"]).extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert read["subject_key_id"] == ski.value.digest.hex(":")
    renamed = await _data(vault, "POST", f"pki/key/{key_id}", {"key_name": "main"})
    assert renamed["data"] == {"key_id": key_id, "key_name": "main", "key_type": "ec"}
    bad = await vault.root("POST", "pki/key/main", json={"key_name": "bad name!"})
    assert bad.json() == {"errors": ["new key name outside of valid character limits"]}
    missing = await vault.root("GET", "pki/key/nope")
    assert missing.status_code == 500
    assert missing.json() == {
        "errors": ["1 error occurred:\n\t* unable to find PKI key for reference: nope\n\n"]
    }
    in_use = await vault.root("DELETE", "pki/key/main")
    assert in_use.json() == {
        "errors": [f"Failed to Delete Key.  Key in Use by Issuer: {root['issuer_id']}"]
    }
    assert (await vault.root("DELETE", "pki/key/nope")).status_code == 204
    spare = await _data(
        vault, "POST", "pki/keys/import", {"pem_bundle": pem(make_ca("x")[1]), "key_name": "s"}
    )
    spare_id = spare["data"]["key_id"]
    assert (await _data(vault, "POST", "pki/config/keys", {"default": "s"}))["data"] == {
        "default": spare_id
    }
    deleted = await _data(vault, "DELETE", "pki/key/s")
    assert deleted["warnings"] == [
        f"Deleted key {spare_id} (via key_ref s); this was configured as the default key. "
        "Operations without an explicit key will not work until a new default is configured."
    ]
    assert (await _data(vault, "GET", "pki/config/keys"))["data"] == {"default": ""}


async def test_delete_issuer_warns_about_roles_and_default(vault: Vault) -> None:
    """Deleting the default issuer clears the default and says so, counting the roles that
    named it; its certificates stay readable; a second delete answers 200 without warnings."""
    await mount_pki(vault)
    root = await root_ca(vault)
    issuer_id = root["issuer_id"]
    await _data(vault, "POST", "pki/issuer/default", {"issuer_name": "main"})
    await ok(await vault.root("POST", "pki/roles/web", json=ROLE))
    await ok(await vault.root("POST", "pki/roles/pinned", json={**ROLE, "issuer_ref": "main"}))
    leaf = await _data(vault, "POST", "pki/issue/web", {"common_name": "a.example.com"})
    deleted = await _data(vault, "DELETE", "pki/issuer/main")
    assert deleted["data"] is None
    assert deleted["warnings"] == [
        "1 roles reference main",
        DEFAULT_DELETED.format(id=issuer_id, ref="main"),
        "1 roles reference default",
    ]
    assert (await _data(vault, "GET", "pki/config/issuers"))["data"]["default"] == ""
    assert (await vault.root("LIST", "pki/issuers")).status_code == 404
    serial = leaf["data"]["serial_number"]
    assert (await _data(vault, "GET", f"pki/cert/{serial}"))["data"]["certificate"]
    again = await _data(vault, "DELETE", "pki/issuer/main")
    assert again == {**again, "data": None, "warnings": None}
    # Its key stays, and can be deleted now that no issuer uses it.
    assert (await vault.root("DELETE", f"pki/key/{root['key_id']}")).status_code == 200


async def test_delete_root_removes_every_issuer_and_key(vault: Vault) -> None:
    await mount_pki(vault)
    await root_ca(vault)
    await _data(vault, "POST", "pki/keys/import", {"pem_bundle": pem(make_ca("x")[1])})
    answer = await _data(vault, "DELETE", "pki/root")
    assert answer["warnings"] == [
        "DELETE /root deletes all keys and issuers; prefer the new DELETE /key/:key_ref and "
        "DELETE /issuer/:issuer_ref for finer granularity, unless removal of all keys and "
        "issuers is desired."
    ]
    assert (await vault.root("LIST", "pki/issuers")).status_code == 404
    assert (await vault.root("LIST", "pki/keys")).status_code == 404
    assert (await _data(vault, "GET", "pki/config/keys"))["data"] == {"default": ""}


async def test_a_key_and_its_certificate_imported_at_once_are_linked(vault: Vault) -> None:
    """Concurrent imports of a CA's certificate and of its key: whichever lands second links
    them (a mount's CA changes are serialized, as OpenBao's issuers lock serializes them), and
    two bundles imported at once both land with one default between them."""
    await mount_pki(vault)
    for round_ in range(5):
        ca, key = make_ca(f"Root {round_}")
        certificate, imported_key = await asyncio.gather(
            _data(vault, "POST", "pki/issuers/import/cert", {"pem_bundle": pem(ca)}),
            _data(vault, "POST", "pki/keys/import", {"pem_bundle": pem(key)}),
        )
        (issuer_id,) = certificate["data"]["imported_issuers"]
        issuer = (await _data(vault, "GET", f"pki/issuer/{issuer_id}"))["data"]
        assert issuer["key_id"] == imported_key["data"]["key_id"], round_
    await mount_pki(vault, "pki2")
    bundles = [make_ca(f"Bundle {n}") for n in range(4)]
    answers = await asyncio.gather(
        *(
            _data(vault, "POST", "pki2/issuers/import/bundle", {"pem_bundle": pem(k) + pem(c)})
            for c, k in bundles
        )
    )
    imported = {i for answer in answers for i in answer["data"]["imported_issuers"]}
    listed = (await _data(vault, "LIST", "pki2/issuers"))["data"]["keys"]
    assert set(listed) == imported
    assert len(imported) == 4
    default = (await _data(vault, "GET", "pki2/config/issuers"))["data"]["default"]
    assert default in imported
