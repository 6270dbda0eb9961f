"""The public workflow, read as GitHub reads it: what runs, with which rights, and what it publishes.

actionlint (tests/test_lint.py) checks syntax, expressions, action inputs and runtimes; these tests
check what actionlint cannot: that the jobs run what the README and .ci/run run, that every image
the repository can build is built and published, and that nothing publishes from a pull request.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, TORCH_VERSION, tracked_files
from tools.browser import BROWSER_VARIABLE, DRIVER_VARIABLE

WORKFLOW = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
JOBS: dict[str, dict] = WORKFLOW["jobs"]
DEPENDABOT = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
README = (REPO / "README.md").read_text()
CI_RUN = (REPO / ".ci" / "run").read_text()
BROWSER_PACKAGES = {"chromium", "chromium-driver"}  # Debian's; a runner has Google Chrome (tools/browser.py)
# Commands a job runs that users run too: each must be typed in the README exactly as the job runs it.
SHARED_COMMANDS = (
    "scripts/test.sh",
    "scripts/lint.sh",
    ".venv/bin/python -m models.export",
    ".venv/bin/python -m tools.kompose_export",
    "bash k8s/e2e.sh",
    ".venv/bin/python -m tools.check_real_weights",
)


def on_events() -> dict:
    return WORKFLOW.get("on", WORKFLOW.get(True))  # YAML 1.1 reads a bare `on` key as True


def run_lines(job: dict) -> list[str]:
    """Every command line of a job's run steps (folded `>-` steps are one line already)."""
    return [line.strip() for step in job["steps"] if "run" in step for line in step["run"].splitlines() if line.strip()]


def readme_commands() -> set[str]:
    """The lines of the README's bash blocks, without their comments."""
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    lines = (re.sub(r"\s#.*$", "", line).strip() for block in blocks for line in block.splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def steps_using(job: dict, action: str) -> list[dict]:
    return [step for step in job["steps"] if str(step.get("uses", "")).split("@")[0] == action]


def test_the_workflow_runs_on_pushes_tags_and_pull_requests_and_cancels_superseded_branch_runs():
    events = on_events()
    assert events["push"] == {"branches": ["main"], "tags": ["v*"]} and "pull_request" in events
    concurrency = WORKFLOW["concurrency"]
    assert "github.ref" in concurrency["group"]
    assert "refs/heads/main" in concurrency["cancel-in-progress"] and "refs/tags/" in concurrency["cancel-in-progress"]


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_job_is_bounded_and_holds_only_the_rights_it_uses(name):
    job = JOBS[name]
    assert WORKFLOW["permissions"] == {}, "workflow-level permissions must grant nothing"
    assert 0 < job["timeout-minutes"] <= 120, name
    writes = {scope for scope, level in job["permissions"].items() if level == "write"}
    assert job["permissions"].get("contents") == "read", name
    if name == "publish":
        assert writes == {"packages", "id-token", "attestations"}
    else:
        assert not writes, f"{name} needs no write permission"
    for step in steps_using(job, "actions/checkout"):
        assert step["with"]["persist-credentials"] is False, name
    for step in steps_using(job, "actions/setup-python"):
        assert step["with"]["cache"] == "pip" and step["with"]["cache-dependency-path"] == "Pipfile.lock", name


def pushes(job: dict) -> list[str]:
    """The steps of a job that write to a registry or log in to one."""
    found = []
    for step in job["steps"]:
        action, settings = str(step.get("uses", "")).split("@")[0], step.get("with", {})
        if action in ("docker/build-push-action", "docker/bake-action") and settings.get("push") not in (None, False):
            found.append(action)
        if action == "docker/login-action" or settings.get("push-to-registry"):
            found.append(action)
    return found


@pytest.mark.parametrize("name", sorted(JOBS))
def test_nothing_publishes_on_a_pull_request(name):
    job = JOBS[name]
    if pushes(job):
        assert "github.event_name == 'push'" in job["if"], f"{name} pushes: it must run on pushes only"
        assert "pull_request" not in job["if"]


def test_publishing_waits_for_every_other_job():
    assert set(JOBS["publish"]["needs"]) == set(JOBS) - {"publish"}
    assert pushes(JOBS["publish"]), "the publish job pushes"
    assert [name for name in JOBS if pushes(JOBS[name])] == ["publish"]


def final_targets(dockerfile: str) -> list[str]:
    """The stages of a Dockerfile no other stage builds on ("" for an unnamed last stage)."""
    text = (REPO / dockerfile).read_text()
    stages = re.findall(r"(?im)^FROM\s+(?:--platform=\S+\s+)?\S+(?:\s+AS\s+(\S+))?\s*$", text)
    used = set(re.findall(r"(?im)--from=(\S+)", text)) | set(
        re.findall(r"(?im)^FROM\s+(?:--platform=\S+\s+)?(\S+)", text)
    )
    return [stage for stage in stages if stage not in used]


def expected_images() -> list[dict]:
    images = []
    for dockerfile in tracked_files("*Dockerfile"):
        # A named target names its image; a Dockerfile with one unnamed image, its folder.
        folder = Path(dockerfile).parent.name
        for target in final_targets(dockerfile):
            base = (
                re.search(rf"(?im)^FROM\s+(\S+)\s+AS\s+{re.escape(target)}\s*$", (REPO / dockerfile).read_text())
                if target
                else None
            )
            tfserving = base is not None and "TFSERVING" in base.group(1)
            images.append(
                {
                    "name": target or folder,
                    "dockerfile": dockerfile,
                    "target": target,
                    "platforms": "linux/amd64" if tfserving else "linux/amd64,linux/arm64",
                }
            )
    return sorted(images, key=lambda image: image["name"])


@pytest.mark.parametrize("job", ["images", "publish"])
def test_every_dockerfile_target_is_built_and_published(job):
    matrix = sorted(JOBS[job]["strategy"]["matrix"]["include"], key=lambda image: image["name"])
    assert matrix == expected_images()


def test_the_scan_of_dockerfiles_finds_the_targets_it_must():
    # The matrix test above is only as good as this reading of the Dockerfiles.
    assert final_targets("Dockerfile") == ["gateway", "certs", "fallback", "primary-litert", "primary-tfserving"]
    assert final_targets("ingress/edge/Dockerfile") == [""]


def test_images_are_built_on_every_push_and_pull_request_and_pushed_nowhere():
    job = JOBS["images"]
    assert "if" not in job
    builds = steps_using(job, "docker/build-push-action")
    assert builds and all(step["with"].get("push", False) is False for step in builds)
    multi = builds[0]["with"]
    assert multi["platforms"] == "${{ matrix.platforms }}" and "type=gha" in multi["cache-to"]
    scan = next(line for line in run_lines(job) if line.startswith("trivy image"))
    assert {"--exit-code", "1", "--severity", "CRITICAL", "--ignore-unfixed"} <= set(shlex.split(scan))


def test_publish_tags_are_semver_sha_and_main_with_oci_labels_and_never_latest():
    job = JOBS["publish"]
    meta = steps_using(job, "docker/metadata-action")[0]["with"]
    assert meta["flavor"] == "latest=false"
    assert set(meta["tags"].split()) == {"type=semver,pattern={{version}}", "type=ref,event=branch", "type=sha"}
    build = steps_using(job, "docker/build-push-action")[0]["with"]
    assert build["tags"] == "${{ steps.meta.outputs.tags }}" and build["labels"] == "${{ steps.meta.outputs.labels }}"
    assert build["sbom"] is True and build["provenance"] == "mode=max"
    assert ":latest" not in (REPO / ".github" / "workflows" / "ci.yml").read_text()


@pytest.mark.parametrize(
    ("owner", "dockerhub", "expected"),
    [
        ("Example-Org", "", "ghcr=ghcr.io/example-org/classifier-gateway\n"),
        (
            "Example-Org",
            "SomeOne",
            "ghcr=ghcr.io/example-org/classifier-gateway\ndockerhub=docker.io/someone/classifier-gateway\n",
        ),
    ],
)
def test_image_names_are_lower_case_and_docker_hub_only_with_its_secret(tmp_path, owner, dockerhub, expected):
    step = next(step for step in JOBS["publish"]["steps"] if step.get("id") == "names")
    output = tmp_path / "output"
    env = {
        "PATH": "/usr/bin:/bin",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_REPOSITORY_OWNER": owner,
        "DOCKERHUB_USERNAME": dockerhub,
        "NAME": "classifier-gateway",
    }
    subprocess.run(["bash", "-e", "-c", step["run"]], env=env, check=True, timeout=10)
    assert output.read_text() == expected


def test_jobs_run_the_readme_commands_where_users_run_the_same():
    documented = readme_commands()
    shared = [(name, line) for name, job in JOBS.items() for line in run_lines(job) if line.startswith(SHARED_COMMANDS)]
    assert {line.split()[0] for _, line in shared} >= {"scripts/test.sh", "scripts/lint.sh", ".venv/bin/python", "bash"}
    for name, line in shared:
        assert line in documented, f"job {name} runs `{line}`, which the README does not show"


def apt_installs(job: dict) -> set[str]:
    found: set[str] = set()
    for line in run_lines(job):
        if "apt-get install" in line:
            found |= {word for word in shlex.split(line.split("apt-get install", 1)[1]) if not word.startswith("-")}
    return found


def test_jobs_install_the_debian_packages_ci_run_installs_but_the_browser():
    ci_run_packages = set(re.findall(r"missing\+=\((\S+)\)", CI_RUN))
    assert ci_run_packages >= BROWSER_PACKAGES
    for name in ("lint", "test"):
        assert apt_installs(JOBS[name]) == ci_run_packages - BROWSER_PACKAGES, name


def test_no_job_installs_ubuntus_chromium_which_is_a_snap_stub():
    stubs = BROWSER_PACKAGES | {"chromium-browser", "chromium-chromedriver"}
    assert all(not apt_installs(job) & stubs for job in JOBS.values())


@pytest.mark.parametrize("name", ["test", "observability"])  # the web page tests; the dashboard screenshot
def test_jobs_with_a_browser_hand_tools_browser_the_runners_chrome_and_its_driver(name, tmp_path):
    [step] = [step for step in JOBS[name]["steps"] if "CHROMEWEBDRIVER" in step.get("run", "")]
    for program in ("google-chrome", "chromedriver"):
        (tmp_path / program).write_text(f"#!/bin/sh\necho {program} 1.0\n")
        (tmp_path / program).chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "CHROMEWEBDRIVER": str(tmp_path), "GITHUB_ENV": str(tmp_path / "env")}
    script = ["bash", "-e", "-c", step["run"]]
    assert subprocess.run(script, env=env, capture_output=True, timeout=10).returncode != 0, "no CHROME_BIN: fails"
    env[BROWSER_VARIABLE] = str(tmp_path / "google-chrome")
    subprocess.run(script, env=env, check=True, timeout=10)
    assert (tmp_path / "env").read_text() == f"{DRIVER_VARIABLE}={tmp_path / 'chromedriver'}\n"


def test_the_test_jobs_together_run_the_suite_ci_run_runs():
    assert re.search(r"^exec bash scripts/test\.sh$", CI_RUN, flags=re.M), ".ci/run runs the whole suite"
    test_args = shlex.split(next(line for line in run_lines(JOBS["test"]) if line.startswith("scripts/test.sh")))
    compose_args = shlex.split(next(line for line in run_lines(JOBS["compose"]) if line.startswith("scripts/test.sh")))
    excluded = [arg.split("=", 1)[1] for arg in test_args if arg.startswith("--ignore=")]
    selected = [arg for arg in compose_args[1:] if not arg.startswith("-")]
    assert excluded == selected == ["tests/compose"]


def test_pinned_versions_agree_with_the_code_that_uses_them():
    env = WORKFLOW["env"]
    python = tomllib.loads((REPO / "Pipfile").read_text())["requires"]["python_version"]
    assert env["PYTHON_VERSION"] == python
    torch = next(line for line in run_lines(JOBS["test"]) if "torch==" in line)
    assert f"torch=={TORCH_VERSION}" in torch
    kompose = re.search(r'KOMPOSE_VERSION = "(\S+)"', (REPO / "tools" / "kompose_export.py").read_text()).group(1)
    assert env["KOMPOSE_VERSION"] == f"v{kompose}"
    gpu_base = re.search(r"(?m)^ARG TFSERVING_BASE=(\S+)$", (REPO / "Dockerfile").read_text()).group(1)
    assert gpu_base.endswith("-gpu") and env["TFSERVING_CPU_BASE"] == gpu_base.removesuffix("-gpu")
    for tool in ("KIND", "KUBECTL", "KOMPOSE", "TRIVY"):
        assert re.fullmatch(r"[0-9a-f]{64}", env[f"{tool}_SHA256"]), tool


def test_every_binary_is_installed_against_its_checksum():
    downloads = [line for job in JOBS.values() for line in run_lines(job) if "curl" in line or "wget" in line]
    assert not downloads, f"download through scripts/install_checked.sh instead: {downloads}"
    installs = [
        step["run"]
        for job in JOBS.values()
        for step in job["steps"]
        if "scripts/install_checked.sh" in step.get("run", "")
    ]
    for tool in ("KIND", "KUBECTL", "KOMPOSE", "TRIVY"):
        assert any(f'"${tool}_SHA256"' in run for run in installs), tool


def test_the_kompose_job_fails_on_new_untracked_files_too():
    lines = run_lines(JOBS["kompose"])
    assert "changes=$(git status --porcelain -- k8s/base)" in lines
    assert not any(line.startswith("git diff --exit-code") for line in lines)


def test_the_real_weights_checks_the_job_runs_are_valid_commands():
    from tools.check_real_weights import parse_args

    lines = [line for line in run_lines(JOBS["real-weights"]) if "-m tools.check_real_weights" in line]
    assert {shlex.split(line)[3] for line in lines} == {"server", "gateway", "int8"}
    for line in lines:
        parse_args(shlex.split(line)[3:])  # argparse exits on an unknown or missing option


def test_the_real_weights_job_checks_our_tfserving_image_on_the_cpu_base():
    job = JOBS["real-weights"]
    build = next(step for step in steps_using(job, "docker/build-push-action"))["with"]
    assert build["file"] == "Dockerfile" and build["target"] == "primary-tfserving"
    assert "TFSERVING_BASE=${{ env.TFSERVING_CPU_BASE }}" in build["build-args"].splitlines()
    assert "WEIGHTS=imagenet" in build["build-args"].splitlines()
    commands = " ".join(run_lines(job))
    for needed in (
        "check_real_weights server",
        "--prometheus --container primary",
        "check_real_weights gateway",
        "check_real_weights int8",
        "--weights imagenet",
        "pytest -ra tests/tfserving",
    ):
        assert needed in commands, needed
    cache = steps_using(job, "actions/cache")[0]["with"]
    assert "hashFiles('models/export/catalog.py'" in cache["key"]


def test_dependabot_updates_actions_pip_and_every_dockerfile_base():
    updates = {update["package-ecosystem"]: update for update in DEPENDABOT["updates"]}
    assert set(updates) == {"github-actions", "pip", "docker"}
    folders = {str(Path("/") / Path(dockerfile).parent) for dockerfile in tracked_files("*Dockerfile")}
    assert set(updates["docker"]["directories"]) == folders


def test_the_readme_says_what_each_job_proves():
    section = README.split("## Continuous integration", 1)[1].split("\n## ", 1)[0]
    for name in JOBS:
        assert re.search(rf"^\| `{re.escape(name)}` \|", section, flags=re.M), f"README: no row for job {name}"
