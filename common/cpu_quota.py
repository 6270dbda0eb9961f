"""How many cores this process may keep busy: its CPU affinity, capped by its cgroup's CPU quota.

A container limited to one CPU (compose `cpus: "1.0"`, Kubernetes `limits.cpu: 1`) still has every
core of its node in its affinity mask; the limit is a CFS quota in its cgroup. Sizing pools by the
affinity alone gave the fallback 16 interpreters on a 16-core node: 851 MiB idle RSS in a 512 MiB
container (docs/reliability.md).

cgroup v2: ``cpu.max`` holds "<quota> <period>" or "max <period>", in the process's cgroup and each
parent (the tightest applies). cgroup v1: ``cpu.cfs_quota_us`` (-1: none) and ``cpu.cfs_period_us``
in the cpu controller's hierarchy. A container usually sees its own cgroup at the mount's root while
/proc/self/cgroup names the host's path (Docker on cgroup v1), so the mount's root is read too.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def affinity_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def usable_cores(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The affinity's core count, lowered to the CPU quota rounded up (at least 1)."""
    cores = affinity_cores()
    quota = cpu_quota(root, proc_cgroup)
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


def cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """CPUs' worth of time the cgroup allows per period; None when there is no quota."""
    limits = [limit for folder in _folders(root, proc_cgroup) if (limit := _limit(folder)) is not None]
    return min(limits) if limits else None


def _folders(root: Path, proc_cgroup: Path) -> list[Path]:
    """The cgroup folders that may hold this process's CPU limit: its own, its parents', the mounts' roots."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    hierarchies: list[tuple[Path, str]] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2's single hierarchy
            hierarchies.append((root, path))
        elif "cpu" in controllers.split(","):
            hierarchies.append((root / controllers, path))
    hierarchies += [(root, "/"), (root / "cpu", "/"), (root / "cpu,cpuacct", "/")]
    folders: list[Path] = []
    for mount, path in hierarchies:
        inner = Path(path.strip("/"))
        for folder in (mount / part for part in (inner, *inner.parents)):
            if folder not in folders and folder.is_dir():
                folders.append(folder)
    return folders


def _limit(folder: Path) -> float | None:
    try:
        if (folder / "cpu.max").is_file():
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if (folder / "cpu.cfs_quota_us").is_file():
            quota_us = int((folder / "cpu.cfs_quota_us").read_text())
            return None if quota_us <= 0 else quota_us / int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None
