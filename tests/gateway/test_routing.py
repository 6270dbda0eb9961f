"""The routing policy with stand-in clients: budgets, fallback reasons, hedging, grace, breakers.

Time is virtual (``SteppedClock``): a stand-in answers exactly when its delay is up, so each test
asserts when the answer came rather than a range wide enough for a busy machine."""

import pytest
from PIL import Image

from gateway import routing
from gateway.breaker import CircuitBreaker, State
from gateway.errors import DeadlineExceeded
from gateway.metrics import Metrics
from gateway.routing import AllBackendsFailed, Backend, Router
from gateway.settings import Settings
from tests.gateway.fakes import FakeClient, SteppedClock

PRIMARY_TOP, FALLBACK_TOP = 1, 2
IMAGE = Image.new("RGB", (300, 300), (100, 50, 25))
BASE_ENV = {
    "PRIMARY_URL": "grpc://primary:8500",
    "PRIMARY_MODEL": "wrn",
    "FALLBACK_URL": "grpc://fallback:8500",
    "FALLBACK_MODEL": "mobilenet",
    "REQUEST_DEADLINE_MS": "1000",
    "FALLBACK_RESERVE_MS": "300",
    "HEDGE": "false",
    "BREAKER_FAILURES": "3",
    "BREAKER_LATENCY_MS": "0",
}


def hedging(min_ms, max_ms, fraction, **env):
    """Settings that turn hedging on with the primary's p95 clamped to [min_ms, max_ms]."""
    return {
        "HEDGE": "true",
        "HEDGE_MIN_MS": str(min_ms),
        "HEDGE_MAX_MS": str(max_ms),
        "HEDGE_MAX_FRACTION": str(fraction),
        **env,
    }


def make_router(primary=None, fallback=None, **env):
    settings = Settings.from_env({**BASE_ENV, **env})
    clock = SteppedClock()
    backends = {}
    for role, spec in (("primary", primary), ("fallback", fallback)):
        backend_settings = getattr(settings, role)
        if spec is None or backend_settings is None:
            continue
        client = FakeClient(backend_settings, PRIMARY_TOP if role == "primary" else FALLBACK_TOP, clock=clock, **spec)
        breaker = CircuitBreaker(role, settings.breaker.failures, 60, 60, clock=clock)
        backends[role] = Backend(backend_settings, client, breaker)
    return Router(settings, backends, Metrics(), clock=clock, wait=clock.wait), backends


def classify(router):
    started = router.clock()
    outcome = router.classify([IMAGE], deadline=started + router.settings.deadline_s)
    return outcome, router.clock() - started


def test_healthy_primary_answers():
    router, _ = make_router({"delay_s": 0.01}, {"delay_s": 0.01})
    outcome, _ = classify(router)
    assert (outcome.fallback, outcome.fallback_reason, outcome.hedged) == (False, None, False)
    assert outcome.probabilities.argmax() == PRIMARY_TOP and outcome.backend.model == "wrn"


@pytest.mark.parametrize("error", ["error", "unavailable"])
def test_failing_primary_falls_back_with_the_reason(error):
    router, _ = make_router({"error": error}, {"delay_s": 0.01})
    outcome, elapsed = classify(router)
    assert (outcome.fallback, outcome.fallback_reason) == (True, error)
    assert outcome.probabilities.argmax() == FALLBACK_TOP
    assert elapsed == pytest.approx(0.01), "the fallback is asked as soon as the primary fails"


def test_hanging_primary_times_out_within_its_budget_and_the_fallback_keeps_its_reserve():
    router, backends = make_router({"delay_s": 5}, {"delay_s": 0.01})
    outcome, elapsed = classify(router)
    assert (outcome.fallback, outcome.fallback_reason) == (True, "timeout")
    assert backends["primary"].client.timeouts[0] <= 0.7 + 1e-6  # 1000 ms deadline - 300 ms reserve
    assert elapsed == pytest.approx(0.71), "primary budget 0.7 s, then the fallback's 10 ms"


def test_primary_may_use_the_reserve_while_the_fallback_circuit_is_open():
    router, backends = make_router({"delay_s": 0.85}, {"error": "unavailable"})
    for _ in range(3):
        backends["fallback"].breaker.record_failure(backends["fallback"].breaker.admit(), "unavailable")
    assert backends["fallback"].breaker.state == State.OPEN
    outcome, elapsed = classify(router)
    assert (outcome.fallback, outcome.probabilities.argmax()) == (False, PRIMARY_TOP)
    assert backends["primary"].client.timeouts[0] > 0.95, "the whole 1000 ms deadline, not 1000 - 300"
    assert backends["fallback"].client.calls == 0


def test_without_a_fallback_the_primary_gets_the_whole_deadline():
    router, backends = make_router({"delay_s": 0.85}, None)
    outcome, _ = classify(router)
    assert outcome.fallback is False and backends["primary"].client.timeouts[0] > 0.95


def test_primary_timeout_setting_caps_its_budget():
    router, backends = make_router({"delay_s": 5}, {"delay_s": 0.01}, PRIMARY_TIMEOUT_MS="200")
    outcome, elapsed = classify(router)
    assert outcome.fallback_reason == "timeout" and elapsed == pytest.approx(0.21)
    assert backends["primary"].client.timeouts[0] <= 0.2


def test_hedging_asks_the_fallback_when_the_primary_is_slow():
    router, backends = make_router({"delay_s": 0.6}, {"delay_s": 0.01}, **hedging(50, 100, 1))
    outcome, elapsed = classify(router)
    assert (outcome.fallback, outcome.fallback_reason, outcome.hedged) == (True, "timeout", True)
    # hedge at 100 ms (no p95 yet: the upper bound), fallback answers at 110 ms, 20 ms grace for the primary
    assert elapsed == pytest.approx(0.13), "hedged answer comes near the hedge delay, not the primary's budget"
    assert backends["fallback"].client.calls == 1


def test_hedge_delay_follows_the_primary_p95_within_bounds():
    router, backends = make_router(
        {"delay_s": 0.01}, {"delay_s": 0.01}, HEDGE="true", HEDGE_MIN_MS="50", HEDGE_MAX_MS="400"
    )
    assert router.hedge_delay_s() == 0.4, "no history: the upper bound"
    for _ in range(20):
        backends["primary"].breaker.latencies.add(0.12)
    assert router.hedge_delay_s() == pytest.approx(0.12)
    for _ in range(50):
        backends["primary"].breaker.latencies.add(0.01)
    assert router.hedge_delay_s() == 0.05, "clamped to the lower bound"


def test_primary_within_the_grace_window_wins_over_the_fallback():
    router, _ = make_router(
        {"delay_s": 0.14},
        {"delay_s": 0.01},
        **hedging(100, 100, 1, PRIMARY_GRACE_MS="100"),
    )
    outcome, _ = classify(router)
    assert (outcome.fallback, outcome.hedged) == (False, True)
    assert outcome.probabilities.argmax() == PRIMARY_TOP


def test_hedging_is_capped():
    router, backends = make_router(
        {"delay_s": 0.25},
        {"delay_s": 0.01},
        **hedging(20, 20, 0.02),
    )
    results = [classify(router)[0] for _ in range(5)]
    assert [r.hedged for r in results] == [True, True, False, False, False]
    assert all(not r.fallback for r in results[2:]), "unhedged requests wait for the primary"
    assert backends["fallback"].client.calls == 2


def test_open_circuit_goes_straight_to_the_fallback():
    router, backends = make_router({"error": "unavailable"}, {"delay_s": 0.01})
    for _ in range(3):
        classify(router)
    assert backends["primary"].breaker.state == State.OPEN
    calls = backends["primary"].client.calls
    outcome, elapsed = classify(router)
    assert (outcome.fallback, outcome.fallback_reason) == (True, "circuit_open")
    assert backends["primary"].client.calls == calls and elapsed == pytest.approx(0.01)


def test_both_failing_raises_with_both_reasons():
    router, _ = make_router({"error": "error"}, {"error": "unavailable"})
    with pytest.raises(AllBackendsFailed) as caught:
        classify(router)
    assert caught.value.reasons == {"primary": "error", "fallback": "unavailable"}


def test_fallback_down_with_a_healthy_primary_is_invisible():
    router, _ = make_router({"delay_s": 0.01}, {"error": "unavailable"}, HEDGE="true", HEDGE_MAX_FRACTION="1")
    outcome, _ = classify(router)
    assert outcome.fallback is False


def test_fallback_only_gateway_labels_its_answers():
    router, _ = make_router(None, {"delay_s": 0.01}, PRIMARY_URL="", PRIMARY_MODEL="")
    outcome, _ = classify(router)
    assert (outcome.fallback, outcome.fallback_reason) == (True, "unavailable")


def test_primary_only_gateway_fails_when_the_primary_fails():
    router, _ = make_router({"error": "error"}, None, FALLBACK_URL="", FALLBACK_MODEL="")
    with pytest.raises(AllBackendsFailed) as caught:
        classify(router)
    assert caught.value.reasons == {"primary": "error"}


def test_slow_fallback_cannot_exceed_the_deadline():
    router, _ = make_router({"delay_s": 5}, {"delay_s": 5})
    with pytest.raises(AllBackendsFailed) as caught:
        classify(router)
    assert caught.value.reasons["primary"] == "timeout" and caught.value.reasons["fallback"] == "timeout"


def test_a_half_open_probe_is_always_hedged():
    router, backends = make_router({"delay_s": 0.6}, {"delay_s": 0.01}, **hedging(50, 50, 0))
    breaker = backends["primary"].breaker = CircuitBreaker(
        "primary", 3, cooldown_s=0.0, max_cooldown_s=0.0, clock=router.clock
    )
    for _ in range(3):
        breaker.record_failure(breaker.admit(), "timeout")
    assert breaker.state == State.OPEN
    outcome, elapsed = classify(router)  # cool-down over: this request is the probe
    assert outcome.hedged and outcome.fallback and elapsed == pytest.approx(0.08)  # 50 ms hedge + 10 + 20 grace
    unhedged, _ = make_router({"delay_s": 0.3}, {"delay_s": 0.01}, **hedging(50, 50, 0))
    assert classify(unhedged)[0].hedged is False, "ordinary requests respect a zero cap"


@pytest.mark.parametrize(
    ("primary", "fallback", "env", "expected"),
    [
        # Hedging off: nothing can start while the primary runs, nor once it has failed.
        ({"delay_s": 0.01}, {"delay_s": 0.01}, {}, {"primary": [True], "fallback": []}),
        ({"error": "error"}, {"delay_s": 0.01}, {}, {"primary": [True], "fallback": [True]}),
        # Fallback-only and primary-only gateways: one call, waited for alone.
        (None, {"delay_s": 0.01}, {"PRIMARY_URL": "", "PRIMARY_MODEL": ""}, {"fallback": [True]}),
        ({"delay_s": 0.01}, None, {"FALLBACK_URL": "", "FALLBACK_MODEL": ""}, {"primary": [True]}),
        # Hedging on: the primary must leave the request thread free to start the hedge; the hedge
        # runs beside the still-pending primary; a fallback after the primary's failure runs alone.
        ({"delay_s": 0.6}, {"delay_s": 0.01}, hedging(50, 50, 1), {"primary": [False], "fallback": [False]}),
        ({"error": "error"}, {"delay_s": 0.01}, hedging(50, 50, 1), {"primary": [False], "fallback": [True]}),
    ],
)
def test_a_call_the_race_only_waits_for_may_run_on_the_request_thread(primary, fallback, env, expected):
    router, backends = make_router(primary, fallback, **env)
    classify(router)
    assert {role: backend.client.caller_waits for role, backend in backends.items()} == expected


def classify_with(router, left_s):
    """Classify when local work (reading, decoding) has left ``left_s`` of the deadline."""
    return router.classify([IMAGE], deadline=router.clock() + left_s)


def test_a_primary_call_without_enough_time_is_skipped_not_charged():
    """With 20 ms left for the primary (1000 ms deadline, 300 ms reserve, 680 ms of decoding) the old
    router called it anyway; the healthy primary (30 ms) timed out and three such requests opened its circuit."""
    router, backends = make_router({"delay_s": 0.03}, {"delay_s": 0.01})
    for _ in range(5):
        outcome = classify_with(router, 0.32)
        assert (outcome.fallback, outcome.fallback_reason) == (True, "timeout")
    primary = backends["primary"]
    assert primary.client.calls == 0 and primary.breaker.state == State.CLOSED
    assert primary.breaker.latencies.percentile(0, minimum=1) is None, "no latency sample either"
    assert classify(router)[0].fallback is False, "the next request with time to spare goes to the primary"


def test_preprocessing_counts_as_local_work(monkeypatch):
    """60 ms are left before preprocessing, 20 ms after it: under MIN_MODEL_CALL_MS (50), so no call."""
    router, backends = make_router({"delay_s": 0.03}, {"delay_s": 0.01}, FALLBACK_RESERVE_MS="0")
    real = routing.to_tensor

    def slow_to_tensor(image, policy):
        router.clock.now += 0.04
        return real(image, policy)

    monkeypatch.setattr(routing, "to_tensor", slow_to_tensor)
    with pytest.raises(DeadlineExceeded):
        classify_with(router, 0.06)
    assert backends["primary"].client.calls == backends["fallback"].client.calls == 0


def test_no_time_for_any_backend_is_a_deadline_error_that_charges_no_breaker():
    """The old router skipped the primary and called the fallback with 30 ms; the healthy fallback
    (40 ms) timed out, the request was `models_unavailable` and three of them opened its circuit."""
    router, backends = make_router({"delay_s": 0.04}, {"delay_s": 0.04})
    for _ in range(5):
        with pytest.raises(DeadlineExceeded) as caught:
            classify_with(router, 0.03)
        assert caught.value.status == 503 and "MIN_MODEL_CALL_MS=50" in caught.value.message
    for backend in backends.values():
        assert backend.client.calls == 0 and backend.breaker.state == State.CLOSED
    assert classify(router)[0].fallback is False


def test_a_skipped_call_leaves_the_half_open_probe_for_a_request_with_time():
    router, backends = make_router({"delay_s": 0.03}, {"delay_s": 0.01})
    breaker = backends["primary"].breaker = CircuitBreaker("primary", 3, 0.0, 0.0, clock=router.clock)
    for _ in range(3):
        breaker.record_failure(breaker.admit(), "unavailable")
    outcome = classify_with(router, 0.32)  # cool-down over, but no time for the primary
    assert outcome.fallback_reason == "timeout" and backends["primary"].client.calls == 0
    assert breaker.would_admit(), "the probe is still free"
    outcome, _ = classify(router)
    assert outcome.fallback is False and breaker.state == State.CLOSED, "the next request probed and closed it"


def test_a_call_with_the_minimum_time_that_times_out_is_the_backends_failure():
    router, backends = make_router({"delay_s": 5}, {"delay_s": 0.01}, MIN_MODEL_CALL_MS="50")
    for _ in range(3):
        outcome = classify_with(router, 0.36)  # 60 ms for the primary: enough for a healthy one
        assert outcome.fallback_reason == "timeout"
    assert backends["primary"].client.timeouts == [pytest.approx(0.06)] * 3
    assert backends["primary"].breaker.state == State.OPEN


def test_a_circuit_open_primary_and_no_time_for_the_fallback_is_models_unavailable():
    router, backends = make_router({"error": "unavailable"}, {"delay_s": 0.01})
    for _ in range(3):
        classify(router)
    with pytest.raises(AllBackendsFailed) as caught:
        classify_with(router, 0.03)
    assert caught.value.reasons == {"primary": "circuit_open", "fallback": "timeout"}
    assert backends["fallback"].client.calls == 3 and backends["fallback"].breaker.state == State.CLOSED
