"""Vault's password policy documents: parsing, OpenBao's error texts, and generation."""

from __future__ import annotations

import pytest

from tenantvault._exceptions import InvalidRequestError
from tenantvault._password_policy import (
    CharsetRule,
    PasswordPolicy,
    PolicyGenerationError,
    parse_policy,
)

HCL = """
length = 20
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset = "0123456789"
  min-chars = 3
}
"""


def test_an_hcl_policy_generates_passwords_that_follow_every_rule() -> None:
    policy = parse_policy(HCL)
    assert policy.length == 20
    for _ in range(200):
        password = policy.generate()
        assert len(password) == 20
        assert set(password) <= set("abcdefghijklmnopqrstuvwxyz0123456789")
        assert sum(c.isdigit() for c in password) >= 3
        assert any(c.islower() for c in password)
        assert policy.allows(password)
    assert not policy.allows("a" * 20)  # too few digits
    assert not policy.allows("a1!" + "1" * 17)  # a character outside the charsets


def test_the_json_form_is_the_same_policy() -> None:
    text = '{"length": 8, "rule": [{"charset": [{"charset": "xy", "min-chars": 2}]}]}'
    policy = parse_policy(text)
    assert (policy.length, policy.charset) == (8, "xy")
    assert all(set(policy.generate()) <= {"x", "y"} for _ in range(20))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # The texts OpenBao answers (checked against `bao server -dev`).
        (
            "length = 0",
            "invalid password policy: 2 errors occurred:\n\t* length must be > 0\n"
            "\t* no charset specified\n\n",
        ),
        ("length = 20", "invalid password policy: 1 error occurred:\n\t* no charset specified\n\n"),
        (
            'length = 4\nrule "charset" {\n charset = "a"\n min-chars = 3\n}\n'
            'rule "charset" {\n charset = "b"\n min-chars = 2\n}',
            "invalid password policy: 1 error occurred:\n\t* specified rules require at least "
            "5 characters but 4 is specified\n\n",
        ),
        (
            'length = 20\nrule "foo" {\n charset = "ab"\n}',
            "invalid password policy: unable to parse rules: unable to parse rule foo: "
            "unrecognized rule type foo",
        ),
        (
            'length = "20"\nrule "charset" {\n charset = "ab"\n}',
            "invalid password policy: failed to decode configuration: decoding failed due to "
            "the following error(s):\n\n'length' expected type 'int', got unconvertible type "
            "'string'",
        ),
        (
            'length = 10\nrule "charset" {\n charset = "a\\u0001"\n}',
            "invalid password policy: 1 error occurred:\n\t* non-printable character in "
            "charset\n\n",
        ),
        (
            "length = 10\nrule {\n}",
            "invalid password policy: unable to parse rules: unable to get rule info: "
            "rule is empty",
        ),
    ],
)
def test_invalid_policies_get_openbaos_texts(text: str, message: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_policy(text)
    assert raised.value.message == message


def test_malformed_hcl_is_a_decode_error() -> None:
    with pytest.raises(InvalidRequestError, match=r"^invalid password policy: unable to decode: "):
        parse_policy("garbage {{")


def test_unknown_keys_are_ignored_as_openbao_does() -> None:
    policy = parse_policy('length = 10\nfoo = 1\nrule "charset" {\n charset = "ab"\n bar = 2\n}')
    assert policy.charset == "ab"


def test_a_charset_longer_than_a_byte_cannot_generate() -> None:
    policy = PasswordPolicy(10, (CharsetRule("".join(map(chr, range(0x100, 0x200)))),))
    with pytest.raises(PolicyGenerationError, match="charset is too long"):
        policy.generate()
