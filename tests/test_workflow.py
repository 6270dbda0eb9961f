"""The public workflow: tests with the README's command, and every image this repository builds published."""

import re

import yaml

from tests.conftest import REPO, tracked_files

WORKFLOW = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())


def test_the_test_job_runs_the_readme_command():
    steps = WORKFLOW["jobs"]["test"]["steps"]
    assert any(step.get("run", "").startswith("scripts/test.sh") for step in steps)
    assert "scripts/test.sh" in (REPO / "README.md").read_text()


def test_every_dockerfile_and_target_is_published_after_the_tests():
    publish = WORKFLOW["jobs"]["publish"]
    assert {"test", "tfserving", "kubernetes"} <= set(publish["needs"])
    assert publish["if"].startswith("startsWith(github.ref, 'refs/tags/")
    matrix = publish["strategy"]["matrix"]["include"]
    assert {entry["dockerfile"] for entry in matrix} == set(tracked_files("*Dockerfile"))
    for entry in matrix:
        stages = re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", (REPO / entry["dockerfile"]).read_text())
        assert entry["target"] == "" or entry["target"] in stages, entry
    build = next(step for step in publish["steps"] if str(step.get("uses", "")).startswith("docker/build-push-action"))
    assert build["with"]["tags"].endswith(":${{ github.ref_name }}")  # the release tag, never :latest
