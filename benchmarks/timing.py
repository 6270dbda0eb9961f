"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def timed(call: Callable[[], object], count: int, warmup: int = 10) -> list[float]:
    """Seconds per call, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def ms(samples: list[float], q: float) -> float:
    """The q-th percentile of samples given in seconds, in milliseconds."""
    return float(np.percentile(np.array(samples) * 1000, q))
