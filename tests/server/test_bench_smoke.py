"""The bench tools against a real `tenantvault serve --dev`: the open-loop generator counts
every request exactly once, the runner and the tenant-scale bench report sane figures.

Short runs at low rates: these check the tools, never a speed (no timed assertions).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
STARTUP_SECONDS = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TENANTVAULT_")}


def _tenantvault() -> list[str]:
    script = Path(sys.executable).with_name("tenantvault")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tenantvault.cli"]


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """`serve --dev` with its access log in a file: (url, root token, log path)."""
    port = _free_port()
    token = secrets.token_urlsafe(24)
    log = tmp_path / "serve.log"
    command = [*_tenantvault(), "serve", "--dev", "--listen", f"127.0.0.1:{port}"]
    env = _env() | {"TENANTVAULT_DEV_ROOT_TOKEN": token}
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/v1/sys/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield url, token, log
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=STARTUP_SECONDS)


def _run(script: str, *args: str) -> dict[str, Any]:
    finished = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=_env(),
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    document: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return document


def _assert_latencies_ordered(summary: dict[str, Any]) -> None:
    p50, p99, p999, top = (summary[k] for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms"))
    assert 0 < p50 <= p99 <= p999 <= top


def test_open_loop_counts_every_request_once(
    dev_server: tuple[str, str, Path], tmp_path: Path
) -> None:
    """Each scheduled request is sent once and lands in one bucket: the server's access log
    shows exactly as many requests as the generator counts, 2xx and 404 apart."""
    url, token, log = dev_server
    body = {"data": {"password": "bench-smoke"}}
    headers = {"X-Vault-Token": token}
    assert httpx.post(f"{url}/v1/secret/data/smoke/here", json=body, headers=headers).is_success
    requests = [
        f"GET /v1/secret/data/smoke/{name} HTTP/1.1\r\nHost: bench\r\n"
        f"X-Vault-Token: {token}\r\n\r\n".encode()
        for name in ("here", "missing")
    ]
    requests_file = tmp_path / "requests"
    requests_file.write_bytes(b"\0".join(requests))
    summary = _run(
        "loadgen.py",
        *("--url", url, "--requests", str(requests_file), "--rate", "100"),
        *("--connections", "4", "--duration", "1", "--processes", "2"),
    )
    assert summary["mode"] == "open"
    assert summary["scheduled"] == 100
    # Round robin over the two requests in each of the two workers: half of each is missing.
    assert summary["ok"] == 50
    assert summary["statuses"] == {"404": 50}
    assert summary["socket_errors"] == summary["unfinished"] == summary["connect_errors"] == 0
    assert summary["errors"] == 50
    _assert_latencies_ordered(summary)
    text = log.read_text()
    assert len(re.findall(r"GET /v1/secret/data/smoke/here 200", text)) == 50
    assert len(re.findall(r"GET /v1/secret/data/smoke/missing 404", text)) == 50


def test_runner_open_loop_mixed_across_tenants(tmp_path: Path) -> None:
    """bench/run.py --open-loop: the mixed scenario across tenants with their own tokens on
    `serve --dev`, every request answered 2xx, the server's CPU and RSS reported."""
    output = tmp_path / "results.json"
    finished = subprocess.run(
        [
            *(sys.executable, str(BENCH / "run.py"), "--open-loop", "--rate", "100"),
            *("--connections", "4", "--duration", "1", "--servers", "tenantvault-dev"),
            *("--scenarios", "mixed", "--tenants", "3", "--repeats", "1", "--warmup", "0"),
            *("--output", str(output)),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=_env(),
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    document = json.loads(output.read_text())
    [cell] = document["cells"]
    assert (cell["server"], cell["scenario"], cell["connections"]) == (
        "tenantvault-dev",
        "mixed",
        4,
    )
    [run] = cell["runs"]
    summary = run["loadgen"]
    assert summary["scheduled"] == summary["ok"] == 100
    assert summary["errors"] == 0
    _assert_latencies_ordered(summary)
    assert cell["cpu_ms_per_1k"] > 0
    assert cell["peak_rss_mib"] > 0
    assert document["server_logs"]["tenantvault-dev"]["tracebacks"] == 0


def test_scale_bench_small(tmp_path: Path) -> None:
    """bench/scale.py with 20 tenants: all created, both stores serve every read, the restarted
    store answers a tenant token's read, and the store is kept for `--reuse-store`."""
    saved = tmp_path / "saved"
    report = _run(
        "scale.py",
        *("--tenants", "20", "--baseline-tenants", "5", "--load-tenants", "5"),
        *("--connections", "4", "--duration", "0.5", "--repeats", "1", "--warmup", "0"),
        *("--concurrency", "4", "--processes", "1", "--save-store", str(saved)),
    )
    assert sorted(path.name for path in saved.iterdir()) == ["data", "root-token", "tokens.json"]
    assert len(json.loads((saved / "tokens.json").read_text())) == 20
    assert (saved / "tokens.json").stat().st_mode & 0o077 == 0
    assert report["creation"]["tenants"] == 15
    assert report["creation"]["tenants_per_s"] > 0
    for name in ("large", "small"):
        load = report["load"][name]
        assert load["errors"] == 0
        assert load["requests"] == load["answered"] > 0
    assert report["cold_start"]["large"]["status"] == 200
    assert report["cold_start"]["small"]["status"] == 200
    assert report["memory"]["rss_after_kib"] > 0
    assert report["server_logs"] == {
        "large": {"tracebacks": 0, "error_lines": 0},
        "small": {"tracebacks": 0, "error_lines": 0},
    }
