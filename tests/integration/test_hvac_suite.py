"""hvac's own integration suite, run unchanged against OpenBao and tenantvault side by side.

The hvac sdist on PyPI ships its `tests/`; this test downloads it once (pip, into `.cache/`),
runs the chosen modules twice — against `bao server -dev` and `tenantvault serve --dev`, each
test class with a fresh dev server (`tests/hvac_suite/hvac_target_plugin.py` is the only code
of ours involved) — and compares: every test that passes on OpenBao must pass on tenantvault,
apart from the deliberate differences listed with their reasons in
`tests/hvac_suite/differences.toml`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tomllib
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration._support import bao_executable, tenantvault_executable

HVAC_VERSION = "2.4.0"
_ROOT = Path(__file__).resolve().parents[2]
_CACHE = _ROOT / ".cache"
_PLUGIN_DIR = _ROOT / "tests" / "hvac_suite"
# The parts of hvac's suite for what tenantvault serves: auth methods it has (approle,
# token), wrapping, policies, kv v1 and v2, mounts, sys/auth, transit, the seal (init, seal,
# key status), and the v1 suite.
MODULES = (
    "tests/integration_tests/api/auth_methods/test_approle.py",
    "tests/integration_tests/api/auth_methods/test_token.py",
    "tests/integration_tests/api/secrets_engines/test_kv_v1.py",
    "tests/integration_tests/api/secrets_engines/test_kv_v2.py",
    "tests/integration_tests/api/secrets_engines/test_transit.py",
    "tests/integration_tests/api/system_backend/test_auth.py",
    # The seal modules run on non-dev servers that start sealed (the plugin's non-dev mode).
    "tests/integration_tests/api/system_backend/test_init.py",
    "tests/integration_tests/api/system_backend/test_key.py",
    "tests/integration_tests/api/system_backend/test_seal.py",
    "tests/integration_tests/api/system_backend/test_mount.py",
    "tests/integration_tests/api/system_backend/test_policies.py",
    "tests/integration_tests/api/system_backend/test_policy.py",
    "tests/integration_tests/api/system_backend/test_wrapping.py",
    "tests/integration_tests/v1/test_approle.py",
    "tests/integration_tests/v1/test_integration.py",
)
# A run in which OpenBao passes fewer tests than this went wrong (not a compatibility claim).
_MIN_BAO_PASSES = 150


def _sdist() -> Path:
    """hvac's unpacked sdist, downloaded on first use."""
    unpacked = _CACHE / f"hvac-{HVAC_VERSION}"
    if (unpacked / "tests" / "integration_tests").is_dir():
        return unpacked
    _CACHE.mkdir(exist_ok=True)
    download = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:"),
            *("--no-deps", f"hvac=={HVAC_VERSION}", "-d", str(_CACHE)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    archive = _CACHE / f"hvac-{HVAC_VERSION}.tar.gz"
    if download.returncode != 0 or not archive.is_file():
        message = f"could not download the hvac {HVAC_VERSION} sdist: {download.stderr[-500:]}"
        # Never a skip: the compatibility claim rests on this suite.
        pytest.fail(message)
    with tarfile.open(archive) as tar:
        tar.extractall(_CACHE, filter="data")
    return unpacked


def _run(sdist: Path, target: str, report: Path) -> dict[str, str]:
    """Run hvac's chosen modules against `target`; each test's outcome by its id."""
    env = {
        **os.environ,
        "HVAC_SUITE_TARGET": target,
        "HVAC_SUITE_BAO": str(bao_executable()),
        "HVAC_SUITE_TENANTVAULT": " ".join(tenantvault_executable()),
        "PYTHONPATH": str(_PLUGIN_DIR),
    }
    env.pop("TENANTVAULT_REQUIRE_ALL", None)
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "hvac_target_plugin", "-p", "no:asyncio"),
            *("-p", "no:cacheprovider", "-p", "no:cov", "-o", "addopts=", "-q"),
            *("--rootdir", str(sdist), f"--junitxml={report}", *MODULES),
        ],
        cwd=sdist,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if not report.is_file():
        pytest.fail(f"hvac's suite did not run against {target}: {completed.stdout[-2000:]}")
    return _outcomes(report)


def _outcomes(report: Path) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).iter("testcase"):  # noqa: S314 -- our own pytest's report
        test_id = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        outcomes[test_id] = outcome
    return outcomes


def _documented() -> dict[str, str]:
    with (_PLUGIN_DIR / "differences.toml").open("rb") as file:
        differences: dict[str, str] = tomllib.load(file)["differences"]
    return differences


@pytest.mark.timeout(1200)
def test_hvac_suite_passes_on_tenantvault_wherever_it_passes_on_openbao(tmp_path: Path) -> None:
    sdist = _sdist()
    with ThreadPoolExecutor(max_workers=2) as pool:
        bao_run = pool.submit(_run, sdist, "bao", tmp_path / "bao.xml")
        ours_run = pool.submit(_run, sdist, "tenantvault", tmp_path / "tenantvault.xml")
        on_bao, ours = bao_run.result(), ours_run.result()
    passed_on_bao = {test for test, outcome in on_bao.items() if outcome == "passed"}
    assert len(passed_on_bao) >= _MIN_BAO_PASSES, f"OpenBao passed only {len(passed_on_bao)}"
    documented = _documented()
    regressions = sorted(
        test for test in passed_on_bao if ours.get(test) != "passed" and test not in documented
    )
    stale = sorted(test for test in documented if ours.get(test) == "passed")
    unknown = sorted(test for test in documented if test not in on_bao)
    assert not regressions, f"pass on OpenBao, fail on tenantvault: {regressions}"
    assert not stale, f"listed as differences but pass on tenantvault now: {stale}"
    assert not unknown, f"listed as differences but not in hvac's suite: {unknown}"
