from __future__ import annotations

import threading
import time

import pytest

from common.memory_budget import MemoryBudget, OverBudget, Reservation


def test_a_reservation_over_the_whole_budget_is_refused_at_once_as_alone():
    budget = MemoryBudget(100)
    started = time.monotonic()
    with pytest.raises(OverBudget) as refused:
        budget.reserve(101, time.monotonic() + 10)
    assert refused.value.alone and refused.value.wanted == 101 and refused.value.capacity == 100
    assert time.monotonic() - started < 1
    assert budget.used == 0


def test_one_reservation_may_take_the_whole_budget_and_gives_it_back():
    budget = MemoryBudget(100)
    budget.reserve(100, time.monotonic())
    assert budget.used == 100
    budget.release(100)
    assert budget.used == 0


def test_a_reservation_that_does_not_fit_beside_others_times_out_not_alone():
    budget = MemoryBudget(100)
    budget.reserve(60, time.monotonic())
    with pytest.raises(OverBudget) as refused:
        budget.reserve(50, time.monotonic() + 0.05)
    assert not refused.value.alone
    assert budget.used == 60


def test_a_waiting_reservation_goes_ahead_when_another_gives_back():
    budget = MemoryBudget(100)
    budget.reserve(60, time.monotonic())
    threading.Timer(0.05, budget.release, (60,)).start()
    budget.reserve(50, time.monotonic() + 5)
    assert budget.used == 50


def test_hold_reserves_what_is_missing_and_gives_back_the_excess():
    budget = MemoryBudget(100)
    with Reservation(budget, time.monotonic()) as reservation:
        reservation.hold(30)
        assert budget.used == 30
        reservation.hold(80)
        assert budget.used == 80
        reservation.hold(10)
        assert budget.used == 10
    assert budget.used == 0


def test_hold_over_the_whole_budget_is_refused_and_keeps_what_it_held():
    budget = MemoryBudget(100)
    with Reservation(budget, time.monotonic()) as reservation:
        reservation.hold(40)
        with pytest.raises(OverBudget) as refused:
            reservation.hold(101)
        assert refused.value.alone
        assert budget.used == 40
    assert budget.used == 0


def test_a_reservation_is_given_back_when_its_request_fails():
    budget = MemoryBudget(100)
    with pytest.raises(RuntimeError), Reservation(budget, time.monotonic()) as reservation:
        reservation.hold(70)
        raise RuntimeError("the request failed after reserving")
    assert budget.used == 0
