"""The servers under test: start tenantvault and OpenBao side by side, call them, read /proc.

Shared by bench/run.py, bench/scale.py and bench/soak.py. Every server listens on a free
loopback port; root tokens travel in the environment or a 0600 file, never on a command line.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASELINE = "openbao-dev"
# OpenBao dev with a file audit device, so both sides audit every request (our servers
# always do): the like-for-like baseline for "authorized, audited reads".
AUDITED_BASELINE = "openbao-dev-audit"
GATEWAY = "tenantvault-gateway"
SQLITE = "tenantvault-sqlite"
# The name this server had before the open-loop runner; still accepted on the command line.
ALIASES = {"tenantvault-embedded": SQLITE}
SERVERS = ("tenantvault-dev", SQLITE, GATEWAY, BASELINE)
# Opt-in variants (--servers): audit overhead (issue 4), observability cost (issue 14), the
# read cache switched off (issue 16: what "uncached" reads cost), and asyncio's own event loop
# instead of uvloop (`-asyncio`: what the loop costs).
VARIANTS = (
    "tenantvault-dev-noaudit",
    "tenantvault-dev-auditfile",
    "tenantvault-dev-noobs",
    "tenantvault-dev-nocache",
    "tenantvault-sqlite-nocache",
    "tenantvault-dev-asyncio",
    "tenantvault-sqlite-asyncio",
    AUDITED_BASELINE,
)
STARTUP_SECONDS = 30.0


def is_openbao(name: str) -> bool:
    """Whether `name` is one of the OpenBao baselines (with or without an audit device)."""
    return name in (BASELINE, AUDITED_BASELINE)


# The read cache's off switch (issue 16): the `-nocache` variants' uncached reads.
CACHE_OFF_FLAG = "--no-read-cache"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def program(name: str) -> str:
    """A program from this virtualenv if there, else from PATH."""
    local = Path(sys.executable).with_name(name)
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"error: `{name}` not found (see the docstring of bench/run.py)")
    return found


class HTTPError(Exception):
    """A setup request was answered with an error status."""


@dataclass
class Server:
    """One server process under test, with the tokens its tenants' load uses."""

    name: str
    url: str
    root_token: str
    process: subprocess.Popen[bytes]
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)
    ciphertext: str = ""
    # An OpenBao dev server started for this gateway alone (no `upstream` given): stopped
    # with it.
    own_upstream: Server | None = None

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        namespace: str | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        """One request, with the root token unless another is given (setup, not load)."""
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"X-Vault-Token": token or self.root_token, "Content-Type": "application/json"}
        if namespace is not None:
            headers["X-Vault-Namespace"] = namespace
        try:
            payload = None if body is None else json.dumps(body)
            connection.request(method, f"/v1/{path}", body=payload, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        if response.status >= 300:
            raise HTTPError(f"{self.name}: {method} {path}: {response.status} {text[:300]}")
        return json.loads(text) if text else {}

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # Fields 14 and 15 of proc(5), counted after the ")" that ends the command name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_kib(self) -> dict[str, int]:
        """Resident set size now (VmRSS) and its peak (VmHWM), in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
        return {"rss_kib": int(found.get("VmRSS", 0)), "peak_rss_kib": int(found.get("VmHWM", 0))}

    def reset_peak_rss(self) -> None:
        """Start a new peak-RSS window (proc(5) clear_refs "5"), so a peak is per cell."""
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def open_fds(self) -> int:
        """Open file descriptors of the server process."""
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))


def wait_ready(server: Server, *, deadline_seconds: float = STARTUP_SECONDS) -> None:
    """Poll sys/health until the server answers (exit if it died or never answers)."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"error: {server.name} exited early; its log: {server.log}")
        with contextlib.suppress(OSError, HTTPError):
            server.call("GET", "sys/health")
            return
        time.sleep(0.05)
    raise SystemExit(f"error: {server.name} did not become ready; its log: {server.log}")


def _gateway_flags(workdir: Path, upstream: Server) -> list[str]:
    """`serve` flags for gateway mode on `upstream`: its root token from a 0600 file."""
    token_file = workdir / "upstream-token"
    token_file.write_text(upstream.root_token + "\n")
    token_file.chmod(0o600)
    master_key = workdir / "gateway-master.key"
    master_key.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    master_key.chmod(0o600)
    return [
        *("--backend", "vault+" + upstream.url, "--upstream-token-file", str(token_file)),
        *("--upstream-tenancy", "namespace", "--upstream-root", "bench-gateway"),
        *("--master-key-file", str(master_key), "--data-dir", str(workdir / "gateway-data")),
        *("--root-token-file", str(workdir / "gateway-root-token")),
    ]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TENANTVAULT_")}


def start(
    name: str,
    workdir: Path,
    *,
    access_log: bool = True,
    upstream: Server | None = None,
    data_dir: Path | None = None,
    wait: bool = True,
) -> Server:
    """Start the server `name` (see SERVERS and VARIANTS) and wait until it answers.

    `data_dir` reuses an embedded store (a restart); its root token is then the one of the
    first start, read back from `workdir`.
    """
    name = ALIASES.get(name, name)
    port = free_port()
    listen = f"127.0.0.1:{port}"
    log = workdir / f"{name}-{port}.log"
    root_token = secrets.token_urlsafe(24)
    tenantvault = [program("tenantvault"), "serve", "--listen", listen]
    if not access_log:
        tenantvault.append("--no-access-log")
    if name.endswith("-nocache"):
        tenantvault.append(CACHE_OFF_FLAG)
    if name.endswith("-asyncio"):
        tenantvault += ["--event-loop", "asyncio"]
    token_file = workdir / f"{name}-root-token"
    own_upstream: Server | None = None
    env = _env()
    if name.startswith("tenantvault-dev"):
        command = [*tenantvault, "--dev"]
        if name == "tenantvault-dev-noaudit":
            command.append("--no-audit-store")
        elif name == "tenantvault-dev-auditfile":
            command += ["--audit-file", str(workdir / "audit.log")]
        elif name == "tenantvault-dev-noobs":
            command.append("--no-observability")
        env["TENANTVAULT_DEV_ROOT_TOKEN"] = root_token
    elif name.startswith(SQLITE):
        store = data_dir or workdir / f"{name}-data"
        command = [*tenantvault, "--data-dir", str(store)]
        if not token_file.exists():
            command += ["--root-token-file", str(token_file)]
    elif name == GATEWAY:
        if upstream is None:
            # A gateway started alone (bench/ab.py, bench/profile.py) fronts an OpenBao of
            # its own: two gateways on one upstream root with different master keys could
            # not share its records.
            upstream = own_upstream = start(BASELINE, workdir)
        command = [*tenantvault, *_gateway_flags(workdir, upstream)]
    elif is_openbao(name):
        command = [program("bao"), "server", "-dev", "-dev-no-store-token"]
        command += [f"-dev-listen-address={listen}", "-log-level=warn"]
        if name == AUDITED_BASELINE:
            # OpenBao 2 enables audit devices only from its configuration, not by API.
            config = workdir / f"{name}-{port}.hcl"
            audit_log = json.dumps(str(workdir / f"{name}-{port}-audit.log"))
            stanza = f"options {{ file_path = {audit_log} }}"
            config.write_text(f'audit "file" "file" {{\n  {stanza}\n}}\n')
            command.append(f"-config={config}")
        env["BAO_DEV_ROOT_TOKEN_ID"] = root_token
    else:
        raise SystemExit(f"error: unknown server {name}")
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env
        )
    server = Server(name, f"http://{listen}", root_token, process, log, own_upstream=own_upstream)
    if wait:
        wait_ready(server)
    if name.startswith(SQLITE):
        if token_file.exists():  # written on the first start of this store only
            server.root_token = token_file.read_text().strip()
    elif name == GATEWAY:
        server.root_token = (workdir / "gateway-root-token").read_text().strip()
    return server


def stop(server: Server) -> None:
    """SIGTERM, then SIGKILL if it has not exited in time."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=STARTUP_SECONDS)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    if server.own_upstream is not None:
        stop(server.own_upstream)


@contextlib.contextmanager
def running(names: list[str], workdir: Path, *, access_log: bool) -> Iterator[list[Server]]:
    """Start `names` side by side (OpenBao first: the gateway's upstream); stop them after."""
    started: dict[str, Server] = {}
    try:
        for name in sorted(names, key=lambda name: name != BASELINE):
            upstream = started.get(BASELINE) if name == GATEWAY else None
            started[name] = start(name, workdir, access_log=access_log, upstream=upstream)
        yield [started[name] for name in names]
    finally:
        for server in started.values():
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        for server in started.values():
            stop(server)


def log_problems(server: Server) -> dict[str, int]:
    """Tracebacks and ERROR lines in a tenantvault log (OpenBao's is not ours to judge)."""
    text = server.log.read_text(errors="replace")
    return {"tracebacks": text.count("Traceback"), "error_lines": text.count(" ERROR ")}
