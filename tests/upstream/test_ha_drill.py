"""Issue 10's HA drill, shortened: `scripts/ha_failover.py --quick` on a real 3-node OpenBao
Raft cluster with two tenantvault instances in front (the full drill is the script itself)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ha_failover.py"


@pytest.mark.timeout(600)
def test_a_raft_leader_kill_and_an_instance_kill_lose_no_acknowledged_write() -> None:
    completed = subprocess.run(
        [sys.executable, str(_SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    report = completed.stdout + completed.stderr[-3000:]
    assert completed.returncode == 0, report
    assert "each read through both instances: 0 lost" in completed.stdout, report
    assert "PASS" in completed.stdout, report
