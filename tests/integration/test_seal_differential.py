"""The Shamir seal side by side with a real, non-dev OpenBao: `bao operator init`, `unseal`,
`seal` and the raw `sys/` seal endpoints answer alike — shapes, statuses and texts — and a
restart leaves both sealed until a quorum of shares comes again.

OpenBao 2.7 has no `file` storage any more; its raft storage is the non-dev reference here
(the seal endpoints do not depend on the storage).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration._support import (
    STARTUP_SECONDS,
    BaoCLI,
    bao_executable,
    clean_env,
    free_port,
    stop,
    tenantvault_executable,
)

# Fields whose values are the product's own (version, build, storage, cluster identity).
_OWN_VALUES = ("version", "build_date", "commit_date", "storage_type", "cluster_name", "cluster_id")


@dataclass
class Sealable:
    """A non-dev server that starts sealed; `restart()` keeps its data."""

    name: str
    command: list[str]
    home: Path
    addr: str
    process: subprocess.Popen[bytes] | None = None
    init: dict[str, Any] = field(default_factory=dict)

    def start(self) -> None:
        log = self.home / f"{self.name}.log"
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                self.command, stdout=sink, stderr=subprocess.STDOUT, env=clean_env(self.home)
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{self.addr}/v1/sys/seal-status", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        pytest.fail(f"{self.name} did not answer sys/seal-status")

    def stop(self) -> None:
        if self.process is not None:
            assert stop(self.process) == 0, f"{self.name} did not exit cleanly"
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def http(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.addr}/v1/{path}", timeout=10, **kwargs)

    @property
    def bao(self) -> BaoCLI:
        return BaoCLI(bao_executable(), self.addr, self.home)


def _openbao(home: Path) -> Sealable:
    port, cluster = free_port(), free_port()
    (home / "raft").mkdir()
    config = home / "openbao.hcl"
    config.write_text(
        f'storage "raft" {{\n  path = "{home / "raft"}"\n  node_id = "n1"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n'
        f'  cluster_address = "127.0.0.1:{cluster}"\n  tls_disable = true\n}}\n'
        f'api_addr = "http://127.0.0.1:{port}"\ncluster_addr = "http://127.0.0.1:{cluster}"\n'
    )
    command = [str(bao_executable()), "server", f"-config={config}"]
    return Sealable("openbao", command, home, f"http://127.0.0.1:{port}")


def _tenantvault(home: Path) -> Sealable:
    port = free_port()
    command = [
        *tenantvault_executable(),
        "serve",
        "--seal",
        "shamir",
        "--listen",
        f"127.0.0.1:{port}",
        "--data-dir",
        str(home / "data"),
        "--log-level",
        "debug",
    ]
    return Sealable("tenantvault", command, home, f"http://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Sealable]]:
    pair = [
        _openbao(tmp_path_factory.mktemp("openbao-sealed")),
        _tenantvault(tmp_path_factory.mktemp("tenantvault-sealed")),
    ]
    for server in pair:
        server.start()
    try:
        yield pair
    finally:
        for server in pair:
            server.stop()


def _status(server: Sealable) -> dict[str, Any]:
    response = server.http("GET", "sys/seal-status")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """A seal status with the product's own values out and the nonce reduced to 'set?'."""
    kept = {key: value for key, value in body.items() if key not in _OWN_VALUES}
    if "nonce" in kept:
        kept["nonce"] = bool(kept["nonce"])
    return kept


def _alike(servers: list[Sealable], method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The same request to both: same status, same body (errors included)."""
    reference, ours = (server.http(method, path, **kwargs) for server in servers)
    assert ours.status_code == reference.status_code, (path, reference.text, ours.text)
    if reference.content:
        assert _comparable(ours.json()) == _comparable(reference.json()), (path, kwargs)
    return ours


@pytest.fixture(scope="module")
def unsealed(servers: list[Sealable]) -> list[Sealable]:
    """The servers after the seal life cycle (initialized, unsealed): what the later tests
    start from. A fixture, not test order: xdist may run this module's tests on different
    workers, and each worker then has its own pair of servers to take through it."""
    _life_cycle(servers)
    return servers


def test_the_seal_life_cycle_matches_openbao(unsealed: list[Sealable]) -> None:
    """init, unseal, seal, restart and the CLI, step for step against OpenBao (`_life_cycle`,
    run by the `unsealed` fixture: its failures fail this test)."""
    assert all(server.init["root_token"] for server in unsealed)


def _life_cycle(servers: list[Sealable]) -> None:
    openbao, ours = servers
    # Before init: both uninitialized and sealed; health answers 501; sys/init says so.
    assert (
        _comparable(_status(ours)).keys() - {"cluster_name"} == _comparable(_status(openbao)).keys()
    )
    _alike(servers, "GET", "sys/seal-status")
    _alike(servers, "PUT", "sys/seal-status")
    _alike(servers, "GET", "sys/unseal")
    _alike(servers, "GET", "sys/init")
    for server in servers:
        assert server.http("GET", "sys/health").status_code == 501
    for body in (
        {"secret_shares": 2, "secret_threshold": 3},
        {"secret_shares": 5, "secret_threshold": 1},
        {},
    ):
        _alike(servers, "PUT", "sys/init", json=body)
    _alike(servers, "PUT", "sys/unseal", json={"key": "00" * 33})
    _alike(servers, "GET", "sys/mounts")

    # `bao operator init`: the same JSON keys out of the CLI.
    for server in servers:
        result = server.bao.run(
            "operator", "init", "-key-shares=5", "-key-threshold=3", "-format=json"
        )
        assert result.code == 0, result.text
        server.init = json.loads(result.out)
    assert servers[1].init.keys() == servers[0].init.keys()
    assert len(ours.init["unseal_keys_b64"]) == 5
    assert (ours.init["unseal_shares"], ours.init["unseal_threshold"]) == (5, 3)
    _alike(servers, "PUT", "sys/init", json={"secret_shares": 5, "secret_threshold": 3})
    _alike(servers, "GET", "sys/init")
    _alike(servers, "GET", "sys/seal-status")
    health = [server.http("GET", "sys/health").json() for server in servers]
    assert health[1].keys() == health[0].keys()
    for server in servers:
        assert server.http("GET", "sys/health").status_code == 503
        assert server.http("GET", "sys/health", params={"sealedcode": "299"}).status_code == 299
    # Sealed: everything else is 503 `Vault is sealed`, with or without a token.
    _alike(servers, "GET", "sys/mounts")
    _alike(servers, "GET", "secret/data/x")
    _alike(servers, "PUT", "sys/seal")

    # Malformed shares are refused alike; no progress is made.
    bodies: list[dict[str, Any]] = [{}, {"key": "zz"}, {"key": "00" * 10}, {"key": "00" * 40}]
    for body in bodies:
        _alike(servers, "PUT", "sys/unseal", json=body)

    # Two shares (one of them twice) are not enough; reset forgets them.
    for index in (0, 0, 1):
        for server in servers:
            result = server.bao.run("operator", "unseal", server.init["unseal_keys_b64"][index])
            assert result.code == 0, result.text
        _alike(servers, "GET", "sys/seal-status")
    assert _status(ours)["progress"] == 2
    _alike(servers, "GET", "sys/mounts")
    _alike(servers, "PUT", "sys/unseal", json={"reset": True})

    # A wrong share at the threshold is refused and the attempt starts over.
    for server in servers:
        for key in server.init["unseal_keys_hex"][:2]:
            server.http("PUT", "sys/unseal", json={"key": key})
    # A forged share whose x coordinate none of the given shares has (a shared one would be
    # refused earlier, as "duplicate part detected", by both).
    used = {bytes.fromhex(s.init["unseal_keys_hex"][i])[-1] for s in servers for i in (0, 1)}
    x = next(x for x in range(1, 256) if x not in used)
    forged = {"key": ("01" * 32) + f"{x:02x}"}
    _alike(servers, "PUT", "sys/unseal", json=forged)
    _alike(servers, "GET", "sys/seal-status")

    # Three shares unseal; `bao status` sees it.
    for server in servers:
        for key in server.init["unseal_keys_b64"][2:5]:
            assert server.bao.run("operator", "unseal", key).code == 0
        status = server.bao.run("status", "-format=json")
        assert status.code == 0, status.text
        assert json.loads(status.out)["sealed"] is False
    _alike(servers, "GET", "sys/seal-status")
    _alike(servers, "PUT", "sys/unseal", json={"key": ours.init["unseal_keys_hex"][0]})
    _alike(servers, "PUT", "sys/unseal", json={"reset": True})
    _alike(servers, "PUT", "sys/seal")  # no token: 403 once unsealed
    _alike(servers, "GET", "sys/seal", headers={"X-Vault-Token": "x"})
    for server in servers:
        assert server.http("GET", "sys/health").status_code == 200

    # Key terms: the same shape from sys/key-status, a higher term after sys/rotate, and no
    # backed-up keys (shares are never PGP-encrypted here).
    statuses = []
    for server in servers:
        root = {"X-Vault-Token": server.init["root_token"]}
        before = server.http("GET", "sys/key-status", headers=root).json()
        assert server.http("PUT", "sys/rotate", headers=root).status_code == 204
        after = server.http("GET", "sys/key-status", headers=root).json()
        assert after["data"]["term"] == before["data"]["term"] + 1
        statuses.append(after)
        backup = server.http("GET", "sys/rekey/backup", headers=root)
        assert (backup.status_code, backup.json()) == (400, {"errors": ["no backed-up keys found"]})
        assert server.http("PUT", "sys/rotate").status_code == 403
    assert statuses[1].keys() == statuses[0].keys()
    assert statuses[1]["data"].keys() == statuses[0]["data"].keys()

    # Data written now survives a seal and a restart, behind the shares.
    for server in servers:
        token = server.init["root_token"]
        enabled = server.bao.run("secrets", "enable", "-version=2", "-path=kv", "kv", token=token)
        assert enabled.code == 0, enabled.text
        put = server.bao.run("kv", "put", "-mount=kv", "app", "password=hunter2", token=token)
        assert put.code == 0, put.text
        sealed = server.bao.run("operator", "seal", token=token)
        assert sealed.code == 0, sealed.text
    _alike(servers, "GET", "sys/seal-status")
    _alike(servers, "GET", "kv/data/app", headers={"X-Vault-Token": "x"})

    for server in servers:
        server.restart()
    _alike(servers, "GET", "sys/seal-status")
    _alike(servers, "GET", "kv/data/app", headers={"X-Vault-Token": "x"})
    for server in servers:
        for key in server.init["unseal_keys_hex"][1:4]:
            assert server.bao.run("operator", "unseal", key).code == 0
        got = server.bao.run(
            "kv", "get", "-mount=kv", "-field=password", "app", token=server.init["root_token"]
        )
        assert (got.code, got.out.strip()) == (0, "hunter2"), got.text

    # Nothing secret in our debug log: no share (either spelling), no root token.
    log = (ours.home / "tenantvault.log").read_text(errors="replace")
    secrets = [*ours.init["unseal_keys_b64"], *ours.init["unseal_keys_hex"]]
    assert not [secret for secret in [*secrets, ours.init["root_token"]] if secret in log]


_GO_WRAP = re.compile(r"%!w\(\*[\w.]+=&\{(.*)\}\)")


def _normalized(response: httpx.Response) -> tuple[int, Any]:
    """Status and body, with OpenBao's 500s for a caller's mistake read as our 400s: the
    multierror wrapping ("1 error occurred:\\n\\t* ...") removed (see `_generate_root`),
    and OpenBao's formatting slip `%!w(*errors.errorString=&{...})` read as what it wraps."""
    body = response.json() if response.content else None
    if isinstance(body, dict) and body.get("errors"):
        errors = [_GO_WRAP.sub(r"\1", text) for text in body["errors"]]
        if response.status_code == 500:
            errors = [
                text.removeprefix("1 error occurred:\n\t* ").removesuffix("\n\n") for text in errors
            ]
            return 400, {"errors": errors}
        return response.status_code, {"errors": errors}
    return response.status_code, body


def _shape(body: Any) -> Any:
    """A generate-root answer with the values that differ by server (nonce, OTP, lengths)
    reduced to their presence."""
    if not isinstance(body, dict) or "data" not in body:
        return body
    data = dict(body["data"])
    for name in ("nonce", "otp", "encoded_token"):
        if name in data:
            data[name] = bool(data[name])
    data.pop("otp_length", None)
    return data


def test_generate_root_token_matches_openbao(unsealed: list[Sealable]) -> None:
    """On the initialized, unsealed servers of the life cycle."""
    servers = unsealed
    otps: list[str] = []
    nonces: list[str] = []

    def both(method: str, path: str, body: Any = None) -> list[httpx.Response]:
        replies = [
            server.http(
                method,
                f"sys/generate-root-token/{path}",
                headers={"X-Vault-Token": server.init["root_token"]},
                json=body,
            )
            for server in servers
        ]
        reference, ours = (_normalized(reply) for reply in replies)
        assert ours[0] == reference[0], (path, body, replies[0].text, replies[1].text)
        assert _shape(ours[1]) == _shape(reference[1]), (path, body)
        return replies

    both("GET", "attempt")
    both("PUT", "attempt", {"otp": "short"})
    for reply in both("PUT", "attempt", {}):
        otps.append(reply.json()["data"]["otp"])
        nonces.append(reply.json()["data"]["nonce"])
    both("PUT", "attempt", {})
    both("GET", "attempt")
    both("PUT", "update", {"key": "00" * 33})
    both("PUT", "update", {"nonce": "x"})

    def update(index: int, nonce: str | None = None) -> list[httpx.Response]:
        replies = []
        for server, own_nonce in zip(servers, nonces, strict=True):
            key = server.init["unseal_keys_hex"][index]
            replies.append(
                server.http(
                    "PUT",
                    "sys/generate-root-token/update",
                    headers={"X-Vault-Token": server.init["root_token"]},
                    json={"key": key, "nonce": nonce or own_nonce},
                )
            )
        reference, ours = (_normalized(reply) for reply in replies)
        assert ours[0] == reference[0], (replies[0].text, replies[1].text)
        if reference[0] == 400:
            # The wrong-nonce text names each server's own nonce.
            assert ours[1]["errors"][0].split(";")[0] == reference[1]["errors"][0].split(";")[0]
        else:
            assert _shape(ours[1]) == _shape(reference[1])
        return replies

    update(0, nonce="wrong")
    update(0)
    update(0)  # the same share twice
    update(1)
    finished = update(2)
    for server, reply, otp in zip(servers, finished, otps, strict=True):
        data = reply.json()["data"]
        assert data["complete"] is True
        decoded = server.bao.run(
            "operator",
            "generate-root",
            f"-decode={data['encoded_token']}",
            f"-otp={otp}",
            token=server.init["root_token"],
        )
        assert decoded.code == 0, decoded.text
        token = decoded.out.strip()
        looked_up = server.http("GET", "auth/token/lookup-self", headers={"X-Vault-Token": token})
        assert looked_up.status_code == 200, looked_up.text
        assert looked_up.json()["data"]["policies"] == ["root"]
    both("GET", "attempt")
    both("DELETE", "attempt")


def test_rotate_keys_matches_openbao(unsealed: list[Sealable]) -> None:
    """`sys/rotate/root/*` (`bao operator rotate-keys`), after the tests above: new shares
    from a quorum of the old ones; the old shares stop unsealing, the new ones do."""
    servers = unsealed

    def both(
        method: str, path: str, body: Any = None, keys: list[str] | None = None
    ) -> list[httpx.Response]:
        replies = []
        for index, server in enumerate(servers):
            payload = dict(body) if body is not None else None
            if keys is not None and payload is not None:
                payload["key"] = keys[index]
            replies.append(
                server.http(
                    method,
                    f"sys/rotate/root/{path}",
                    headers={"X-Vault-Token": server.init["root_token"]},
                    json=payload,
                )
            )
        reference, ours = (_normalized(reply) for reply in replies)
        assert ours[0] == reference[0], (path, body, replies[0].text, replies[1].text)
        if reference[0] == 200:
            assert _shape(ours[1]).keys() == _shape(reference[1]).keys(), (path, body)
        elif reference[0] == 400 and "nonce for rotation" not in reference[1]["errors"][0]:
            assert ours[1] == reference[1], (path, body)
        return replies

    both("GET", "init")
    both("PUT", "update", {"key": "00" * 33, "nonce": "x"})
    both("PUT", "init", {"secret_shares": 5, "secret_threshold": 1})
    nonces = [
        r.json()["data"]["nonce"]
        for r in both("PUT", "init", {"secret_shares": 3, "secret_threshold": 2})
    ]
    both("PUT", "init", {"secret_shares": 3, "secret_threshold": 2})
    both("GET", "init")
    both("PUT", "update", {"nonce": "x"})
    both("PUT", "update", {"key": "00"})
    both("PUT", "update", {"nonce": "wrong"}, keys=[s.init["unseal_keys_hex"][0] for s in servers])
    for index in (0, 0, 1):
        keys = [server.init["unseal_keys_hex"][index] for server in servers]
        replies = [
            server.http(
                "PUT",
                "sys/rotate/root/update",
                headers={"X-Vault-Token": server.init["root_token"]},
                json={"key": key, "nonce": nonce},
            )
            for server, key, nonce in zip(servers, keys, nonces, strict=True)
        ]
        reference, ours = (_normalized(reply) for reply in replies)
        assert ours[0] == reference[0], (replies[0].text, replies[1].text)
        assert (ours[1] if ours[0] != 200 else None) == (
            reference[1] if reference[0] != 200 else None
        )
    finished = [
        server.http(
            "PUT",
            "sys/rotate/root/update",
            headers={"X-Vault-Token": server.init["root_token"]},
            json={"key": server.init["unseal_keys_hex"][2], "nonce": nonce},
        )
        for server, nonce in zip(servers, nonces, strict=True)
    ]
    assert finished[1].json()["data"].keys() == finished[0].json()["data"].keys()
    _alike(servers, "GET", "sys/seal-status")
    for server, reply in zip(servers, finished, strict=True):
        new_keys = reply.json()["data"]["keys_base64"]
        assert len(new_keys) == 3
        assert server.bao.run("operator", "seal", token=server.init["root_token"]).code == 0
        for old in server.init["unseal_keys_b64"][:2]:
            server.http("PUT", "sys/unseal", json={"key": old})
        assert _status(server)["sealed"] is True  # the old shares do not unseal any more
        server.http("PUT", "sys/unseal", json={"reset": True})
        for key in new_keys[:2]:
            assert server.bao.run("operator", "unseal", key).code == 0
        assert _status(server)["sealed"] is False
