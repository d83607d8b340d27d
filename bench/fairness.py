"""Issue 16, acceptance 4: tenant A floods at 10x its in-flight bound; tenant B's p99 stays?

    .venv/bin/python bench/fairness.py --duration 15    # bound 32, A at 320 connections
    .venv/bin/python bench/fairness.py --duration 15 --running 0 --control

One `tenantvault serve --dev` (audit store on, defaults otherwise) with
`--max-inflight-per-tenant P` and `--max-running` (`--running`, 2; 0: no run limit, the
server's default); two tenants, `flood` and `victim`, each with a reader token of
its own (tenant tokens, never root). Each phase's load runs in processes of its own
(bench/loadgen.py):

1. **unloaded**: B alone, open loop at `--victim-rate` reads/s over a few connections;
   latency is timed from each request's intended send time (queueing counts);
2. **flood**: the same B load while A runs closed loop over `factor x P` connections
   (each sends its next read the moment the previous answer, 200 or 429, arrived);
3. `--control`: phase 2 again on a server without bounds (`--max-inflight 0
   --max-inflight-per-tenant 0`), to show what admission buys.

Prints B's p99 in each phase, the ratio flood/unloaded (the acceptance: <= 2), B's
non-2xx count (must be 0), A's answers by status (429s expected), and the server's CPU use;
the whole result as one JSON line at the end. Admission bounds concurrency, not CPU: A's
refused requests still cost the server their 429 and its audit entry, on the same 2 cores
as B's requests and both load generators, which is what the ratio shows.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "loadgen.py"
SECRET_PATH = "app/db"
POLICY = 'path "secret/data/app/*" { capabilities = ["read"] }\n'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """One `tenantvault serve --dev` process and a setup client for it."""

    def __init__(
        self, workdir: Path, *, per_tenant: int, overall: int, running: int, access_log: bool
    ) -> None:
        self.port = _free_port()
        self.root_token = secrets.token_urlsafe(24)
        program = shutil.which("tenantvault", path=str(Path(sys.executable).parent))
        if program is None:
            raise SystemExit("error: `tenantvault` is not installed next to this Python")
        command = [program, "serve", "--dev", "--listen", f"127.0.0.1:{self.port}"]
        command += ["--max-inflight-per-tenant", str(per_tenant), "--max-inflight", str(overall)]
        command += ["--max-running", str(running)]
        if not access_log:
            command.append("--no-access-log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTVAULT_")}
        env["TENANTVAULT_DEV_ROOT_TOKEN"] = self.root_token  # never on a command line
        self.log = workdir / f"server-{self.port}.log"
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if self.call("GET", "sys/health")[0] == 200:
                    break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"error: the server did not start; its log: {self.log}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        namespace: str | None = None,
        token: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One setup request (root token unless another is given): (status, JSON body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"X-Vault-Token": token or self.root_token, "Content-Type": "application/json"}
        if namespace is not None:
            headers["X-Vault-Namespace"] = namespace
        try:
            connection.request(
                method, f"/v1/{path}", body=json.dumps(body) if body else None, headers=headers
            )
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        return response.status, (json.loads(text) if text else {})

    def must(self, method: str, path: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
        status, answer = self.call(method, path, body, **kw)
        if status >= 300:
            raise SystemExit(f"error: {method} {path}: {status} {answer}")
        return answer

    def tenant_token(self, tenant: str) -> str:
        """Create `tenant`, its secret and a reader token of it."""
        self.must("POST", f"sys/namespaces/{tenant}")
        self.must("POST", f"secret/data/{SECRET_PATH}", {"data": {"k": "v"}}, namespace=tenant)
        self.must("PUT", "sys/policies/acl/reader", {"policy": POLICY}, namespace=tenant)
        created = self.must(
            "POST", "auth/token/create", {"policies": ["reader"], "ttl": "2h"}, namespace=tenant
        )
        token: str = created["auth"]["client_token"]
        # One read served: the server learns the tenant's token space (server/_admission.py).
        self.must("GET", f"secret/data/{SECRET_PATH}", token=token)
        return token

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def _running(workdir: Path, **options: Any) -> Iterator[Server]:
    server = Server(workdir, **options)
    try:
        yield server
    finally:
        server.stop()


def _requests_file(workdir: Path, name: str, token: str) -> Path:
    """A loadgen request file (0600: it holds the token) of one tenant-token read."""
    request = (
        f"GET /v1/secret/data/{SECRET_PATH} HTTP/1.1\r\nHost: bench\r\n"
        f"X-Vault-Token: {token}\r\n\r\n"
    ).encode()
    path = workdir / f"{name}.requests"
    path.touch(mode=0o600)
    path.write_bytes(request)
    return path


def _loadgen(
    url: str, requests: Path, *, rate: float, connections: int, duration: float, processes: int
) -> dict[str, Any]:
    """Run bench/loadgen.py in processes of its own; its one-line JSON summary."""
    command = [sys.executable, str(LOADGEN), "--url", url, "--requests", str(requests)]
    command += ["--rate", str(rate), "--connections", str(connections)]
    command += ["--duration", str(duration), "--processes", str(processes), "--drain", "10"]
    done = subprocess.run(command, capture_output=True, check=False, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: loadgen failed: {done.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def _phase(
    server: Server, victim: Path, flood: Path | None, args: argparse.Namespace
) -> dict[str, Any]:
    """B's open-loop load for `duration`, with A's closed-loop flood around it if `flood`."""
    result: dict[str, Any] = {}
    flooder: threading.Thread | None = None
    if flood is not None:
        connections = args.factor * args.per_tenant

        def run_flood() -> None:
            # A starts first and stops last: B's whole window is under the flood.
            result["flood"] = _loadgen(
                server.url,
                flood,
                rate=0,
                connections=connections,
                duration=args.duration + 2 * args.settle,
                processes=args.flood_processes,
            )

        flooder = threading.Thread(target=run_flood)
        flooder.start()
        time.sleep(args.settle)
    cpu = server.cpu_seconds()
    result["victim"] = _loadgen(
        server.url,
        victim,
        rate=args.victim_rate,
        connections=args.victim_connections,
        duration=args.duration,
        processes=1,
    )
    result["server_cpu_s"] = round(server.cpu_seconds() - cpu, 2)
    if flooder is not None:
        flooder.join()
    return result


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--per-tenant", type=int, default=32, help="the in-flight bound P")
    parser.add_argument("--overall", type=int, default=4096, help="the server's bound")
    parser.add_argument("--running", type=int, default=2, help="--max-running (0: off)")
    parser.add_argument("--factor", type=int, default=10, help="A's connections: factor x P")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of B's load")
    parser.add_argument("--settle", type=float, default=2.0, help="flood lead-in seconds")
    parser.add_argument("--victim-rate", type=float, default=100.0, help="B's reads/s")
    parser.add_argument("--victim-connections", type=int, default=4)
    parser.add_argument("--flood-processes", type=int, default=1)
    parser.add_argument("--access-log", action="store_true", help="keep the access log on")
    parser.add_argument("--control", action="store_true", help="also flood a server without bounds")
    return parser.parse_args(argv)


def _line(label: str, phase: dict[str, Any]) -> str:
    victim = phase["victim"]
    text = (
        f"{label:<28} B p50 {victim['p50_ms']:>8.2f} ms  p99 {victim['p99_ms']:>8.2f} ms  "
        f"B ok {victim['ok']}/{victim['scheduled']}  B non-2xx {victim['non_2xx']}  "
        f"server CPU {phase['server_cpu_s']:.1f} s"
    )
    if "flood" in phase:
        flood = phase["flood"]
        text += f"\n{'':<28} A answers {flood['statuses'] or {}} (2xx {flood['ok']})"
    return text


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    report: dict[str, Any] = {"settings": vars(args)}
    with tempfile.TemporaryDirectory(prefix="tv-fairness-") as tmp:
        workdir = Path(tmp)
        options = {
            "per_tenant": args.per_tenant,
            "overall": args.overall,
            "running": args.running,
            "access_log": args.access_log,
        }
        with _running(workdir, **options) as server:
            victim = _requests_file(workdir, "victim", server.tenant_token("victim"))
            flood = _requests_file(workdir, "flood", server.tenant_token("flood"))
            _phase(server, victim, None, argparse.Namespace(**{**vars(args), "duration": 2.0}))
            report["unloaded"] = _phase(server, victim, None, args)
            report["flood"] = _phase(server, victim, flood, args)
        if args.control:
            options.update(per_tenant=0, overall=0, running=0)
            with _running(workdir, **options) as server:
                victim = _requests_file(workdir, "victim", server.tenant_token("victim"))
                flood = _requests_file(workdir, "flood", server.tenant_token("flood"))
                report["control"] = _phase(server, victim, flood, args)
    unloaded = report["unloaded"]["victim"]["p99_ms"]
    flooded = report["flood"]["victim"]["p99_ms"]
    report["p99_ratio"] = round(flooded / unloaded, 2) if unloaded else None
    print(
        f"bound P={args.per_tenant}, A at {args.factor * args.per_tenant} connections (closed "
        f"loop), B open loop at {args.victim_rate:g}/s for {args.duration:g} s"
    )
    print(_line("unloaded (B alone)", report["unloaded"]))
    print(_line("A flooding, admission on", report["flood"]))
    if "control" in report:
        print(_line("A flooding, no bounds", report["control"]))
        control = report["control"]["victim"]["p99_ms"]
        report["control_p99_ratio"] = round(control / unloaded, 2) if unloaded else None
        print(f"control ratio (no bounds): {report['control_p99_ratio']}")
    print(f"B p99 ratio flood/unloaded: {report['p99_ratio']} (acceptance: <= 2)")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
