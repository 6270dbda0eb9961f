"""Which model answers: primary first, fallback when the primary fails, is slow, or its circuit is open.

One deadline per request. The primary gets at most ``primary_timeout`` of it and, while the fallback
could answer, never the last ``fallback_reserve``, so the fallback always has time to. When the
fallback is missing or its circuit refuses requests, the reserve would only turn slow primary
answers into errors, so the primary may use it. When the primary has not answered
by its recent p95 (clamped to [hedge_min, hedge_max]), the fallback is asked too (hedging, capped to
a fraction of requests) and the first valid answer wins, the primary's if it comes within a short
grace window after the fallback's. A half-open circuit's probe request is always hedged, beyond
the cap: users should not wait for the breaker to find out. Every fallback answer carries its reason.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from gateway.breaker import Admission, CircuitBreaker
from gateway.clients import ModelClient, failure_reason
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
    probabilities: np.ndarray  # [1000]
    version: str | None
    backend: BackendSettings
    fallback: bool
    fallback_reason: str | None
    hedged: bool
    preprocess_ms: float
    infer_ms: float


@dataclass
class AllBackendsFailed(Exception):
    reasons: dict[str, str]
    retry_after_s: float

    def __str__(self) -> str:
        return "; ".join(f"{role}: {reason}" for role, reason in self.reasons.items())


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
    future: Future
    started: float
    preprocess_ms: float

    def ok(self) -> bool:
        return self.future.done() and self.future.exception() is None

    def failed(self) -> bool:
        return self.future.done() and self.future.exception() is not None

    def reason(self) -> str:
        return failure_reason(self.future.exception())


@dataclass
class _Plan:
    attempts: dict[str, _Attempt] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    hedged: bool = False


class Router:
    def __init__(self, settings: Settings, backends: dict[str, Backend], metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.primary = backends.get("primary")
        self.fallback = backends.get("fallback")
        self.metrics = metrics
        self.hedges = HedgeBudget(settings.hedge_max_fraction)
        self._clock = clock

    def hedge_delay_s(self) -> float:
        assert self.primary is not None
        p95 = self.primary.breaker.latencies.percentile(95)
        low, high = self.settings.hedge_min_ms / 1000, self.settings.hedge_max_ms / 1000
        return high if p95 is None else min(max(p95, low), high)

    def classify(self, image: Image.Image, deadline: float) -> Outcome:
        plan = _Plan()
        tensors: dict = {}
        now = self._clock()
        primary_deadline = now
        hedge_at: float | None = None
        probing = False
        if self.primary is not None:
            fallback_usable = self.fallback is not None and self.fallback.breaker.would_admit()
            reserve = self.settings.fallback_reserve_ms / 1000 if fallback_usable else 0.0
            budget = min(self.settings.primary_timeout_ms / 1000, deadline - now - reserve)
            admission = self.primary.breaker.admit() if budget > 0 else None
            if budget <= 0:
                plan.reasons["primary"] = "timeout"
            elif admission is None:
                plan.reasons["primary"] = "circuit_open"
            else:
                primary_deadline = now + budget
                probing = admission == Admission.PROBE
                plan.attempts["primary"] = self._start(self.primary, admission, image, tensors, budget)
                if self.fallback is not None and self.settings.hedge_enabled:
                    hedge_at = now + self.hedge_delay_s()
        else:
            plan.reasons["primary"] = "unavailable"  # a fallback-only gateway

        grace_until: float | None = None
        while True:
            now = self._clock()
            primary = plan.attempts.get("primary")
            fallback = plan.attempts.get("fallback")
            if primary is not None and primary.ok():
                return self._outcome(plan, primary)
            if primary is not None and primary.failed():
                plan.reasons["primary"] = primary.reason()
            elif primary is not None and now >= primary_deadline:
                plan.reasons["primary"] = "timeout"
            if fallback is not None and fallback.ok():
                primary_pending = primary is not None and "primary" not in plan.reasons
                if primary_pending and grace_until is None:
                    grace_until = now + self.settings.primary_grace_ms / 1000
                if not primary_pending or now >= grace_until:
                    plan.reasons.setdefault("primary", "timeout")
                    return self._outcome(plan, fallback)
            if fallback is not None and fallback.failed():
                plan.reasons["fallback"] = fallback.reason()

            if fallback is None and self.fallback is not None and "fallback" not in plan.reasons:
                primary_gone = "primary" in plan.reasons
                hedge_due = hedge_at is not None and now >= hedge_at
                if primary_gone or (hedge_due and (probing or self.hedges.allows())):
                    admission = self.fallback.breaker.admit()
                    if admission is None:
                        plan.reasons["fallback"] = "circuit_open"
                    else:
                        plan.hedged = not primary_gone
                        plan.attempts["fallback"] = self._start(self.fallback, admission, image, tensors,
                                                                deadline - now)
                        continue
                elif hedge_due:
                    hedge_at = None  # over the hedging cap: wait for the primary alone

            pending = [a for role, a in plan.attempts.items() if not a.future.done() and role not in plan.reasons]
            fallback_possible = self.fallback is not None and "fallback" not in plan.reasons
            if not pending and not (fallback_possible and "fallback" not in plan.attempts):
                raise self._failure(plan)
            if now >= deadline:
                plan.reasons.setdefault("fallback", "timeout")
                raise self._failure(plan)
            wake = [deadline]
            if primary is not None and "primary" not in plan.reasons:
                wake.append(primary_deadline)
            if hedge_at is not None and "fallback" not in plan.attempts:
                wake.append(hedge_at)
            if grace_until is not None:
                wake.append(grace_until)
            wait([a.future for a in pending], timeout=max(0.0, min(wake) - now), return_when=FIRST_COMPLETED)

    def _start(self, backend: Backend, admission: Admission, image: Image.Image, tensors: dict,
               timeout_s: float) -> _Attempt:
        started = self._clock()
        policy = backend.settings.policy
        if policy not in tensors:
            tensors[policy] = to_tensor(image, policy)
        preprocess_ms = (self._clock() - started) * 1000
        sent = self._clock()
        future = backend.client.submit(tensors[policy], max(timeout_s - preprocess_ms / 1000, 0.001))

        def report(done: Future) -> None:
            latency = self._clock() - sent
            error = done.exception()
            if error is None:
                backend.breaker.record_success(admission, latency)
                self.metrics.backend_latency.labels(backend.role, "ok").observe(latency)
            else:
                reason = failure_reason(error)
                backend.breaker.record_failure(admission, reason)
                self.metrics.backend_latency.labels(backend.role, reason).observe(latency)

        future.add_done_callback(report)
        return _Attempt(backend, future, sent, preprocess_ms)

    def _outcome(self, plan: _Plan, winner: _Attempt) -> Outcome:
        self.hedges.record(plan.hedged)
        is_fallback = winner.backend.role == "fallback"
        reason = plan.reasons.get("primary") if is_fallback else None
        if is_fallback:
            self.metrics.fallbacks.labels(reason or "unknown").inc()
        if plan.hedged:
            self.metrics.hedges.labels(winner.backend.role).inc()
        prediction = winner.future.result()
        return Outcome(
            probabilities=prediction.probabilities[0],
            version=prediction.version,
            backend=winner.backend.settings,
            fallback=is_fallback,
            fallback_reason=reason,
            hedged=plan.hedged,
            preprocess_ms=sum(a.preprocess_ms for a in plan.attempts.values()),
            infer_ms=(self._clock() - winner.started) * 1000,
        )

    def _failure(self, plan: _Plan) -> AllBackendsFailed:
        self.hedges.record(plan.hedged)
        waits = [b.breaker.retry_in_s for b in (self.primary, self.fallback) if b is not None]
        return AllBackendsFailed(dict(plan.reasons), retry_after_s=max(1.0, min(waits, default=1.0)))
