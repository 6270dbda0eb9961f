"""The kompose wrapper, driven through a stand-in `kompose` that converts the compose file it is given
the way kompose v1.37.0 does (tests/k8s/kompose_model.py), so a compose change reaches the base."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tools.kompose_export import ExportError, finish_base

BASE = REPO / "k8s" / "base"


def fake_kompose(tmp: Path, version: str) -> Path:
    """A `kompose` that writes what kompose v1.37.0 writes for the --file it is given (tests/k8s/kompose_model.py)."""
    script = tmp / "bin" / "kompose"
    script.parent.mkdir()
    script.write_text(f"""#!/bin/sh
if [ "$1" = version ]; then echo "{version} (abc123)"; exit 0; fi
echo "$@" > "{tmp}/args"
while [ $# -gt 0 ]; do case "$1" in --out) out="$2"; shift;; --file) file="$2"; shift;; esac; shift; done
cd "{REPO}" && exec "{sys.executable}" -m tests.k8s.kompose_model --file "$file" --out "$out"
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script.parent


def export(tmp: Path, path_dirs: list[Path], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KOMPOSE"}
    env["PATH"] = os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"])
    return subprocess.run(
        [sys.executable, "-m", "tools.kompose_export", "--base", str(tmp / "base"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_missing_kompose_is_one_clear_line(tmp_path):
    result = export(tmp_path, [])
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "kompose is not installed" in lines[0] and "v1.37.0" in lines[0]


def test_other_kompose_version_is_refused(tmp_path):
    bin_dir = fake_kompose(tmp_path, "1.30.0")
    result = export(tmp_path, [bin_dir])
    assert result.returncode == 1 and "pins 1.37.0" in result.stderr


def test_converts_and_writes_the_committed_base(tmp_path):
    bin_dir = fake_kompose(tmp_path, "1.37.0")
    result = export(tmp_path, [bin_dir])
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "args").read_text().split()
    assert args[0] == "convert" and "--with-kompose-annotation=false" in args
    assert not any(a.startswith("--profile") or a.startswith("--generate-network-policies") for a in args)
    assert args[args.index("--file") + 1] == str(REPO / "compose.yaml")
    written = sorted(p.name for p in (tmp_path / "base").iterdir())
    assert written == sorted(p.name for p in BASE.iterdir()), "the committed base is what the wrapper writes"
    for path in BASE.iterdir():
        assert (tmp_path / "base" / path.name).read_text() == path.read_text(), path.name


def test_a_load_balancer_gateway_is_refused(tmp_path):
    """kompose names a loadbalancer Service <name>-tcp: the Ingress's backend would point at nothing."""
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        (REPO / "compose.yaml")
        .read_text()
        .replace("kompose.service.type: clusterip", "kompose.service.type: loadbalancer", 1)
    )
    result = export(tmp_path, [fake_kompose(tmp_path, "1.37.0")], "--compose", str(compose))
    assert result.returncode == 1 and "lacks Service/gateway" in result.stderr, result.stderr


def test_incomplete_output_is_an_error(tmp_path):
    out = tmp_path / "kompose-output"
    out.mkdir()
    for path in BASE.glob("*.yaml"):
        if path.name not in ("kustomization.yaml", "primary-deployment.yaml"):
            shutil.copy(path, out)
    with pytest.raises(ExportError, match="lacks Deployment/primary"):
        finish_base(out, tmp_path / "base")


def test_failing_kompose_reports_its_message(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kompose"
    script.write_text(
        '#!/bin/sh\nif [ "$1" = version ]; then echo 1.37.0; exit 0; fi\necho "unsupported key x" >&2\nexit 3\n'
    )
    script.chmod(0o755)
    result = export(tmp_path, [bin_dir])
    assert result.returncode == 1 and "kompose convert failed: unsupported key x" in result.stderr
