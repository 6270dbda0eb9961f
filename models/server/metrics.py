"""The model server's Prometheus metrics: TF-Serving's names and exposition, plus the interpreter pool.

TF-Serving (tensorflow_serving/servables/tensorflow/util.cc:54-89, batching/batching_util.h:115-155)
names metrics like ``/tensorflow/serving/request_count``; its exporter
(util/prometheus_exporter.cc:53-62) turns every character outside [a-zA-Z0-9_] into ':', so
Prometheus sees ``:tensorflow:serving:request_count``. Its counters keep their name (no ``_total``)
and its latencies are microseconds, so we render those families the way that exporter does
(lines 65-136), and a dashboard or rule written for TF-Serving reads this server unchanged.
What TF-Serving has no metric for (interpreter pool saturation, load state) uses Prometheus naming
under ``litert_`` and prometheus_client.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# monitoring::Buckets::Exponential(scale, growth, count) has the limits scale * growth**i for
# i < count, then DBL_MAX (rendered "+Inf"); util.cc:56-59 spells the count out for one case.
LATENCY_US_LIMITS = tuple(10 * 1.8**i for i in range(33))  # util.cc:78 and :89, about 20 minutes
BATCH_SIZE_LIMITS = tuple(float(2**i) for i in range(14))  # batching_util.h:125, 1 .. 8192
QUEUING_US_LIMITS = tuple(100 * 1.2**i for i in range(52))  # batching_session.cc:63, about a second
_WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STATES = ("START", "LOADING", "AVAILABLE", "UNLOADING", "END")  # TF-Serving's ModelVersionStatus states
# Clients choose the model name of a request; past this many unknown names the rest share one label
# value, so a client cannot grow the exposition without bound.
MAX_UNKNOWN_NAMES = 20
OTHER_NAMES = "(other)"


def _number(value: float) -> str:
    """absl::StrCat(double): six significant digits, as the exporter prints limits and sums."""
    return format(value, ".6g")


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for v in values)
    return ",".join(f'{n}="{v}"' for n, v in zip(names, escaped, strict=True))


@dataclass
class _Counter:
    name: str
    label_names: tuple[str, ...]
    cells: dict[tuple[str, ...], int] = field(default_factory=dict)

    def add(self, labels: tuple[str, ...]) -> None:
        self.cells[labels] = self.cells.get(labels, 0) + 1

    def render(self) -> list[str]:
        lines = [f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{{{_labels(self.label_names, k)}}} {v}" for k, v in sorted(self.cells.items())]
        return lines


@dataclass
class _Sampler:
    """monitoring::Sampler: per-bucket counts, a value landing in the first bucket whose limit
    exceeds it (std::upper_bound, as tensorflow/core/lib/histogram does)."""

    name: str
    label_names: tuple[str, ...]
    limits: tuple[float, ...]
    cells: dict[tuple[str, ...], tuple[list[int], list[float]]] = field(default_factory=dict)

    def add(self, labels: tuple[str, ...], value: float) -> None:
        counts, total = self.cells.setdefault(labels, ([0] * (len(self.limits) + 1), [0.0]))
        counts[bisect_right(self.limits, value)] += 1
        total[0] += value

    def render(self) -> list[str]:
        lines = [f"# TYPE {self.name} histogram"]
        for key, (counts, total) in sorted(self.cells.items()):
            labels = _labels(self.label_names, key)
            prefix = f"{self.name}_bucket{{{labels}{',' if labels else ''}"
            cumulative = 0
            for limit, count in zip((*map(_number, self.limits), "+Inf"), counts, strict=True):
                cumulative += count
                lines.append(f'{prefix}le="{limit}"}} {cumulative}')
            lines += [f"{self.name}_sum{{{labels}}} {_number(total[0])}", f"{self.name}_count{{{labels}}} {cumulative}"]
        return lines


class _ModelStateCollector(Collector):
    def __init__(self, model_name: str, state: Callable[[], str], interpreters: Callable[[], int]):
        self.model_name, self.state, self.interpreters = model_name, state, interpreters

    def collect(self) -> Iterator[GaugeMetricFamily]:
        current = self.state()
        state = GaugeMetricFamily(
            "litert_model_state", "1 for the model's current TF-Serving load state", labels=["model_name", "state"]
        )
        for name in STATES:
            state.add_metric([self.model_name, name], float(name == current))
        yield state
        pool = GaugeMetricFamily("litert_interpreters", "Interpreters in the pool", labels=["model_name"])
        pool.add_metric([self.model_name], self.interpreters())
        yield pool


class ServerMetrics:
    """Every metric of one model server process, recorded from any thread."""

    def __init__(self, model_name: str):
        self.model_name = model_name
        self._lock = threading.Lock()
        self._unknown_names: set[str] = set()
        self._request_count = _Counter(":tensorflow:serving:request_count", ("model_name", "status"))
        self._request_latency = _Sampler(
            ":tensorflow:serving:request_latency", ("model_name", "API", "entrypoint"), LATENCY_US_LIMITS
        )
        self._runtime_latency = _Sampler(
            ":tensorflow:serving:runtime_latency", ("model_name", "API", "runtime"), LATENCY_US_LIMITS
        )
        # Without batching each request's batch is the batch the interpreter runs, so both of
        # TF-Serving's batch-size histograms see the same sizes; with it, processed sizes are the
        # merged and padded batches (batching_session.cc:481, :504-506).
        self._input_batch = _Sampler(":tensorflow:serving:batching_session:input_batch_size", (), BATCH_SIZE_LIMITS)
        self._processed_batch = _Sampler(
            ":tensorflow:serving:batching_session:processed_batch_size", (), BATCH_SIZE_LIMITS
        )
        self._padding = _Sampler(
            ":tensorflow:serving:batching_session:padding_size", ("execution_batch_size",), BATCH_SIZE_LIMITS
        )
        self._queuing = _Sampler(  # batching_session.cc:59-64: microseconds, Exponential(100, 1.2, 52)
            ":tensorflow:serving:batching_session:queuing_latency", ("thread_pool_name",), QUEUING_US_LIMITS
        )
        self.registry = CollectorRegistry()
        r = self.registry
        self._busy = Gauge(
            "litert_interpreters_busy", "Interpreters running an inference", ["model_name"], registry=r
        ).labels(model_name)
        self._waiting = Gauge(
            "litert_interpreter_waiting_requests", "Requests waiting for a free interpreter", ["model_name"], registry=r
        ).labels(model_name)
        self._wait = Histogram(
            "litert_interpreter_wait_seconds",
            "Time a request waited for a free interpreter",
            ["model_name"],
            buckets=_WAIT_BUCKETS,
            registry=r,
        ).labels(model_name)

    def watch(self, state: Callable[[], str], interpreters: Callable[[], int]) -> None:
        """Report the load state and the interpreters of every loaded version, both read at each scrape."""
        self.registry.register(_ModelStateCollector(self.model_name, state, interpreters))

    def record_request(self, model_name: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        """As TF-Serving: every request is counted by status, only successful ones are timed."""
        with self._lock:
            if model_name != self.model_name and model_name not in self._unknown_names:
                if len(self._unknown_names) < MAX_UNKNOWN_NAMES:
                    self._unknown_names.add(model_name)
                else:
                    model_name = OTHER_NAMES
            self._request_count.add((model_name, status))
            if status == "OK":
                self._request_latency.add((model_name, api, entrypoint), seconds * 1e6)

    @contextmanager
    def waiting_for_interpreter(self) -> Iterator[None]:
        started = time.perf_counter()
        self._waiting.inc()
        try:
            yield
        finally:
            self._waiting.dec()
            self._wait.observe(time.perf_counter() - started)

    @contextmanager
    def invocation(self, batch_size: int) -> Iterator[None]:
        """One interpreter call on ``batch_size`` images (merged and padded when batching)."""
        started = time.perf_counter()
        self._busy.inc()
        try:
            yield
        finally:
            self._busy.dec()
            with self._lock:
                self._runtime_latency.add((self.model_name, "Predict", "LiteRT"), (time.perf_counter() - started) * 1e6)
                self._processed_batch.add((), batch_size)

    def record_input_batch(self, batch_size: int) -> None:
        """A request's own batch size, before any merging."""
        with self._lock:
            self._input_batch.add((), batch_size)

    def record_padding(self, padding: int, execution_batch_size: int) -> None:
        with self._lock:
            self._padding.add((str(execution_batch_size),), padding)

    def record_queuing(self, thread_pool_name: str, seconds: float) -> None:
        with self._lock:
            self._queuing.add((thread_pool_name,), seconds * 1e6)

    def exposition(self) -> bytes:
        with self._lock:
            families = (
                self._request_count,
                self._request_latency,
                self._runtime_latency,
                self._input_batch,
                self._processed_batch,
                self._padding,
                self._queuing,
            )
            tfserving = "\n".join(line for family in families for line in family.render()) + "\n"
        return tfserving.encode() + generate_latest(self.registry)
