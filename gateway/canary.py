"""Canary of a new primary version: a share of primary calls goes to TF-Serving's ``canary`` label,
the rest to ``stable``; the canary is judged against stable over a sliding window and rolled back
by itself when it is worse by the configured margins.

Every canary call is mirrored to ``stable``. The client gets the canary's answer when it comes in
time, and stable's otherwise (canary failed, or still silent ``grace`` after stable answered), so a
broken canary never fails a client request; the two answers' top-1 classes give the disagreement
rate. Per window: error rate, fallback rate (the arm's answer did not serve the client), p95
latency, disagreement. Rolling back sets the share to 0 (the state /readyz shows, a metric and one
log line); only a restart re-enables it, after the operator has acted (README, "Canary").
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.clients import ModelClient, Prediction, failure_reason
from gateway.settings import BackendSettings, CanarySettings

log = logging.getLogger(__name__)
STABLE, CANARY = "stable", "canary"


@dataclass(frozen=True)
class _Sample:
    at: float
    ok: bool
    latency_s: float
    served: bool  # this arm's answer went to the client


class CanaryJudge:
    """The sliding window of both arms, and the decision to roll back."""

    def __init__(self, settings: CanarySettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self.share = settings.share
        self.state = "active"
        self.reason: str | None = None
        self._samples: dict[str, deque[_Sample]] = {STABLE: deque(), CANARY: deque()}
        self._agreements: deque[tuple[float, bool]] = deque()
        self._lock = threading.Lock()

    def _trim(self, now: float) -> None:
        start = now - self.settings.window_s
        for samples in self._samples.values():
            while samples and samples[0].at < start:
                samples.popleft()
        while self._agreements and self._agreements[0][0] < start:
            self._agreements.popleft()

    def record(self, arm: str, ok: bool, latency_s: float, served: bool) -> str | None:
        """Add one call's outcome; returns the rollback reason when this outcome triggers it."""
        with self._lock:
            now = self.clock()
            self._samples[arm].append(_Sample(now, ok, latency_s, served))
            return self._judge(now)

    def record_agreement(self, same_top1: bool) -> str | None:
        with self._lock:
            now = self.clock()
            self._agreements.append((now, same_top1))
            return self._judge(now)

    def _judge(self, now: float) -> str | None:
        self._trim(now)
        if self.state != "active":
            return None
        s = self.settings
        canary, stable = self._stats(CANARY), self._stats(STABLE)
        if canary["requests"] < s.min_requests:
            return None
        reason = None
        if canary["error_rate"] - stable["error_rate"] > s.max_error_rate_increase:
            reason = f"error rate {canary['error_rate']:.2f} vs stable {stable['error_rate']:.2f}"
        elif canary["fallback_rate"] - stable["fallback_rate"] > s.max_fallback_rate_increase:
            reason = f"fallback rate {canary['fallback_rate']:.2f} vs stable {stable['fallback_rate']:.2f}"
        elif (
            canary["p95_ms"] is not None
            and stable["p95_ms"] is not None
            and canary["p95_ms"] > stable["p95_ms"] * s.max_p95_ratio + s.p95_slack_s * 1000
        ):
            reason = f"p95 {canary['p95_ms']:.0f} ms vs stable {stable['p95_ms']:.0f} ms"
        elif len(self._agreements) >= s.min_requests and self._disagreement() > s.max_disagreement:
            reason = f"top-1 disagreement {self._disagreement():.2f}"
        if reason is not None:
            self.share, self.state, self.reason = 0.0, "rolled_back", reason
        return reason

    def _disagreement(self) -> float:
        return sum(not same for _, same in self._agreements) / len(self._agreements) if self._agreements else 0.0

    def _stats(self, arm: str) -> dict:
        samples = self._samples[arm]
        n = len(samples)
        latencies = [x.latency_s for x in samples if x.ok]
        return {
            "requests": n,
            "error_rate": sum(not x.ok for x in samples) / n if n else 0.0,
            "fallback_rate": sum(not x.served for x in samples) / n if n else 0.0,
            "p95_ms": float(np.percentile(latencies, 95)) * 1000 if latencies else None,
        }

    def snapshot(self) -> dict:
        with self._lock:
            self._trim(self.clock())
            return {
                "state": self.state,
                "share": self.share,
                "reason": self.reason,
                "window_s": self.settings.window_s,
                STABLE: self._stats(STABLE),
                CANARY: self._stats(CANARY),
                "disagreement": self._disagreement(),
                "compared": len(self._agreements),
            }


class CanaryClient:
    """The primary's client as the router sees it: splits calls between the labels and judges them."""

    def __init__(
        self,
        inner: ModelClient,
        settings: CanarySettings,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
    ):
        self.inner = inner
        self.settings: BackendSettings = inner.settings
        self.canary = settings
        self.judge = CanaryJudge(settings, clock)
        self.clock = clock
        self.draw = draw
        self._share = Gauge(
            "gateway_canary_share", "Share of primary calls sent to the canary label", registry=registry
        )
        self._share.set(settings.share)
        self._rollbacks = Counter("gateway_canary_rollbacks", "Automatic canary rollbacks", registry=registry)
        self._calls = Counter(
            "gateway_canary_calls",
            "Primary calls by version label and outcome",
            ["label", "outcome"],
            registry=registry,
        )

    def submit(
        self, batch: np.ndarray, timeout_s: float, label: str | None = None, caller_waits: bool = False
    ) -> Future[Prediction]:
        if self.draw() >= self.judge.share:
            return self._call(STABLE, batch, timeout_s, served=True, caller_waits=caller_waits)
        return self._mirrored(batch, timeout_s)  # two calls at once: never on the caller's thread

    def _call(
        self, arm: str, batch: np.ndarray, timeout_s: float, served: bool | None, caller_waits: bool = False
    ) -> Future[Prediction]:
        """One call to ``arm``'s label, recorded when it ends (``served`` None: decided by the caller)."""
        started = self.clock()
        future = self.inner.submit(batch, timeout_s, arm, caller_waits)
        if served is not None:
            future.add_done_callback(lambda f: self._record(arm, f, self.clock() - started, served))
        return future

    def _record(self, arm: str, future: Future, latency_s: float, served: bool) -> None:
        error = future.exception()
        self._calls.labels(arm, "ok" if error is None else failure_reason(error)).inc()
        self._verdict(self.judge.record(arm, error is None, latency_s, served and error is None))

    def _verdict(self, reason: str | None) -> None:
        if reason is None:
            return
        self._share.set(0)
        self._rollbacks.inc()
        log.warning("canary rolled back: %s; all primary calls go to label stable", reason)

    def _mirrored(self, batch: np.ndarray, timeout_s: float) -> Future[Prediction]:
        result: Future[Prediction] = Future()
        lock = threading.Lock()
        started = self.clock()
        stable = self._call(STABLE, batch, timeout_s, served=None)
        canary = self._call(CANARY, batch, timeout_s, served=None)
        finished: list[str] = []

        def answer(source: Future) -> bool:
            """Give ``source``'s outcome to the client unless someone already has."""
            with lock:
                if result.done():
                    return False
                error = source.exception()
                if error is None:
                    result.set_result(source.result())
                else:
                    result.set_exception(error)
                return True

        def compare_when_both_done(arm: str) -> None:
            with lock:
                finished.append(arm)
                if len(finished) < 2 or stable.exception() is not None or canary.exception() is not None:
                    return
            top_stable = np.argmax(stable.result().probabilities, axis=1)
            top_canary = np.argmax(canary.result().probabilities, axis=1)
            self._verdict(self.judge.record_agreement(bool((top_stable == top_canary).all())))

        def stable_done(done: Future) -> None:
            self._record(STABLE, done, self.clock() - started, served=True)  # it could serve: as stable calls
            if canary.done() and canary.exception() is not None:
                answer(done)
            elif not canary.done():
                timer = threading.Timer(self.canary.grace_s, answer, (done,))
                timer.daemon = True
                timer.start()
            compare_when_both_done(STABLE)

        def canary_done(done: Future) -> None:
            latency = self.clock() - started
            served = done.exception() is None and answer(done)
            if done.exception() is not None and stable.done():
                answer(stable)
            self._record(CANARY, done, latency, served)
            compare_when_both_done(CANARY)

        stable.add_done_callback(stable_done)
        canary.add_done_callback(canary_done)
        return result

    def status(self, timeout_s: float) -> str:
        return self.inner.status(timeout_s)

    def close(self) -> None:
        self.inner.close()
