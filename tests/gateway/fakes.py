"""A stand-in model client for routing unit tests: answers after a delay, or fails, as told."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np

from gateway.clients import BackendError, Prediction


def probabilities(top: int) -> np.ndarray:
    p = np.full((1, 1000), 0.5 / 999, np.float32)
    p[0, top] = 0.5
    return p


class FakeClient:
    def __init__(self, settings, top: int, delay_s: float = 0.0, error: str | None = None):
        self.settings = settings
        self.top, self.delay_s, self.error = top, delay_s, error
        self.calls = 0
        self.timeouts: list[float] = []
        self.batches: list[np.ndarray] = []

    def submit(self, batch, timeout_s):
        self.calls += 1
        self.timeouts.append(timeout_s)
        self.batches.append(batch)
        future: Future = Future()

        def finish():
            if self.error:
                future.set_exception(BackendError(self.error, "injected"))
            elif self.delay_s > timeout_s:
                future.set_exception(BackendError("timeout", "deadline exceeded"))
            else:
                future.set_result(Prediction(probabilities(self.top), "1"))

        timer = threading.Timer(min(self.delay_s, timeout_s), finish)
        timer.daemon = True
        timer.start()
        return future

    def status(self, timeout_s):
        return "AVAILABLE" if not self.error else "UNAVAILABLE (injected)"

    def close(self):
        pass
