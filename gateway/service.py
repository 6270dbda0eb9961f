"""What one gateway process holds: settings, backends, router, labels, metrics, load and drain state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from common.memory_budget import MemoryBudget
from gateway.breaker import CircuitBreaker, State
from gateway.canary import CanaryClient
from gateway.clients import ModelClient, make_client
from gateway.labels import load_labels
from gateway.metrics import Metrics
from gateway.routing import Backend, Router
from gateway.settings import BackendSettings, Settings
from gateway.url_fetch import UrlFetcher


class InFlight:
    """Counts requests being processed; refuses past the limit instead of queueing."""

    def __init__(self, limit: int):
        self.limit = limit
        self._count = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def try_enter(self) -> bool:
        with self._lock:
            if self._count >= self.limit:
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        with self._lock:
            return self._idle.wait_for(lambda: self._count == 0, timeout_s)


def _state(check: Future, timeout_s: float) -> str:
    try:
        return check.result(timeout_s)
    except FutureTimeout:  # the client's own timeout did not fire: still do not wait longer
        return "UNAVAILABLE (status call timed out)"


@dataclass
class Service:
    settings: Settings
    router: Router
    backends: dict[str, Backend]
    labels: list[str]
    metrics: Metrics
    in_flight: InFlight
    status_pool: ThreadPoolExecutor
    memory: MemoryBudget
    fetcher: UrlFetcher
    draining: threading.Event = field(default_factory=threading.Event)
    # The status call running for each backend: concurrent /readyz callers share it instead of
    # queueing behind one another on a frozen backend (7 callers took 2 s; a probe allows 2 s).
    _status_checks: dict[str, Future] = field(default_factory=dict)
    _status_lock: threading.Lock = field(default_factory=threading.Lock)
    canary: CanaryClient | None = None

    @classmethod
    def build(
        cls, settings: Settings, client_factory: Callable[[BackendSettings], ModelClient] | None = None
    ) -> Service:
        """``client_factory`` replaces the real clients (tests); by default each backend gets a
        client with one worker per request allowed in flight."""
        factory = client_factory or (lambda backend: make_client(backend, settings.max_in_flight))
        metrics = Metrics()
        metrics.in_flight_limit.set(settings.max_in_flight)
        metrics.deadline.set(settings.deadline_s)

        def transition(name: str, _old: State, new: State) -> None:
            metrics.circuit_state.labels(name).set(new.value)
            metrics.circuit_transitions.labels(name, new.name.lower()).inc()

        backends = {}
        canary = None
        policy = settings.breaker
        for backend in settings.backends:
            client = factory(backend)
            if backend.role == "primary" and settings.canary is not None:
                client = canary = CanaryClient(client, settings.canary, metrics.registry)
            breaker = CircuitBreaker(
                backend.role,
                policy.failures,
                policy.cooldown_s,
                policy.max_cooldown_s,
                policy.latency_bound_s,
                on_transition=transition,
            )
            metrics.circuit_state.labels(backend.role).set(State.CLOSED.value)
            backends[backend.role] = Backend(backend, client, breaker)
        return cls(
            settings=settings,
            router=Router(settings, backends, metrics),
            backends=backends,
            labels=load_labels(settings.labels_path),
            metrics=metrics,
            in_flight=InFlight(settings.max_in_flight),
            status_pool=ThreadPoolExecutor(max(1, len(backends)), thread_name_prefix="status"),
            memory=MemoryBudget(settings.memory_budget_bytes),
            fetcher=UrlFetcher(settings.url_fetch, observe=metrics.observe_url_fetch),
            canary=canary,
        )

    def backend_states(self) -> dict[str, dict]:
        """Each backend's status, asked at most once at a time and waited for at most STATUS_TIMEOUT_MS."""
        timeout = self.settings.status_timeout_s
        with self._status_lock:
            for role, backend in self.backends.items():
                check = self._status_checks.get(role)
                if check is None or check.done():
                    self._status_checks[role] = self.status_pool.submit(backend.client.status, timeout)
            checks = dict(self._status_checks)
        return {
            role: {
                "url": b.settings.url,
                "model": b.settings.model,
                "state": _state(checks[role], timeout),
                "circuit": b.breaker.state.name.lower(),
            }
            for role, b in self.backends.items()
        }

    def close(self) -> None:
        for backend in self.backends.values():
            backend.client.close()
        self.status_pool.shutdown(wait=False)
