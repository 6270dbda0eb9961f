"""The gates CI runs, through the script CI runs (scripts/lint.sh): ruff and mypy for Python,
hadolint for Dockerfiles, shellcheck for scripts, actionlint (with shellcheck) for the workflow.
Its last linter, manifests, is the tests/k8s suite itself."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

LINT = REPO / "scripts" / "lint.sh"


def lint(*linters: str, root: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(root / "scripts" / "lint.sh"), *linters], cwd=root, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("linter", ["ruff", "mypy", "hadolint", "shellcheck", "actionlint"])
def test_repository_is_clean(linter):
    result = lint(linter)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def workflow_copy(tmp_path):
    """A copy of the lint script and the workflows, using this checkout's .venv, to break on purpose."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(LINT, tmp_path / "scripts" / "lint.sh")
    shutil.copytree(REPO / ".github", tmp_path / ".github")
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=30)  # actionlint lints a git project
    return tmp_path / ".github" / "workflows" / "ci.yml"


@pytest.mark.parametrize(
    ("old", "new", "reported"),
    [
        ("actions/checkout@v7", "actions/checkout@v4", 'runtime "node20" is deprecated'),
        ("run: bash k8s/e2e.sh", "run: bash k8s/e2e.sh $KIND_ARGS", "SC2086"),
    ],
    ids=["node20-action", "shellcheck-in-run"],
)
def test_actionlint_reports_what_it_must(workflow_copy, old, new, reported):
    text = workflow_copy.read_text()
    assert old in text
    workflow_copy.write_text(text.replace(old, new, 1))
    result = lint("actionlint", root=workflow_copy.parent.parent.parent)
    assert result.returncode != 0 and reported in result.stdout, result.stdout + result.stderr
