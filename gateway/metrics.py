"""Prometheus metrics, one registry per app (so tests can build several apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("classify_requests", "Classification requests by HTTP status and answering model",
                                ["status", "model"], registry=r)
        self.fallbacks = Counter("classify_fallbacks", "Answers given by the fallback, by reason", ["reason"],
                                 registry=r)
        self.hedges = Counter("classify_hedges", "Requests that also asked the fallback, by winner", ["winner"],
                              registry=r)
        self.shed = Counter("classify_shed", "Requests refused with 503 because too many were in flight", registry=r)
        self.stage_latency = Histogram("classify_stage_seconds", "Gateway time per stage", ["stage"],
                                       buckets=_LATENCY_BUCKETS, registry=r)
        self.backend_latency = Histogram("backend_request_seconds", "Model calls by backend and outcome",
                                         ["backend", "outcome"], buckets=_LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("classify_in_flight", "Requests being processed", registry=r)
        self.circuit_state = Gauge("circuit_state", "Circuit breaker state (0 closed, 1 half-open, 2 open)",
                                   ["backend"], registry=r)
        self.circuit_transitions = Counter("circuit_transitions", "Circuit breaker transitions", ["backend", "to"],
                                           registry=r)
