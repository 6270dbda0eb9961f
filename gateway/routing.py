"""Which model answers: primary first, fallback when the primary fails, is slow, or its circuit is open.

One deadline per request. The primary gets at most ``primary_timeout`` of it and, while the fallback
could answer, never the last ``fallback_reserve``, so the fallback always has time to. When the
fallback is missing or its circuit refuses requests, the reserve would only turn slow primary
answers into errors, so the primary may use it. When the primary has not answered
by its recent p95 (clamped to [hedge_min, hedge_max]), the fallback is asked too (hedging, capped to
a fraction of requests) and the first valid answer wins, the primary's if it comes within a short
grace window after the fallback's. A half-open circuit's probe request is always hedged, beyond
the cap: users should not wait for the breaker to find out. Every fallback answer carries its reason.

Only model calls count against a backend's breaker and latency window. A backend is called only with
at least ``min_call_s`` (MIN_MODEL_CALL_MS) left after the local work before the call (decoding,
preprocessing), so every timeout it is charged with is one a healthy backend would have beaten; with
less left it is skipped without touching its breaker, and when no backend could be called for lack of
time the request is answered ``deadline_exceeded``, not ``models_unavailable``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass

import numpy as np
from PIL import Image

from gateway.breaker import Admission, CircuitBreaker
from gateway.clients import ModelClient, failure_reason
from gateway.errors import AllBackendsFailed, DeadlineExceeded
from gateway.imaging import to_tensor
from gateway.metrics import Metrics
from gateway.settings import BackendSettings, Settings


@dataclass
class Backend:
    settings: BackendSettings
    client: ModelClient
    breaker: CircuitBreaker

    @property
    def role(self) -> str:
        return self.settings.role


@dataclass
class Outcome:
    probabilities: np.ndarray  # [N, 1000]: one row per image, in order
    version: str | None
    backend: BackendSettings
    fallback: bool
    fallback_reason: str | None
    hedged: bool
    preprocess_ms: float
    infer_ms: float


class HedgeBudget:
    """Allows a hedge while the last ``window`` requests hold fewer than ``fraction * window`` hedges."""

    def __init__(self, fraction: float, window: int = 100):
        self.fraction = fraction
        self._recent: deque[bool] = deque(maxlen=window)
        self._lock = threading.Lock()

    def record(self, hedged: bool) -> None:
        with self._lock:
            self._recent.append(hedged)

    def allows(self) -> bool:
        with self._lock:
            return sum(self._recent) < self.fraction * (self._recent.maxlen or 1)


@dataclass
class _Attempt:
    backend: Backend
    admission: Admission
    future: Future
    started: float
    preprocess_ms: float

    def ok(self) -> bool:
        return self.future.done() and self.future.exception() is None

    def failed(self) -> bool:
        return self.future.done() and self.future.exception() is not None

    def reason(self) -> str:
        error = self.future.exception()
        assert error is not None, "only asked of a failed attempt"
        return failure_reason(error)


def wait_for_first(futures: list[Future], timeout_s: float) -> None:
    """Block until one of ``futures`` is done or ``timeout_s`` has passed."""
    wait(futures, timeout=timeout_s, return_when=FIRST_COMPLETED)


class Router:
    """Picks the answering backend for each request. ``clock`` and ``wait`` are the only ways it
    reads or spends time, so tests can step a virtual clock instead of sleeping."""

    def __init__(
        self,
        settings: Settings,
        backends: dict[str, Backend],
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[list[Future], float], None] = wait_for_first,
    ):
        self.settings = settings
        self.primary = backends.get("primary")
        self.fallback = backends.get("fallback")
        self.metrics = metrics
        self.hedges = HedgeBudget(settings.hedge.max_fraction)
        self.clock = clock
        self.wait = wait

    def hedge_delay_s(self) -> float:
        assert self.primary is not None
        p95 = self.primary.breaker.latencies.percentile(95)
        low, high = self.settings.hedge.min_delay_s, self.settings.hedge.max_delay_s
        return high if p95 is None else min(max(p95, low), high)

    def classify(self, images: list[Image.Image], deadline: float) -> Outcome:
        """One race for all ``images``: each backend gets them as one [N, 224, 224, 3] tensor."""
        return _Race(self, images, deadline).run()

    def start(
        self, backend: Backend, images: list[Image.Image], tensors: dict, until: float, alone: bool
    ) -> _Attempt | str:
        """Preprocess for ``backend`` and call it with the time left until ``until``; or, without a
        call, why not: ``circuit_open``, or ``no_time`` when less than ``min_call_s`` is left.
        ``alone``: nothing else can start while the call runs, so the race will only wait for it and
        the client may make it on this thread."""
        if not backend.breaker.would_admit():
            return "circuit_open"
        started = self.clock()
        if until - started < self.settings.min_call_s:
            return "no_time"
        policy = backend.settings.policy
        if policy not in tensors:
            tensors[policy] = np.concatenate([to_tensor(image, policy) for image in images])
        sent = self.clock()
        if until - sent < self.settings.min_call_s:
            return "no_time"
        admission = backend.breaker.admit()  # after the checks: a skipped call must not take a half-open probe
        if admission is None:
            return "circuit_open"
        future = backend.client.submit(tensors[policy], until - sent, caller_waits=alone)

        def report(done: Future) -> None:
            latency = self.clock() - sent
            error = done.exception()
            if error is None:
                backend.breaker.record_success(admission, latency)
                self.metrics.backend_latency.labels(backend.role, "ok").observe(latency)
            else:
                reason = failure_reason(error)
                backend.breaker.record_failure(admission, reason)
                self.metrics.backend_latency.labels(backend.role, reason).observe(latency)

        future.add_done_callback(report)
        return _Attempt(backend, admission, future, sent, (sent - started) * 1000)


class _Race:
    """One request's race: start the primary, then until someone wins or everyone has lost, settle
    what finished, maybe start the fallback, and wait for the next wake-up."""

    def __init__(self, router: Router, images: list[Image.Image], deadline: float):
        self.router = router
        self.images = images
        self.deadline = deadline
        self.attempts: dict[str, _Attempt] = {}
        self.reasons: dict[str, str] = {}  # role -> why it did not answer
        self.out_of_time: set[str] = set()  # roles not called because too little time was left
        self.tensors: dict = {}  # resize policy -> tensor, so both backends share equal policies' work
        self.hedged = False
        self.probing = False
        self.primary_deadline = 0.0
        self.hedge_at: float | None = None
        self.grace_until: float | None = None

    def run(self) -> Outcome:
        self.start_primary(self.router.clock())
        while True:
            now = self.router.clock()
            winner = self.settle(now)
            if winner is not None:
                return self.outcome(winner)
            if self.maybe_start_fallback(now):
                continue
            if self.lost(now):
                raise self.failure()
            self.router.wait(self.waiting_on(), max(0.0, self.next_wake() - now))

    def start_primary(self, now: float) -> None:
        router, settings = self.router, self.router.settings
        if router.primary is None:
            self.reasons["primary"] = "unavailable"  # a fallback-only gateway
            return
        fallback_usable = router.fallback is not None and router.fallback.breaker.would_admit()
        reserve = settings.fallback_reserve_s if fallback_usable else 0.0
        self.primary_deadline = now + min(settings.primary_timeout_s, self.deadline - now - reserve)
        hedging = router.fallback is not None and settings.hedge.enabled
        # Without a hedge to start while it runs, the race only waits for the primary until its deadline.
        attempt = self.call(router.primary, self.primary_deadline, alone=not hedging)
        if attempt is None:
            return
        self.probing = attempt.admission == Admission.PROBE
        if hedging:
            self.hedge_at = now + router.hedge_delay_s()

    def call(self, backend: Backend, until: float, alone: bool) -> _Attempt | None:
        """Start ``backend``'s call, or record why it was skipped (a skipped call reads as a timeout)."""
        attempt = self.router.start(backend, self.images, self.tensors, until, alone)
        if isinstance(attempt, _Attempt):
            self.attempts[backend.role] = attempt
            return attempt
        if attempt == "no_time":
            self.out_of_time.add(backend.role)
        self.reasons[backend.role] = "timeout" if attempt == "no_time" else attempt
        return None

    def settle(self, now: float) -> _Attempt | None:
        """Record what finished; return the winner once there is one."""
        primary = self.attempts.get("primary")
        fallback = self.attempts.get("fallback")
        if primary is not None and primary.ok():
            return primary
        if primary is not None and primary.failed():
            self.reasons["primary"] = primary.reason()
        elif primary is not None and now >= self.primary_deadline:
            self.reasons["primary"] = "timeout"
        if fallback is not None and fallback.ok():
            primary_pending = primary is not None and "primary" not in self.reasons
            if primary_pending and self.grace_until is None:
                self.grace_until = now + self.router.settings.hedge.primary_grace_s
            if not primary_pending or (self.grace_until is not None and now >= self.grace_until):
                self.reasons.setdefault("primary", "timeout")
                return fallback
        if fallback is not None and fallback.failed():
            self.reasons["fallback"] = fallback.reason()
        return None

    def maybe_start_fallback(self, now: float) -> bool:
        """Start the fallback once the primary is gone, or hedge when its time has come."""
        router = self.router
        if router.fallback is None or "fallback" in self.attempts or "fallback" in self.reasons:
            return False
        primary_gone = "primary" in self.reasons
        hedge_due = self.hedge_at is not None and now >= self.hedge_at
        if primary_gone or (hedge_due and (self.probing or router.hedges.allows())):
            if self.call(router.fallback, self.deadline, alone=primary_gone) is None:
                return False
            self.hedged = not primary_gone
            return True
        if hedge_due:
            self.hedge_at = None  # over the hedging cap: wait for the primary alone
        return False

    def lost(self, now: float) -> bool:
        """No backend can still answer, or the deadline has passed."""
        unsettled = [role for role in self.attempts if role not in self.reasons]
        fallback_startable = (
            self.router.fallback is not None and "fallback" not in self.reasons and "fallback" not in self.attempts
        )
        if not unsettled and not fallback_startable:
            return True
        if now >= self.deadline:
            self.reasons.setdefault("fallback", "timeout")
            return True
        return False

    def waiting_on(self) -> list[Future]:
        """The calls still running; a fallback answer held for the primary's grace is not waited on."""
        return [
            a.future
            for role, a in self.attempts.items()
            if role not in self.reasons and not (role == "fallback" and self.grace_until is not None)
        ]

    def next_wake(self) -> float:
        wake = [self.deadline]
        if "primary" in self.attempts and "primary" not in self.reasons:
            wake.append(self.primary_deadline)
        if self.hedge_at is not None and "fallback" not in self.attempts:
            wake.append(self.hedge_at)
        if self.grace_until is not None:
            wake.append(self.grace_until)
        return min(wake)

    def outcome(self, winner: _Attempt) -> Outcome:
        router = self.router
        router.hedges.record(self.hedged)
        is_fallback = winner.backend.role == "fallback"
        reason = self.reasons.get("primary") if is_fallback else None
        if is_fallback:
            router.metrics.fallbacks.labels(reason or "unknown").inc()
        if self.hedged:
            router.metrics.hedges.labels(winner.backend.role).inc()
        prediction = winner.future.result()
        return Outcome(
            probabilities=prediction.probabilities,
            version=prediction.version,
            backend=winner.backend.settings,
            fallback=is_fallback,
            fallback_reason=reason,
            hedged=self.hedged,
            preprocess_ms=sum(a.preprocess_ms for a in self.attempts.values()),
            infer_ms=(router.clock() - winner.started) * 1000,
        )

    def failure(self) -> AllBackendsFailed | DeadlineExceeded:
        router = self.router
        router.hedges.record(self.hedged)
        if self.out_of_time == {b.role for b in (router.primary, router.fallback) if b is not None}:
            # Every backend was skipped for lack of time: the local work failed the request, not a model.
            return DeadlineExceeded(
                f"less than MIN_MODEL_CALL_MS={router.settings.min_call_s * 1000:.0f} ms of the deadline was "
                "left for a model call after reading, decoding and preprocessing",
                {"Retry-After": "1"},
            )
        waits = [b.breaker.retry_in_s for b in (router.primary, router.fallback) if b is not None]
        return AllBackendsFailed(dict(self.reasons), retry_after_s=max(1.0, min(waits, default=1.0)))
