from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from benchmarks.process_accounting import CpuSplit, Memory, ProcessTree, cpu_used, resident_bytes


@pytest.mark.slow  # a real process
def test_the_tree_holds_the_children_and_counts_their_cpu(trivial_server):
    server = trivial_server(0, child_mb=1).service
    tree = ProcessTree([server.process.pid])
    time.sleep(0.5)  # the child is started
    [child] = psutil.Process(server.process.pid).children()
    before = tree.cpu_seconds()
    time.sleep(1.0)
    after = tree.cpu_seconds()
    assert set(after) == {server.process.pid, child.pid}
    assert after[child.pid] - before[child.pid] > 0.05  # the child burns CPU in a loop
    assert cpu_used(before, after) >= after[child.pid] - before[child.pid]


@pytest.mark.slow  # a real process
def test_rss_sums_the_tree(trivial_server):
    server = trivial_server(0, child_mb=200).service
    root = psutil.Process(server.process.pid)
    tree = ProcessTree([root.pid])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and tree.memory().rss - root.memory_info().rss < 200 << 20:
        time.sleep(0.1)  # until the child has touched its memory
    assert root.memory_info().rss < 100 << 20
    assert tree.memory().rss >= (200 << 20) + root.memory_info().rss


# 200 MiB touched, then a fork that does not write it: both processes map the same pages.
_SHARED = """
import os, time
held = bytearray(200 << 20)
for i in range(0, len(held), 4096):
    held[i] = 1
if os.fork() == 0:
    time.sleep(30)
    os._exit(0)
print("forked", flush=True)
time.sleep(30)
"""


@pytest.mark.slow  # real processes
def test_pss_counts_pages_a_fork_shares_once():
    with subprocess.Popen([sys.executable, "-c", _SHARED], stdout=subprocess.PIPE, text=True) as parent:
        try:
            assert parent.stdout is not None and parent.stdout.readline() == "forked\n"
            tree = ProcessTree([parent.pid])
            assert len(tree.processes()) == 2
            held = tree.memory()
            assert held.rss > 2 * (200 << 20)  # each process shows the 200 MiB
            assert (200 << 20) < held.pss < (200 << 20) + (held.rss - 2 * (200 << 20))  # counted once
        finally:
            for process in psutil.Process(parent.pid).children():
                process.kill()
            parent.kill()


@pytest.mark.slow  # a real process
def test_a_process_gone_from_the_tree_is_skipped(trivial_server):
    server = trivial_server(0).service
    tree = ProcessTree([server.process.pid])
    server.stop()
    assert tree.processes() == []
    assert tree.cpu_seconds() == {} and tree.memory() == Memory(0, 0)


def test_cpu_used_counts_a_process_born_between_readings_from_zero():
    assert cpu_used({1: 2.0, 2: 1.0}, {1: 2.5, 2: 1.25, 3: 0.5}) == pytest.approx(1.25)


def test_cpu_split_framework_is_what_inference_and_imaging_leave():
    split = CpuSplit(gateway_ms=6.0, model_server_ms=14.0, inference_ms=12.0, decode_resize_ms=3.0)
    assert split.servers_ms == pytest.approx(20.0)
    assert split.gateway_framework_ms == pytest.approx(3.0)
    assert split.model_server_framework_ms == pytest.approx(2.0)
    assert split.framework_ms == pytest.approx(5.0)
    assert split.inference_share == pytest.approx(0.6)


def test_resident_bytes_reads_now_and_the_peak():
    before_now, _ = resident_bytes(os.getpid())
    assert abs(before_now - psutil.Process().memory_info().rss) < 8 << 20
    held = bytearray(100 << 20)  # touched by the zero fill; one mapping, unmapped when freed
    grown, _ = resident_bytes(os.getpid())
    del held
    now, peak = resident_bytes(os.getpid())
    assert grown - before_now > 90 << 20 and peak - now > 90 << 20  # VmHWM keeps what VmRSS gave back
