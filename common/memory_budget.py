"""The bytes every request in flight may hold together for its body and its decoded pixels.

A request reserves what it is about to allocate (the body it reads, then its decode's peak) before
allocating it, and gives it back when it answers. One request alone may reserve the whole budget;
while others hold it, a request waits until its deadline, so memory stays bounded however many
requests are in flight (docs/reliability.md has the arithmetic against the container limit).
"""

from __future__ import annotations

import threading
import time


class OverBudget(Exception):
    """The reservation cannot fit: ``alone`` when it exceeds the whole budget, else it timed out waiting."""

    def __init__(self, wanted: int, capacity: int, alone: bool):
        super().__init__(f"needs {wanted} bytes of a {capacity}-byte budget")
        self.wanted, self.capacity, self.alone = wanted, capacity, alone


class MemoryBudget:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._used = 0
        self._freed = threading.Condition(threading.Lock())

    @property
    def used(self) -> int:
        with self._freed:
            return self._used

    def reserve(self, nbytes: int, deadline: float) -> None:
        """Take ``nbytes``, waiting for other requests to give theirs back until ``deadline``
        (time.monotonic()); raises OverBudget when it cannot."""
        if nbytes > self.capacity:
            raise OverBudget(nbytes, self.capacity, alone=True)
        with self._freed:
            fits = self._freed.wait_for(
                lambda: self._used + nbytes <= self.capacity, max(0.0, deadline - time.monotonic())
            )
            if not fits:
                raise OverBudget(nbytes, self.capacity, alone=False)
            self._used += nbytes

    def release(self, nbytes: int) -> None:
        with self._freed:
            self._used -= nbytes
            self._freed.notify_all()


class Reservation:
    """What one request holds of a budget; ``close()`` gives all of it back."""

    def __init__(self, budget: MemoryBudget, deadline: float):
        self.budget, self.deadline, self.held = budget, deadline, 0

    def hold(self, nbytes: int) -> None:
        """Hold ``nbytes`` in total from now on: reserve what is missing, or give back the excess."""
        if nbytes > self.budget.capacity:
            raise OverBudget(nbytes, self.budget.capacity, alone=True)
        if nbytes > self.held:
            self.budget.reserve(nbytes - self.held, self.deadline)
        elif nbytes < self.held:
            self.budget.release(self.held - nbytes)
        self.held = nbytes

    def close(self) -> None:
        self.budget.release(self.held)
        self.held = 0

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
