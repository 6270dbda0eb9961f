"""Debian's promtool and prometheus binaries: `bash .ci/run` installs them (package `prometheus`)."""

from __future__ import annotations

import os
import shutil

import pytest


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is absent: `apt-get install prometheus` (bash .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def promtool_path() -> str:
    return _binary("promtool")


def prometheus_path() -> str:
    return _binary("prometheus")
