"""The gates CI relies on: ruff and mypy for Python, hadolint for Dockerfiles,
shellcheck for scripts."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, tracked_files

BIN = Path(sys.executable).parent
DOCKERFILES = tracked_files("*Dockerfile")
SCRIPTS = [".ci/run", *tracked_files("*.sh")]


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_ruff():
    result = run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy():
    """The typed packages (listed in pyproject.toml's [tool.mypy] files) type-check."""
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint(dockerfile):
    result = run(str(BIN / "hadolint"), dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_shellcheck(script):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck); .ci/run installs it")
    result = run("shellcheck", "--severity=style", script)
    assert result.returncode == 0, result.stdout + result.stderr
