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
threads = [threading.Thread(target=churn) for _ in range(4 if sys.argv[1] != "none" else 0)]
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
    # What glibc's default keeps depends on how the four threads' frees interleave (19-100 MiB over
    # a process that never churned, measured), so the default is only shown to keep memory at its
    # worst of three runs; the fixed threshold must come back near that process every time.
    never_churned = rss_after_churn("none")
    default = max(rss_after_churn("default") for _ in range(3))
    fixed = max(rss_after_churn("fixed") for _ in range(2))
    sizes = (never_churned >> 20, default >> 20, fixed >> 20)
    assert default - never_churned > (12 << 20), sizes
    assert fixed - never_churned < (12 << 20), sizes
