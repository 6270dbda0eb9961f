"""The cores a container may use: its affinity capped by its cgroup's CPU quota, v1 and v2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from common import cpu_quota
from common.cpu_quota import cpu_quota as quota_of
from common.cpu_quota import usable_cores
from tests.docker_engine import STAND_IN_IMAGE, docker_engine_or_skip


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def eight_cores(monkeypatch):
    monkeypatch.setattr(cpu_quota, "affinity_cores", lambda: 8)


# (/proc/self/cgroup, files under the cgroup mount, cores usable of 8)
LAYOUTS = {
    "v2 quota in the process's cgroup; 1.5 CPUs keep two cores half busy": (
        "0::/kubepods/pod1/ctr\n",
        {"kubepods/pod1/ctr/cpu.max": "150000 100000\n", "kubepods/cpu.max": "max 100000\n"},
        2,
    ),
    "v2 the tightest parent applies": (
        "0::/kubepods/pod1/ctr\n",
        {"kubepods/pod1/ctr/cpu.max": "max 100000\n", "kubepods/pod1/cpu.max": "50000 100000\n"},
        1,
    ),
    "v2 in a cgroup namespace: the mount's root": ("0::/\n", {"cpu.max": "300000 100000\n"}, 3),
    "v2 a quota above the affinity changes nothing": ("0::/\n", {"cpu.max": "1600000 100000\n"}, 8),
    # Docker on cgroup v1: /proc/self/cgroup says /docker/<id>; the cpu mount is the container's own.
    "v1 Docker names the host's path but mounts its own cgroup": (
        "4:memory:/docker/abc\n2:cpuacct:/docker/abc\n1:cpu:/docker/abc\n0::/\n",
        {"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"},
        1,
    ),
    "v1 combined controllers, no quota": (
        "3:cpu,cpuacct:/\n",
        {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
        8,
    ),
}


@pytest.mark.parametrize(("proc", "files", "cores"), LAYOUTS.values(), ids=LAYOUTS)
def test_cgroup_layouts(tmp_path, eight_cores, proc, files, cores):
    write(tmp_path / "proc", proc)
    for name, text in files.items():
        write(tmp_path / "fs" / name, text)
    assert usable_cores(tmp_path / "fs", tmp_path / "proc") == cores


def test_the_quota_itself(tmp_path):
    write(tmp_path / "proc", "0::/\n")
    write(tmp_path / "fs/cpu.max", "150000 100000\n")
    assert quota_of(tmp_path / "fs", tmp_path / "proc") == 1.5
    write(tmp_path / "fs/cpu.max", "max 100000\n")
    assert quota_of(tmp_path / "fs", tmp_path / "proc") is None


@pytest.mark.parametrize("text", ["", "garbage\n", "0::/x\n"])
def test_no_cgroup_files_means_the_affinity(tmp_path, eight_cores, text):
    write(tmp_path / "proc", text)
    (tmp_path / "fs").mkdir()
    assert usable_cores(tmp_path / "fs", tmp_path / "proc") == 8
    assert usable_cores(tmp_path / "absent", tmp_path / "absent-proc") == 8


@pytest.mark.docker
def test_a_real_container_limited_to_one_cpu():
    docker_engine_or_skip()
    common = Path(__file__).resolve().parents[2] / "common"
    mount = ["-v", f"{common}:/app/common:ro", "-w", "/app"]
    script = "from common.cpu_quota import usable_cores; print(usable_cores())"

    def cores(*limit: str) -> int:
        command = ["docker", "run", "--rm", *limit, *mount, STAND_IN_IMAGE, "python", "-c", script]
        return int(subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout)

    assert cores("--cpus", "1") == 1
    assert cores() == len(os.sched_getaffinity(0))  # no limit: every core (the engine runs on this host)
