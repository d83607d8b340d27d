"""`tenantvault operator init|unseal|seal` against `tenantvault serve --seal shamir`: the
shares are printed once, read back from stdin (never argv), and seal/unseal show in `status`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import (
    CLI,
    Server,
    free_port,
    stop_server,
    tenantvault_command,
    wait_until_serving,
)

# `bao operator init -format=json`'s keys, in its order.
BAO_INIT_KEYS = [
    "unseal_keys_b64",
    "unseal_keys_hex",
    "unseal_shares",
    "unseal_threshold",
    "recovery_keys_b64",
    "recovery_keys_hex",
    "recovery_keys_shares",
    "recovery_keys_threshold",
    "root_token",
]


@pytest.fixture(scope="module")
def sealed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("cli-shamir")
    port = free_port()
    log = directory / "server.log"
    command = [
        *tenantvault_command(),
        "serve",
        "--seal",
        "shamir",
        "--data-dir",
        str(directory / "data"),
        "--listen",
        f"127.0.0.1:{port}",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    info = Server(f"http://127.0.0.1:{port}", "", log)
    try:
        wait_until_serving(process, info)
        yield info
    finally:
        stop_server(process)


@pytest.fixture
def operator(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sealed_server: Server,
    tmp_path: Path,
) -> CLI:
    home = tmp_path / "home"
    home.mkdir()
    return CLI(capsys, monkeypatch, sealed_server, home)


def test_init_unseal_seal(operator: CLI) -> None:
    assert operator("operator", "init", "-status", token=None).code == 2

    init = operator(
        "operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json", token=None
    )
    assert init.code == 0, init.err
    document = json.loads(init.out)
    assert list(document) == BAO_INIT_KEYS
    keys, root_token = document["unseal_keys_b64"], document["root_token"]
    assert len(keys) == 3
    assert operator("operator", "init", "-status", token=None).code == 0
    again = operator("operator", "init", token=None)
    assert again.code == 1
    assert "Vault is already initialized" in again.err

    # A share on the command line is refused, and not echoed.
    refused = operator("operator", "unseal", keys[0], token=None)
    assert refused.code == 2
    assert "not accepted as command-line arguments" in refused.err
    assert keys[0] not in refused.err + refused.out

    first = operator("operator", "unseal", stdin=keys[0] + "\n", token=None)
    assert first.code == 0, first.err
    assert "Unseal Progress    1/2" in first.out
    assert keys[0] not in first.out
    assert operator("status", token=None).code == 2
    reset = operator("operator", "unseal", "-reset", token=None)
    assert "Unseal Progress    0/2" in reset.out

    for key in keys[1:]:
        done = operator("operator", "unseal", "-", stdin=key + "\n", token=None)
        assert done.code == 0, done.err
    assert [line.split() for line in done.out.splitlines() if line.startswith("Sealed")] == [
        ["Sealed", "false"]
    ]
    assert operator("status", token=None).code == 0

    # A new root token from a quorum of shares: -init, a share per -nonce, -decode.
    started = operator("operator", "generate-root", "-init", "-format=json", token=root_token)
    assert started.code == 0, started.err
    attempt = json.loads(started.out)
    for key in keys[:2]:
        given = operator(
            "operator",
            "generate-root",
            f"-nonce={attempt['nonce']}",
            "-format=json",
            stdin=key + "\n",
            token=root_token,
        )
        assert given.code == 0, given.err
    encoded = json.loads(given.out)["encoded_token"]
    decoded = operator(
        "operator", "generate-root", f"-decode={encoded}", f"-otp={attempt['otp']}", token=None
    )
    assert decoded.code == 0, decoded.err
    new_root = decoded.out.strip()
    assert new_root.startswith("tvs.")
    assert new_root != root_token
    assert operator("operator", "key-status", token=new_root).code == 0

    # New shares from a quorum of the old ones: the old shares stop working.
    begun = operator(
        "operator",
        "rekey",
        "-init",
        "-key-shares=2",
        "-key-threshold=2",
        "-format=json",
        token=root_token,
    )
    assert begun.code == 0, begun.err
    rekey_nonce = json.loads(begun.out)["nonce"]
    for key in keys[:2]:
        given = operator(
            "operator",
            "rekey",
            f"-nonce={rekey_nonce}",
            "-format=json",
            stdin=key + "\n",
            token=root_token,
        )
        assert given.code == 0, given.err
    keys = json.loads(given.out)["keys_base64"]
    assert len(keys) == 2

    status = operator("operator", "key-status", "-format=json", token=root_token)
    assert status.code == 0, status.err
    term = json.loads(status.out)["term"]
    rotated = operator("operator", "rotate", "-format=json", token=root_token)
    assert rotated.code == 0, rotated.err
    assert json.loads(rotated.out)["term"] == term + 1

    denied = operator("operator", "seal", token=None)
    assert denied.code != 0
    sealed = operator("operator", "seal", token=root_token)
    assert (sealed.code, sealed.out.strip()) == (0, "Success! Vault is sealed."), sealed.err
    assert operator("status", token=None).code == 2
    for key in keys:  # the new shares unseal
        assert operator("operator", "unseal", stdin=key + "\n", token=None).code == 0
    assert operator("status", token=None).code == 0
