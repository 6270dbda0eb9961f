"""A Docker engine and a plain Python image for tests that run a container of their own."""

from __future__ import annotations

import shutil
import subprocess

import pytest

STAND_IN_IMAGE = "python:3.11-slim"  # ../shared/docker builds it here; a GitHub runner pulls it


def docker_engine_or_skip() -> None:
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode:
        pytest.skip("no Docker engine answers (.ci/run starts one with ../shared/docker/engine-up.sh)")
    if (
        subprocess.run(["docker", "image", "inspect", STAND_IN_IMAGE], capture_output=True, timeout=30).returncode
        and subprocess.run(["docker", "pull", STAND_IN_IMAGE], capture_output=True, timeout=300).returncode
    ):
        pytest.skip(
            f"{STAND_IN_IMAGE} is neither on this engine nor pullable (../shared/docker/engine-up.sh builds it)"
        )
