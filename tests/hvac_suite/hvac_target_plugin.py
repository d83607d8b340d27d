"""A pytest plugin that points hvac's own integration suite at an already-built dev server.

hvac's suite (shipped in its sdist) starts `vault server -config=...` with TLS for each test
class, then initializes and unseals it. This plugin, loaded with `-p hvac_target_plugin` in a
pytest run inside the unpacked sdist, replaces only that server management: each test class
gets a fresh dev server of the target named by `HVAC_SUITE_TARGET` — `bao server -dev` or
`tenantvault serve --dev` — on a free loopback port, already initialized, with a known root
token. hvac's tests themselves run unchanged. The version checks of hvac's suite read
`vault -version`; they get OpenBao's version (tenantvault speaks OpenBao's API).

It imports hvac's `tests` package dynamically: that package exists only inside the sdist run.

The seal modules (`_NON_DEV_MODULES`: test_init, test_seal, test_key) need what a dev server
skips: a server that starts sealed, that hvac's own `initialize()` (5 shares, threshold 3) and
`unseal()` drive. For those classes the target is a non-dev server instead — `bao server
-config` with raft storage (OpenBao 2.7 has no file storage), or `tenantvault serve --seal
shamir` on a fresh data directory — and hvac's own initialize and unseal run unchanged.
"""

from __future__ import annotations

import importlib
import os
import shlex
import socket
import subprocess
import tempfile
import time
from typing import Any

import httpx

_ROOT_TOKEN = "hvac-suite-root"
_STARTUP_SECONDS = 30.0
_NON_DEV_MODULES = (
    "system_backend/test_init.py",
    "system_backend/test_seal.py",
    "system_backend/test_key.py",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command(target: str, address: str) -> list[str]:
    """The command line of a dev server of `target` listening on `address`."""
    if target == "bao":
        return [
            os.environ.get("HVAC_SUITE_BAO", "bao"),
            "server",
            "-dev",
            f"-dev-root-token-id={_ROOT_TOKEN}",
            f"-dev-listen-address={address}",
        ]
    if target == "tenantvault":
        command = shlex.split(os.environ.get("HVAC_SUITE_TENANTVAULT", "tenantvault"))
        return [*command, "serve", "--dev", "--dev-root-token", _ROOT_TOKEN, "--listen", address]
    raise ValueError(f"unknown HVAC_SUITE_TARGET {target!r}")


def _is_non_dev() -> bool:
    """Whether the test class being set up is one of the seal modules (pytest names the test
    whose setup, `setUpClass` included, is running)."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    return any(module in current for module in _NON_DEV_MODULES)


def _non_dev_command(target: str, address: str, directory: str) -> list[str]:
    """A server of `target` that starts uninitialized and sealed, its data in `directory`."""
    if target == "bao":
        cluster = f"127.0.0.1:{_free_port()}"
        config = os.path.join(directory, "openbao.hcl")
        with open(config, "w") as file:
            file.write(
                f'storage "raft" {{\n  path = "{directory}"\n  node_id = "hvac"\n}}\n'
                f'listener "tcp" {{\n  address = "{address}"\n  cluster_address = "{cluster}"\n'
                "  tls_disable = true\n}\n"
                f'api_addr = "http://{address}"\ncluster_addr = "http://{cluster}"\n'
            )
        return [os.environ.get("HVAC_SUITE_BAO", "bao"), "server", f"-config={config}"]
    if target == "tenantvault":
        command = shlex.split(os.environ.get("HVAC_SUITE_TENANTVAULT", "tenantvault"))
        data_dir = os.path.join(directory, "data")
        return [*command, "serve", "--seal", "shamir", "--data-dir", data_dir, "--listen", address]
    raise ValueError(f"unknown HVAC_SUITE_TARGET {target!r}")


def _wait_ready(process: subprocess.Popen[bytes], url: str, *, probe: str = "sys/health") -> None:
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the dev server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/v1/{probe}", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the dev server did not become ready")


def _patch_server_manager(target: str) -> None:
    server_manager: Any = importlib.import_module("tests.utils.server_manager")
    utils: Any = importlib.import_module("tests.utils")
    manager_class: Any = server_manager.ServerManager
    hvac_initialize, hvac_unseal = manager_class.initialize, manager_class.unseal

    def start(self: Any) -> None:
        address = f"127.0.0.1:{_free_port()}"
        self._target_url = f"http://{address}"
        self._target_log = tempfile.TemporaryFile()
        self._non_dev = _is_non_dev()
        if self._non_dev:
            self._target_dir = tempfile.TemporaryDirectory()
            command = _non_dev_command(target, address, self._target_dir.name)
        else:
            command = _command(target, address)
        self._target_process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._target_log,
            stderr=subprocess.STDOUT,
        )
        # A sealed server answers sys/health 501/503: wait for its seal status instead.
        probe = "sys/seal-status" if self._non_dev else "sys/health"
        _wait_ready(self._target_process, self._target_url, probe=probe)
        self.client = utils.create_client(url=self._target_url)

    def initialize(self: Any) -> None:
        if getattr(self, "_non_dev", False):
            hvac_initialize(self)  # hvac's own: sys/init with 5 shares, threshold 3
            return
        # A dev server is initialized and unsealed already; hvac's tests need its root token.
        self.root_token = self.client.token = _ROOT_TOKEN
        self.keys = []

    def unseal(self: Any) -> None:
        if getattr(self, "_non_dev", False):
            hvac_unseal(self)  # hvac's own: every share to sys/unseal

    def stop(self: Any) -> None:
        self.client = None
        process = getattr(self, "_target_process", None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        log = getattr(self, "_target_log", None)
        if log is not None:
            log.close()
        directory = getattr(self, "_target_dir", None)
        if directory is not None:
            directory.cleanup()

    def addresses(self: Any) -> list[str]:
        return [self._target_url]

    manager_class.start = start
    manager_class.initialize = initialize
    manager_class.unseal = unseal
    manager_class.stop = stop
    manager_class.get_active_vault_addresses = addresses
    bao = os.environ.get("HVAC_SUITE_BAO", "bao")
    version = subprocess.run(
        [bao, "version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    utils.get_vault_version_string = lambda: version.lstrip("v")


def pytest_configure(config: Any) -> None:
    """Replace hvac's server management before its test modules are collected."""
    _patch_server_manager(os.environ["HVAC_SUITE_TARGET"])
