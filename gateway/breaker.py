"""A circuit breaker per backend, and the rolling latency window it (and hedging) reads.

CLOSED --N consecutive failures, or recent p95 latency over the bound--> OPEN
OPEN --cool-down elapsed, next request--> HALF_OPEN (that one request is the probe; others wait out)
HALF_OPEN --probe succeeds--> CLOSED (cool-down reset)
HALF_OPEN --probe fails--> OPEN (cool-down doubled, up to a maximum)
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)


class State(enum.Enum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class Admission(enum.Enum):
    NORMAL = "normal"
    PROBE = "probe"  # the one request whose outcome decides HALF_OPEN


class LatencyWindow:
    """The last ``size`` successful latencies (seconds), thread-safe."""

    def __init__(self, size: int = 50):
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()

    def percentile(self, q: float, minimum: int = 10) -> float | None:
        """Nearest-rank percentile (a sort of <= 50 floats beats numpy's overhead on this hot path)."""
        with self._lock:
            if len(self._samples) < minimum:
                return None
            ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        failures: int,
        cooldown_s: float,
        max_cooldown_s: float,
        latency_bound_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_transition: Callable[[str, State, State], None] | None = None,
    ):
        self.name = name
        self.failure_threshold = failures
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.latency_bound_s = latency_bound_s
        self.latencies = LatencyWindow()
        self._clock = clock
        self._on_transition = on_transition
        self._lock = threading.Lock()
        self._state = State.CLOSED
        self._consecutive_failures = 0
        self._cooldown_s = cooldown_s
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> State:
        with self._lock:
            return self._state

    @property
    def retry_in_s(self) -> float:
        """While OPEN: seconds until the next probe may run."""
        with self._lock:
            return self._cooldown_left() if self._state == State.OPEN else 0.0

    def _cooldown_left(self) -> float:
        """Seconds of the current cool-down still to wait (the caller holds the lock)."""
        return max(0.0, self._opened_at + self._cooldown_s - self._clock())

    def would_admit(self) -> bool:
        """Would ``admit()`` let a request through now? Asks without changing any state."""
        with self._lock:
            if self._state == State.CLOSED:
                return True
            if self._state == State.OPEN and self._cooldown_left() > 0:
                return False
            return not self._probe_in_flight

    def admit(self) -> Admission | None:
        """May this request call the backend (None: no)? Turns OPEN into HALF_OPEN once the
        cool-down is over, and then admits exactly one request, the probe, until it reports back."""
        with self._lock:
            if self._state == State.CLOSED:
                return Admission.NORMAL
            if self._state == State.OPEN:
                if self._cooldown_left() > 0:
                    return None
                self._move(State.HALF_OPEN, "cool-down over, probing")
            if self._probe_in_flight:
                return None
            self._probe_in_flight = True
            return Admission.PROBE

    def record_success(self, admission: Admission, latency_s: float) -> None:
        with self._lock:
            self.latencies.add(latency_s)
            self._consecutive_failures = 0
            if admission == Admission.PROBE and self._state == State.HALF_OPEN:
                self._probe_in_flight = False
                self._cooldown_s = self.base_cooldown_s
                self._move(State.CLOSED, "probe succeeded")
                return
            p95 = self.latencies.percentile(95)
            if self._state == State.CLOSED and self.latency_bound_s and p95 is not None and p95 > self.latency_bound_s:
                self._open(f"recent p95 latency {p95 * 1000:.0f} ms over {self.latency_bound_s * 1000:.0f} ms")

    def record_failure(self, admission: Admission, reason: str) -> None:
        with self._lock:
            self._consecutive_failures += 1
            if admission == Admission.PROBE and self._state == State.HALF_OPEN:
                self._probe_in_flight = False
                self._cooldown_s = min(self._cooldown_s * 2, self.max_cooldown_s)
                self._open(f"probe failed ({reason})")
            elif self._state == State.CLOSED and self._consecutive_failures >= self.failure_threshold:
                self._open(f"{self._consecutive_failures} consecutive failures, last: {reason}")

    def _open(self, why: str) -> None:
        self._opened_at = self._clock()
        # Slow samples would re-open the breaker right after a successful probe; start afresh.
        self.latencies.clear()
        self._move(State.OPEN, f"{why}; next probe in {self._cooldown_s:.1f} s")

    def _move(self, new: State, why: str) -> None:
        old, self._state = self._state, new
        if old == new:
            return
        log.warning("circuit %s: %s -> %s (%s)", self.name, old.name, new.name, why)
        if self._on_transition:
            self._on_transition(self.name, old, new)
