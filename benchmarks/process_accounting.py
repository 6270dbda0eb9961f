"""CPU and memory of a server and every process under it (gunicorn's workers, BentoML's service
processes, our gateway and model server), from the kernel's per-process counters via psutil, and the
per-request CPU split the issue's targets are stated in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil


def resident_bytes(pid: int) -> tuple[int, int]:
    """``pid``'s resident memory now and the most it has held (VmRSS, VmHWM of /proc/<pid>/status), bytes."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) << 10, int(fields["VmHWM"].split()[0]) << 10


class ProcessTree:
    """Root processes and, at each reading, all their descendants."""

    def __init__(self, pids: Iterable[int]):
        self.roots = [psutil.Process(pid) for pid in pids]

    def processes(self) -> list[psutil.Process]:
        found: dict[int, psutil.Process] = {}
        for root in self.roots:
            try:
                for process in [root, *root.children(recursive=True)]:
                    found[process.pid] = process
            except psutil.NoSuchProcess:
                continue
        return list(found.values())

    def cpu_seconds(self) -> dict[int, float]:
        """User + system CPU seconds of each live process, by pid."""
        seconds: dict[int, float] = {}
        for process in self.processes():
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            seconds[process.pid] = times.user + times.system
        return seconds

    def memory(self) -> Memory:
        """Resident and proportional memory summed over the processes."""
        rss = pss = 0
        for process in self.processes():
            try:
                held = process.memory_full_info()  # reads /proc/<pid>/smaps_rollup
            except psutil.NoSuchProcess:
                continue
            rss += held.rss
            pss += held.pss
        return Memory(rss, pss)


@dataclass(frozen=True)
class Memory:
    """``rss`` counts a page once in every process that maps it, as ``ps`` does: forked workers that
    import the same libraries count them once each, so it is an upper bound for the tree. ``pss``
    charges a page shared by n processes 1/n to each, so its sum is what the tree holds."""

    rss: int
    pss: int


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings; a process born in between counts from zero."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


@dataclass(frozen=True)
class CpuSplit:
    """Our servers' CPU per request (ms) split as in the issue: inference (the interpreter's invoke,
    in the model server), decode+resize (the gateway's imaging), framework (everything else, gateway
    and model server together)."""

    gateway_ms: float
    model_server_ms: float
    inference_ms: float
    decode_resize_ms: float

    @property
    def servers_ms(self) -> float:
        return self.gateway_ms + self.model_server_ms

    @property
    def gateway_framework_ms(self) -> float:
        return self.gateway_ms - self.decode_resize_ms

    @property
    def model_server_framework_ms(self) -> float:
        return self.model_server_ms - self.inference_ms

    @property
    def framework_ms(self) -> float:
        return self.gateway_framework_ms + self.model_server_framework_ms

    @property
    def inference_share(self) -> float:
        return self.inference_ms / self.servers_ms if self.servers_ms else float("nan")
