"""The README is the user's entry point: its commands must be what CI runs, and its Python examples must run."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def blocks(language: str):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_first_two_commands_are_what_ci_runs():
    install, tests = (block.strip() for block in blocks("bash")[:2])
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert "stablepaint " in install and "pip install" in install, "command 1 must install and run the main job"
    assert "pytest" in tests, "command 2 must run the tests"
    assert install in ci, "README command 1 is not in .ci/run verbatim"
    assert tests in ci, "README command 2 is not in .ci/run verbatim"
    assert ci.index(install) < ci.index(tests)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_examples_run(index):
    code = blocks("python")[index]
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"README python block {index} failed:\n{code}\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), "each README example prints what it shows"
