"""Every circuit breaker transition, including the one a reference implementation had inverted."""

import pytest

from gateway.breaker import Admission, CircuitBreaker, LatencyWindow, State


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def transitions():
    return []


@pytest.fixture
def breaker(clock, transitions):
    return CircuitBreaker(
        "primary",
        failures=3,
        cooldown_s=2.0,
        max_cooldown_s=8.0,
        latency_bound_s=0.5,
        clock=clock,
        on_transition=lambda name, old, new: transitions.append((old, new)),
    )


def fail(breaker, times=1):
    for _ in range(times):
        admission = breaker.admit()
        assert admission is not None
        breaker.record_failure(admission, "timeout")


def test_starts_closed_and_admits(breaker):
    assert breaker.state == State.CLOSED and breaker.admit() == Admission.NORMAL


def test_opens_after_n_consecutive_failures(breaker, transitions):
    fail(breaker, 2)
    assert breaker.state == State.CLOSED
    fail(breaker)
    assert breaker.state == State.OPEN and transitions == [(State.CLOSED, State.OPEN)]


def test_a_success_resets_the_failure_count(breaker):
    fail(breaker, 2)
    breaker.record_success(breaker.admit(), 0.01)
    fail(breaker, 2)
    assert breaker.state == State.CLOSED


def test_open_refuses_without_waiting_until_the_cooldown(breaker, clock):
    fail(breaker, 3)
    assert breaker.admit() is None
    clock.now += 1.9
    assert breaker.admit() is None
    assert breaker.retry_in_s == pytest.approx(0.1)


def test_after_cooldown_exactly_one_probe_is_admitted(breaker, clock, transitions):
    fail(breaker, 3)
    clock.now += 2.0
    assert breaker.admit() == Admission.PROBE
    assert breaker.state == State.HALF_OPEN
    assert breaker.admit() is None, "a second request must not probe concurrently"
    assert transitions[-1] == (State.OPEN, State.HALF_OPEN)


def test_would_admit_answers_like_admit_without_moving_the_state(breaker, clock, transitions):
    assert breaker.would_admit()
    fail(breaker, 3)
    assert not breaker.would_admit()
    clock.now += 2.0
    assert breaker.would_admit() and breaker.state == State.OPEN, "asking must not start a probe"
    assert transitions == [(State.CLOSED, State.OPEN)]
    assert breaker.admit() == Admission.PROBE
    assert not breaker.would_admit(), "the probe is in flight"


def test_successful_probe_closes(breaker, clock, transitions):
    fail(breaker, 3)
    clock.now += 2.0
    breaker.record_success(breaker.admit(), 0.01)
    assert breaker.state == State.CLOSED and breaker.admit() == Admission.NORMAL
    assert transitions[-1] == (State.HALF_OPEN, State.CLOSED)


def test_failing_probe_keeps_it_open_with_a_longer_cooldown(breaker, clock, transitions):
    fail(breaker, 3)
    clock.now += 2.0
    probe = breaker.admit()
    breaker.record_failure(probe, "unavailable")
    assert breaker.state == State.OPEN, "a failing probe must keep the circuit open"
    assert transitions[-1] == (State.HALF_OPEN, State.OPEN)
    clock.now += 2.0
    assert breaker.admit() is None, "cool-down doubled to 4 s"
    clock.now += 2.0
    breaker.record_failure(breaker.admit(), "unavailable")
    clock.now += 8.0
    assert breaker.admit() == Admission.PROBE, "cool-down capped at 8 s"


def test_cooldown_resets_after_recovery(breaker, clock):
    fail(breaker, 3)
    clock.now += 2.0
    breaker.record_failure(breaker.admit(), "timeout")  # cool-down now 4 s
    clock.now += 4.0
    breaker.record_success(breaker.admit(), 0.01)
    fail(breaker, 3)
    clock.now += 2.0
    assert breaker.admit() == Admission.PROBE


def test_late_result_of_a_normal_request_does_not_decide_half_open(breaker, clock):
    early = breaker.admit()
    fail(breaker, 3)
    clock.now += 2.0
    probe = breaker.admit()
    breaker.record_success(early, 0.01)  # admitted before the circuit opened
    assert breaker.state == State.HALF_OPEN
    breaker.record_failure(probe, "timeout")
    assert breaker.state == State.OPEN


def test_opens_when_recent_p95_latency_exceeds_the_bound(breaker):
    for _ in range(9):
        breaker.record_success(breaker.admit(), 0.9)
    assert breaker.state == State.CLOSED, "needs 10 samples before judging latency"
    breaker.record_success(breaker.admit(), 0.9)
    assert breaker.state == State.OPEN


def test_fast_backend_stays_closed(breaker):
    for _ in range(50):
        breaker.record_success(breaker.admit(), 0.05)
    assert breaker.state == State.CLOSED


def test_latency_window():
    window = LatencyWindow(size=5)
    assert window.percentile(95, minimum=1) is None
    for value in (1, 2, 3, 4, 5, 6):
        window.add(value)
    assert window.percentile(50, minimum=5) == 4  # oldest sample dropped
