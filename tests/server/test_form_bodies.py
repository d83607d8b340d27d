"""Form bodies: read as OpenBao reads them (`isForm`, `parseFormRequest`), or refused whole."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantvault._exceptions import InvalidRequestError
from tenantvault.server._form import is_form, parse_form
from tests.conftest import canary
from tests.server.conftest import Vault, assert_no_canary

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
POLICY = 'path "secret/data/app/*" { capabilities = ["read"] }'


@pytest.fixture
async def acme(vault: Vault) -> str:
    return await vault.tenant_admin("acme")


# -- which bodies are forms ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        (b"application/x-www-form-urlencoded", b"a=b", True),
        (b"Application/X-WWW-Form-Urlencoded; charset=utf-8", b"a=b", True),
        (b"application/x-www-form-urlencoded", b"", True),
        (b"application/x-www-form-urlencoded", b' \n{"a":"b"}', False),
        (b"application/x-www-form-urlencoded", b"\t[1]", False),
        # OpenBao samples 512 bytes: a JSON object after 600 blanks is taken for a form.
        (b"application/x-www-form-urlencoded", b" " * 600 + b"{}", True),
        (None, b"a=b", False),
        (b"text/plain", b"a=b", False),
        (b"multipart/form-data; boundary=x", b"a=b", False),
        (b"application/x-www-form-urlencodedx", b"a=b", False),
    ],
)
def test_a_form_is_a_form_label_on_a_body_that_does_not_start_like_json(
    content_type: bytes | None, body: bytes, expected: bool
) -> None:
    assert is_form(content_type, body) is expected


# -- how a form is read -------------------------------------------------------------------------


@given(st.dictionaries(st.text(min_size=1), st.text(), max_size=20))
def test_any_urlencoded_fields_read_back_as_they_were(fields: dict[str, str]) -> None:
    assert parse_form(urlencode(fields).encode(), max_items=100) == fields


def test_fields_are_read_as_go_reads_them() -> None:
    assert parse_form(b"a=1&a=2&&b&c=x+y%2Bz&=e", max_items=100) == {
        "a": "1,2",  # repeated: joined with commas, as parseFormRequest joins them
        "b": "",
        "c": "x y+z",
        "": "e",
    }
    assert parse_form(b"", max_items=100) == {}
    assert parse_form(b"&&", max_items=100) == {}


@pytest.mark.parametrize(
    "body",
    [b"a=%zz", b"a=%4", b"a%=b", b"a=1;b=2", b"a=%ff", b"a=\xff", b"a=1&b=%e2%82"],
)
def test_a_bad_escape_a_semicolon_or_bytes_that_are_not_utf8_fail_the_whole_form(
    body: bytes,
) -> None:
    with pytest.raises(InvalidRequestError, match=r"^error parsing form data$"):
        parse_form(body, max_items=100)


def test_a_form_with_more_fields_than_the_limit_is_refused() -> None:
    assert len(parse_form(b"&".join(b"f%d=v" % i for i in range(10)), max_items=10)) == 10
    with pytest.raises(InvalidRequestError, match="error parsing form data"):
        parse_form(b"&".join(b"f%d=v" % i for i in range(11)), max_items=10)


# -- through the server -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_a_policy_written_as_a_form_reads_back(vault: Vault, acme: str, method: str) -> None:
    written = await vault.request(
        method,
        "sys/policies/acl/from-form",
        token=acme,
        namespace="acme",
        content=urlencode({"policy": POLICY}).encode(),
        headers=FORM,
    )
    assert written.status_code == 204, written.text
    read = await vault.request("GET", "sys/policies/acl/from-form", token=acme, namespace="acme")
    assert read.json()["data"]["policy"] == POLICY


async def test_repeated_form_fields_are_a_comma_list(vault: Vault) -> None:
    """`token_policies=a&token_policies=b` is "a,b", which a list field splits."""
    mounted = await vault.root("POST", "sys/auth/approle", json={"type": "approle"})
    assert mounted.status_code == 204, mounted.text
    role = await vault.root(
        "POST",
        "auth/approle/role/r1",
        content=b"token_policies=a&token_policies=b&token_ttl=1h",
        headers=FORM,
    )
    assert role.status_code == 204, role.text
    data = (await vault.root("GET", "auth/approle/role/r1")).json()["data"]
    assert (data["token_policies"], data["token_ttl"]) == (["a", "b"], 3600)


async def test_a_bad_form_is_400_writes_nothing_and_echoes_nothing(
    vault: Vault, acme: str, logs: pytest.LogCaptureFixture
) -> None:
    secret = canary()
    start = len(vault.seen.texts)  # the token's own creation response holds it, as it should
    for body in (f"policy={secret}%zz", f"policy={secret};x=1", f"policy={secret}%ff"):
        refused = await vault.request(
            "POST",
            "sys/policies/acl/bad",
            token=acme,
            namespace="acme",
            content=body.encode(),
            headers=FORM,
        )
        assert refused.status_code == 400
        assert refused.json() == {"errors": ["error parsing form data"]}
    read = await vault.request("GET", "sys/policies/acl/bad", token=acme, namespace="acme")
    assert read.status_code == 404
    assert_no_canary([logs.text, *vault.seen.texts[start:]], secret, acme)


async def test_a_form_secret_is_audited_only_as_its_hmac(vault: Vault, acme: str) -> None:
    """A form's fields are request data like a JSON body's: redacted in the audit trail."""
    secret = canary()
    mounted = await vault.root("POST", "sys/mounts/kv1", json={"type": "kv"}, namespace="acme")
    assert mounted.status_code == 204, mounted.text
    written = await vault.root(
        "POST",
        "kv1/app",
        namespace="acme",
        content=urlencode({"password": secret}).encode(),
        headers=FORM,
    )
    assert written.status_code == 204, written.text
    read = await vault.root("GET", "kv1/app", namespace="acme")
    assert read.json()["data"] == {"password": secret}
    events = await vault.root("GET", "sys/audit/events", namespace="acme", params={"limit": "1000"})
    assert events.status_code == 200, events.text
    written_entry = next(
        e
        for e in events.json()["data"]["events"]
        if (e["type"], e["request"]["operation"], e["request"]["mount"])
        == ("request", "update", "kv1")
    )
    assert written_entry["request"]["data"]["password"].startswith("hmac-sha256:")
    assert secret not in events.text


async def test_a_form_body_on_patch_is_still_415(vault: Vault, acme: str) -> None:
    await vault.put("acme", "app", {"a": "1"}, token=acme)
    response = await vault.request(
        "PATCH", "secret/data/app", token=acme, namespace="acme", content=b"a=2", headers=FORM
    )
    assert response.status_code == 415
    assert response.json() == {
        "errors": [
            "PATCH requires Content-Type of application/merge-patch+json, provided "
            "application/x-www-form-urlencoded"
        ]
    }
