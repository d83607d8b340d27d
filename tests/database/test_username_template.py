"""`username_template` in Go template syntax: Vault's default PostgreSQL template and its
functions render as Vault's do, a bad template is refused with OpenBao's text when the config
is written, and the rendered name is the real PostgreSQL user."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import pytest

from tenantvault._exceptions import InvalidRequestError
from tenantvault.engines.database._credentials import (
    DEFAULT_USERNAME_TEMPLATE,
    check_username_template,
    generate_username,
)
from tenantvault.engines.database._template import TemplateError, UsernameTemplate
from tests._postgres import PostgresCluster
from tests.database.conftest import Admin, can_login
from tests.database.test_dynamic import CREATE
from tests.integration._support import remember_secret
from tests.server.conftest import Vault

NOW = datetime(2021, 2, 25, 23, 13, 56, 789000, tzinfo=UTC)


def render(template: str, display: str = "token", role: str = "myrolename") -> str:
    return UsernameTemplate(template, now=lambda: NOW).render(display_name=display, role_name=role)


def test_the_default_template_is_vaults_docs_example() -> None:
    """Vault's docs: DisplayName `token`, role `myrolename` →
    `v-token-myrolena-<20 random>-<unix time>`."""
    name = generate_username(
        "", display_name="token", role_name="myrolename", now_seconds=1614294836
    )
    assert re.fullmatch(r"v-token-myrolena-[A-Za-z0-9]{20}-1614294836", name)
    assert render(DEFAULT_USERNAME_TEMPLATE, "a" * 40, "b" * 40)[:20] == "v-aaaaaaaa-bbbbbbbb-"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ .RoleName | truncate 4 }}", "myro"),
        ("{{ truncate 4 .RoleName }}", "myro"),
        ("{{ .RoleName | uppercase }}", "MYROLENAME"),
        ('{{ "ABC" | lowercase }}', "abc"),
        ('{{ .DisplayName | replace "o" "0" }}', "t0ken"),
        ("{{ .DisplayName | sha256 }}", hashlib.sha256(b"token").hexdigest()),
        ("{{ .DisplayName | base64 }}", "dG9rZW4="),
        ("{{ .DisplayName | hex | decode_hex }}", "token"),
        ('{{ "dG9rZW4=" | decode_base64 }}', "token"),
        ("{{ .RoleName | truncate_sha256 9 }}", "m" + hashlib.sha256(b"yrolename").hexdigest()[:8]),
        ("{{ .RoleName | truncate_sha256 20 }}", "myrolename"),
        ("{{ unix_time }}", "1614294836"),
        ("{{ unix_time_millis }}", "1614294836789"),
        ('{{ timestamp "2006-01-02T15:04:05.000Z07:00" }}', "2021-02-25T23:13:56.789Z"),
        ('{{ timestamp "Jan _2 03:04PM" }}', "Feb 25 11:13PM"),
        ('{{ printf "%s-%d-%s" .RoleName 7 (.DisplayName | uppercase) }}', "myrolename-7-TOKEN"),
        ("x-{{- ` raw ` -}} -y", "x- raw -y"),
        ("a{{/* a comment */}}b", "ab"),
        ("{{ (.RoleName | truncate 2) | uppercase }}", "MY"),
    ],
)
def test_functions_render_as_vaults(template: str, expected: str) -> None:
    assert render(template) == expected


def test_random_and_uuid_are_fresh() -> None:
    first, second = render("{{ random 20 }}"), render("{{ random 20 }}")
    assert re.fullmatch(r"[A-Za-z0-9]{20}", first)
    assert first != second
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", render("{{ uuid }}")
    )


@pytest.mark.parametrize(
    ("template", "error"),
    [
        # OpenBao's texts (checked against `bao server -dev`).
        (
            "{{nope}}",
            "unable to initialize username template: unable to parse template: template: "
            'template:1: function "nope" not defined',
        ),
        (
            "{{ .DisplayName",
            "unable to initialize username template: unable to parse template: template: "
            "template:1: unclosed action",
        ),
        (
            "{{ }}",
            "unable to initialize username template: unable to parse template: template: "
            "template:1: missing value for command",
        ),
        (
            "{{ .Foo }}",
            "invalid username template: unable to apply template: template: template:1:3: "
            'executing "template" at <.Foo>: can\'t evaluate field Foo in type '
            "dbplugin.UsernameMetadata",
        ),
        (
            "{{ .RoleName | truncate 0 }}",
            "invalid username template: unable to apply template: template: template:1:15: "
            'executing "template" at <truncate 0>: error calling truncate: max length must be '
            "> 0 but was 0",
        ),
        (
            '{{ .DisplayName | replace "a" }}',
            "invalid username template: unable to apply template: template: template:1:18: "
            'executing "template" at <replace>: wrong number of args for replace: want 3 got 2',
        ),
        (
            '{{ random "x" }}',
            "invalid username template: unable to apply template: template: template:1:10: "
            'executing "template" at <"x">: expected integer; found "x"',
        ),
    ],
)
def test_bad_templates_get_openbaos_texts(template: str, error: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        check_username_template(template)
    assert str(raised.value) == error


def test_control_structures_are_refused_by_name() -> None:
    with pytest.raises(TemplateError, match="'if' is not supported"):
        UsernameTemplate("{{ if true }}x{{ end }}")


async def test_a_bad_template_is_refused_when_the_config_is_written(
    vault: Vault, admin: Admin
) -> None:
    await vault.root("POST", "sys/mounts/database", json={"type": "database"})
    body = admin.config(username_template="{{ .RoleName | truncate 0 }}")
    response = await vault.root("POST", "database/config/pg", json=body)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error.startswith("error creating database object: invalid username template: ")
    assert (await vault.root("GET", "database/config/pg")).status_code == 404


async def test_the_rendered_name_is_the_database_user(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    template = '{{ printf "app_%s_%s" (.RoleName | uppercase) (random 6 | lowercase) }}'
    await vault.root("POST", "sys/mounts/database", json={"type": "database"})
    body = admin.config(allowed_roles=["rw"], username_template=template)
    assert (await vault.root("POST", "database/config/pg", json=body)).status_code == 204
    role = {"db_name": "pg", "creation_statements": [CREATE]}
    assert (await vault.root("POST", "database/roles/rw", json=role)).status_code == 204
    response = await vault.root("GET", "database/creds/rw")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    remember_secret(data["password"])
    assert re.fullmatch(r"app_RW_[a-z0-9]{6}", data["username"])
    assert await can_login(postgres, data["username"], data["password"])
