"""glibc's mmap threshold fixed: memory freed after image-sized allocations leaves the process."""

import subprocess
import sys

from tests.conftest import REPO

# Four threads allocate and free blocks of 1-7 MiB, as decoding does; RSS is read afterwards.
_CHURN = """
import sys, threading
from common.allocator import return_large_blocks_to_the_os
if sys.argv[1] == "fixed":
    assert return_large_blocks_to_the_os()
import numpy as np, psutil
def churn():
    for i in range(30):
        blocks = [np.ones(((i % 7 + 1) << 20) + 4096 * j, np.uint8) for j in range(8)]
        del blocks
threads = [threading.Thread(target=churn) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(psutil.Process().memory_info().rss)
"""


def rss_after_churn(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _CHURN, mode],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"PYTHONPATH": str(REPO)},
    )
    return int(result.stdout)


def test_freed_blocks_go_back_to_the_os():
    default, fixed = rss_after_churn("default"), rss_after_churn("fixed")
    assert fixed < default - (20 << 20), (default >> 20, fixed >> 20)
