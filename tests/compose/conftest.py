"""The real compose stack on a Docker engine (pytest-docker): the default compose.yaml, exactly as
a user's first `docker compose up --build` runs it on a host without a GPU, with random weights.

Ports are published on 127.0.0.1 only. Without an engine and Compose v2 the tests skip, saying
so; .ci/run starts one. (compose.gpu.yaml needs tensorflow/serving and a GPU: its configuration is
checked, not run.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import requests

from tests.conftest import REPO

COMPOSE_FILES = [str(REPO / "compose.yaml")]
PROJECT = "classifier-test"
# The workflow's compose job loads the images its build job made (ImageNet weights) and sets
# COMPOSE_IMAGES_PREBUILT=1: the stack then starts those images instead of building random-weight ones.
PREBUILT = os.environ.get("COMPOSE_IMAGES_PREBUILT") == "1"
ENV = {
    "GATEWAY_PUBLISH": "127.0.0.1:",
    "EDGE_PUBLISH": "127.0.0.1:",
    "PATH": "/usr/bin:" + os.environ.get("PATH", ""),
    **({} if PREBUILT else {"WEIGHTS": "random"}),
}
BUILD = "--no-build" if PREBUILT else "--build"


def compose(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    command = ["docker", "compose", "-p", PROJECT, *[a for f in COMPOSE_FILES for a in ("-f", f)], *args]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **ENV}
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {result.stderr[-3000:]}")
    return result


def compose_cli_or_skip() -> None:
    if shutil.which("docker", path=ENV["PATH"]) is None:
        pytest.skip("no docker CLI on this machine (install Docker with Compose v2; .ci/run does)")
    if subprocess.run(["docker", "compose", "version"], capture_output=True, env={**os.environ, **ENV}).returncode:
        pytest.skip("docker has no Compose v2 plugin (.ci/run installs it with ../shared/docker/engine-up.sh)")


@pytest.fixture(scope="session")
def engine() -> None:
    compose_cli_or_skip()
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30, env={**os.environ, **ENV}).returncode:
        pytest.skip("no Docker engine answers (start one with ../shared/docker/engine-up.sh)")


# pytest-docker's fixtures, pointed at our files, project and commands.
@pytest.fixture(scope="session")
def docker_compose_file(engine) -> list[str]:
    """Resolved before pytest-docker runs compose: skip without an engine, export our variables."""
    saved = {key: os.environ.get(key) for key in ENV}
    os.environ.update(ENV)
    yield COMPOSE_FILES
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return PROJECT


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    return [f"up {BUILD} --wait --wait-timeout 900 -d"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["--profile edge down -v --remove-orphans"]


@pytest.fixture(scope="session")
def stack(docker_services) -> str:
    port = docker_services.port_for("gateway", 8080)
    url = f"http://127.0.0.1:{port}"
    docker_services.wait_until_responsive(lambda: _ready(url), timeout=120, pause=1)
    return url


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} not reached in {timeout} s (last: {last})")
