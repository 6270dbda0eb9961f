"""Fake cluster tools for running k8s/minikube.sh and k8s/e2e.sh offline.

Each fake logs its command line and answers from FAKE_* variables; PATH holds only the fakes and
the handful of system tools the scripts use, so a tool missing from the fakes is missing for real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO

SYSTEM_TOOLS = [
    "bash",
    "env",
    "python3",
    "mktemp",
    "cat",
    "rm",
    "sleep",
    "seq",
    "wc",
    "awk",
    "sort",
    "uniq",
    "tr",
    "cut",
    "grep",
    "dirname",
]
FAKES = {
    "minikube": """case "$1" in
  status) exit "${FAKE_MINIKUBE_STATUS:-0}" ;;
  ip) echo 192.168.49.2 ;;
  profile) printf '{"invalid": [], "valid": [{"Name": "minikube", "Config": {"Driver": "%s"%s}}]}\\n' \\
      "${FAKE_DRIVER:-docker}" "${FAKE_PROFILE_SIZE:+, $FAKE_PROFILE_SIZE}" ;;
esac""",
    "kubectl": """case "$*" in
  *capacity.cpu*) echo "${FAKE_CPUS:-4}" ;;
  *capacity.memory*) echo "${FAKE_MEMORY:-8141440Ki}" ;;
esac""",
    "kind": """case "$1 $2" in
  "get clusters") echo "${FAKE_KIND_CLUSTERS:-}" ;;
  "create cluster") exit "${FAKE_KIND_CREATE:-0}" ;;
esac""",
    "docker": "exit 0",
    "uname": 'echo "${FAKE_OS:-Linux}"',
    "curl": """[ -n "${FAKE_CURL_FAIL:-}" ] && exit 7
out=/dev/stdout write=""
while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift;; -w) write=1; shift;; esac; shift; done
body=${FAKE_BODY:-}
[ -n "$body" ] || body='{"model": "wide_resnet50_2", "fallback": false, "fallback_reason": null}'
printf '%s' "$body" > "$out"
[ -z "$write" ] || printf '%s' "${FAKE_STATUS:-200}"
""",
}


@dataclass
class Tools:
    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> list[str]:
        path = self.root / "log"
        return path.read_text().splitlines() if path.exists() else []

    def remove(self, *tools: str) -> None:
        for tool in tools:
            (self.root / "fake" / tool).unlink()

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(REPO / "k8s" / script), *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            env={**self.env, **env},
        )

    def bash(self, code: str) -> subprocess.CompletedProcess:
        """``code`` with k8s/lib.sh sourced, from the repository root."""
        return subprocess.run(
            ["bash", "-c", f"set -euo pipefail; . k8s/lib.sh; {code}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
        )


@pytest.fixture
def tools(tmp_path: Path) -> Tools:
    fake, system = tmp_path / "fake", tmp_path / "system"
    fake.mkdir()
    system.mkdir()
    for name in SYSTEM_TOOLS:
        # The interpreter running the tests (a pyenv shim on PATH needs pyenv itself).
        found = str(Path(sys.executable).resolve()) if name == "python3" else shutil.which(name)
        assert found, f"{name} is needed to run the scripts"
        (system / name).symlink_to(found)
    for name, body in FAKES.items():
        script = fake / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{tmp_path}/log"\n{body}\n')
        script.chmod(0o755)
    return Tools(tmp_path, {"PATH": f"{fake}:{system}", "HOME": str(tmp_path), "LANG": os.environ.get("LANG", "C")})


CRD_MODELS = REPO / "tests" / "k8s" / "crd_models"
CRD_CACHE = REPO / ".cache" / "crd_models"


@pytest.fixture(scope="session")
def validator():
    """Validates CRD objects (Gateway API, Traefik, Istio, cert-manager, Prometheus Operator) against the schemas that
    @kubernetes-models ships (generated from the CRDs), installed from npm into .cache/ on first use."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to validate CRD objects (Debian: apt-get install nodejs npm)")
    CRD_CACHE.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "validate_crds.mjs"):
        shutil.copy(CRD_MODELS / name, CRD_CACHE / name)
    wanted = json.loads((CRD_MODELS / "package.json").read_text())["dependencies"]
    if not all((CRD_CACHE / "node_modules" / name).exists() for name in wanted):
        result = subprocess.run(
            ["npm", "install", "--no-package-lock", "--no-audit", "--no-fund", "--silent"],
            cwd=CRD_CACHE,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            pytest.skip(f"npm could not install the CRD models: {result.stderr[-300:]}")
    return lambda *files: subprocess.run(
        ["node", "validate_crds.mjs", *map(str, files)], cwd=CRD_CACHE, capture_output=True, text=True, timeout=120
    )
