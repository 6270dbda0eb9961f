"""scripts/install_checked.sh: the CI jobs' only way to install a release binary (kind, kubectl, kompose, Trivy)."""

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

from tests.conftest import REPO

BINARY = b"#!/bin/sh\necho checked\n"


def install(url: str, sha256: str, dest: Path, *member: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "install_checked.sh"), url, sha256, str(dest), *member],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_matching_download_is_installed_executable(tmp_path):
    (tmp_path / "tool").write_bytes(BINARY)
    result = install(f"file://{tmp_path}/tool", hashlib.sha256(BINARY).hexdigest(), tmp_path / "bin-tool")
    assert result.returncode == 0, result.stderr
    assert os.access(tmp_path / "bin-tool", os.X_OK)
    assert subprocess.run([tmp_path / "bin-tool"], capture_output=True, text=True).stdout == "checked\n"


def test_a_different_download_is_refused_and_nothing_installed(tmp_path):
    (tmp_path / "tool").write_bytes(BINARY + b"# tampered\n")
    result = install(f"file://{tmp_path}/tool", hashlib.sha256(BINARY).hexdigest(), tmp_path / "bin-tool")
    assert result.returncode == 1
    assert f"expected {hashlib.sha256(BINARY).hexdigest()}" in result.stderr
    assert not (tmp_path / "bin-tool").exists()


def test_a_member_is_taken_out_of_a_checked_tarball(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        entry = tarfile.TarInfo("trivy")
        entry.size = len(BINARY)
        archive.addfile(entry, io.BytesIO(BINARY))
    (tmp_path / "trivy.tar.gz").write_bytes(buffer.getvalue())
    result = install(
        f"file://{tmp_path}/trivy.tar.gz",
        hashlib.sha256(buffer.getvalue()).hexdigest(),
        tmp_path / "bin-trivy",
        "trivy",
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "bin-trivy").read_bytes() == BINARY


def test_a_failed_download_installs_nothing(tmp_path):
    result = install(f"file://{tmp_path}/absent", "0" * 64, tmp_path / "bin-tool")
    assert result.returncode != 0 and not (tmp_path / "bin-tool").exists()
