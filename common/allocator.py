"""glibc's malloc told to give large freed blocks back to the OS at once.

By default glibc serves blocks of 128 KiB and over with mmap, but each time such a block is freed it
raises that threshold to the block's size (up to 32 MiB: the "dynamic mmap threshold" of
mallopt(3)). After a few decodes, image-sized blocks come from the heap arenas instead, and what
is freed there stays in the process: issue 14 saw a gateway grow 85 -> 942 MB over three fuzzing
passes. Setting the threshold explicitly turns that adjustment off (mallopt(3), M_MMAP_THRESHOLD).
Measured in docs/reliability.md: RSS after three hostile passes 1028 MiB by default, 96 MiB with it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
# Fixed at 1 MiB rather than glibc's starting 128 KiB: the ordinary photo path's smaller blocks stay
# in the heap (128 KiB cost +1.5 ms of CPU per 4 MP upload in page faults, 1 MiB +0.5 ms), while
# image-sized blocks are mapped and unmapped.
MMAP_THRESHOLD_BYTES = 1 << 20
_ENVIRONMENT = "MALLOC_MMAP_THRESHOLD_"  # glibc reads this at start; an operator's choice wins


def return_large_blocks_to_the_os() -> bool:
    """Fix glibc's mmap threshold; False where there is no glibc mallopt (musl, macOS) or the
    environment already sets it."""
    if _ENVIRONMENT in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
