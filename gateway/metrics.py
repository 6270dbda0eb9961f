"""Prometheus metrics, one registry per app (so tests can build several apps in one process).

Names follow Prometheus conventions: a ``gateway_`` namespace, base units in the name (seconds),
``_total`` on counters (prometheus_client appends it), the HTTP status in a ``code`` label.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# The label values known in advance start at 0, so ratios and rates exist before the first fallback
# (Prometheus's instrumentation advice: avoid missing metrics).
FALLBACK_REASONS = ("timeout", "unavailable", "error", "circuit_open")
_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
# A URL fetch ends "ok" or with the code of its error (gateway/errors.py), a fixed set.
URL_FETCH_OUTCOMES = ("ok", "invalid_url", "url_not_allowed", "url_too_large", "url_fetch_failed", "url_fetch_timeout")
# URL_FETCH_TIMEOUT_MS is at most 120 s.
_FETCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_IMAGES_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)  # MAX_BATCH_IMAGES <= 1024


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gateway_classify_requests",
            "Classification requests by HTTP status and answering model",
            ["code", "model"],
            registry=r,
        )
        self.fallbacks = Counter(
            "gateway_fallback_answers", "Answers given by the fallback, by reason", ["reason"], registry=r
        )
        for reason in FALLBACK_REASONS:
            self.fallbacks.labels(reason)
        self.hedges = Counter(
            "gateway_hedged_requests", "Requests that also asked the fallback, by winner", ["winner"], registry=r
        )
        self.shed = Counter(
            "gateway_shed_requests", "Requests refused with 503 because too many were in flight", registry=r
        )
        self.stage_latency = Histogram(
            "gateway_stage_duration_seconds", "Gateway time per stage", ["stage"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.backend_latency = Histogram(
            "gateway_backend_request_duration_seconds",
            "Model calls by backend and outcome",
            ["backend", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("gateway_requests_in_flight", "Requests being processed", registry=r)
        self.in_flight_limit = Gauge(
            "gateway_requests_in_flight_limit",
            "MAX_IN_FLIGHT: past this many requests in flight the gateway sheds",
            registry=r,
        )
        self.deadline = Gauge(
            "gateway_request_deadline_seconds", "REQUEST_DEADLINE_MS, the budget of one request", registry=r
        )
        self.circuit_state = Gauge(
            "gateway_circuit_state", "Circuit breaker state (0 closed, 1 half-open, 2 open)", ["backend"], registry=r
        )
        self.circuit_transitions = Counter(
            "gateway_circuit_transitions", "Circuit breaker transitions, by new state", ["backend", "state"], registry=r
        )
        self.url_fetch = Histogram(
            "gateway_url_fetch_duration_seconds",
            "Image fetches by URL, by outcome (ok or the error code); _count counts them",
            ["outcome"],
            buckets=_FETCH_BUCKETS,
            registry=r,
        )
        for outcome in URL_FETCH_OUTCOMES:
            self.url_fetch.labels(outcome)
        self.request_images = Histogram(
            "gateway_classify_request_images",
            "Images named by one classify request (uploaded or by URL), usable or not",
            buckets=_IMAGES_BUCKETS,
            registry=r,
        )

    def observe_url_fetch(self, outcome: str, seconds: float) -> None:
        self.url_fetch.labels(outcome).observe(seconds)
