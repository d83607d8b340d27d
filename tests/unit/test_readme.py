"""The README's Python example runs as printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "the README has no Python example"
    result = subprocess.run(
        [sys.executable, "-c", blocks[0]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "denied, as it should be" in result.stdout


def test_the_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.splitlines() if line.strip()]
    assert commands == ["./scripts/serve", "./scripts/test"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "./scripts/test" in ci


def test_every_test_the_security_claims_name_exists() -> None:
    """The README's table of security claims names the tests behind each claim: each must
    exist, so the table cannot quietly point at a test that was renamed or removed."""
    text = README.read_text()
    section = text.split("## Security claims, and the tests behind them", 1)[1].split("\n## ", 1)[0]
    references = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", section)
    assert len(references) >= 30, "the table lost its test references"
    root = README.parent
    for path, name in references:
        source = (root / path).read_text()
        if name:
            defined = re.search(rf"^\s*(?:async def|def|class) {name}\b|^{name} = ", source, re.M)
            assert defined, f"{path}::{name} is named in the README but does not exist"
