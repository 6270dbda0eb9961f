from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from models.server.batcher import EXPIRED_IN_QUEUE, Batcher
from models.server.batching_parameters import BatchingParameters
from models.server.errors import InvalidArgument, ResourceExhausted, Unavailable
from models.server.metrics import ServerMetrics

PARAMETERS = BatchingParameters(
    max_batch_size=4,
    batch_timeout_micros=1000,
    max_enqueued_batches=2,
    num_batch_threads=1,
    thread_pool_name="batch_threads",
    allowed_batch_sizes=(),
    pad_variable_length_inputs=False,
    large_batch_splitting=False,
    max_execution_batch_size=4,
)


class Model:
    """Stands in for the interpreter pool: records each batch; answers each image's first pixel."""

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.copy())
        return batch[:, 0, 0, :1].astype(np.float32)


def images(*values: int, size: int = 2) -> np.ndarray:
    return np.stack([np.full((size, size, 3), v, dtype=np.uint8) for v in values])


@pytest.fixture
def model() -> Model:
    return Model()


def batcher(clock, model: Model, **changes) -> Batcher:
    return Batcher(replace(PARAMETERS, **changes), model, ServerMetrics("m"), clock=clock, threads=False)


def answers(task) -> list[float]:
    assert task.error is None, task.error
    return task.result[:, 0].tolist()


def test_requests_merge_into_one_call_and_split_back_by_images(clock, model):
    b = batcher(clock, model)
    first, second = b.schedule(images(1), None), b.schedule(images(2, 3), None)
    assert b.ready_batch() is None  # neither full nor timed out
    clock.now += 0.001
    tasks = b.ready_batch()
    assert tasks is not None
    b.process(tasks)
    assert [len(batch) for batch in model.batches] == [3]
    assert answers(first[0]) == [1] and answers(second[0]) == [2, 3]


def test_a_full_batch_is_ready_before_the_timeout(clock, model):
    b = batcher(clock, model)
    b.schedule(images(1, 2), None)
    b.schedule(images(3, 4), None)
    tasks = b.ready_batch()
    assert tasks is not None and sum(t.size for t in tasks) == 4


def test_a_request_that_does_not_fit_closes_the_open_batch(clock, model):
    b = batcher(clock, model)
    b.schedule(images(1, 2, 3), None)
    b.schedule(images(4, 5), None)  # 3 + 2 > 4: the first batch closes and is ready at once
    tasks = b.ready_batch()
    assert tasks is not None and [t.size for t in tasks] == [3]
    assert b.ready_batch() is None


def test_a_full_queue_refuses_with_tfservings_error(clock, model):
    b = batcher(clock, model)
    b.schedule(images(1, 2, 3), None)
    b.schedule(images(4, 5), None)  # two batches: the queue is at max_enqueued_batches
    b.schedule(images(6, 7), None)  # still fits the open batch
    with pytest.raises(Unavailable, match="queue to which this task was submitted is full; currently 2 batches"):
        b.schedule(images(8), None)


def test_a_request_larger_than_max_batch_size_is_refused(clock, model):
    with pytest.raises(InvalidArgument, match="Task size 5 is larger than maximum input batch size 4"):
        batcher(clock, model).schedule(images(1, 2, 3, 4, 5), None)


def test_large_batch_splitting_spreads_a_request_over_batches(clock, model):
    b = batcher(
        clock, model, max_batch_size=8, max_execution_batch_size=2, large_batch_splitting=True, max_enqueued_batches=4
    )
    b.schedule(images(1), None)
    tasks = b.schedule(images(2, 3, 4, 5, 6), None)
    assert [t.size for t in tasks] == [1, 2, 2]  # fills the open batch first
    clock.now += 1
    while (ready := b.ready_batch()) is not None:
        b.process(ready)
    assert [len(batch) for batch in model.batches] == [2, 2, 2]
    assert [v for t in tasks for v in answers(t)] == [2, 3, 4, 5, 6]


def test_splitting_refuses_what_the_queue_cannot_hold(clock, model):
    b = batcher(clock, model, max_batch_size=8, max_execution_batch_size=2, large_batch_splitting=True)
    b.schedule(images(1), None)
    with pytest.raises(Unavailable, match="task size is 4 but scheduling capacity is only 3"):
        b.schedule(images(2, 3, 4, 5), None)


def test_a_request_whose_deadline_passed_in_the_queue_is_not_run(clock, model):
    b = batcher(clock, model)
    late = b.schedule(images(1), deadline=clock.now + 0.0005)
    on_time = b.schedule(images(2), deadline=clock.now + 1)
    clock.now += 0.001
    b.process(b.ready_batch() or [])
    assert isinstance(late[0].error, ResourceExhausted) and late[0].error.message == EXPIRED_IN_QUEUE
    assert answers(on_time[0]) == [2]
    assert [batch[:, 0, 0, 0].tolist() for batch in model.batches] == [[2]]


def test_a_batch_of_expired_requests_runs_nothing(clock, model):
    b = batcher(clock, model)
    b.schedule(images(1), deadline=clock.now)
    clock.now += 0.001
    b.process(b.ready_batch() or [])
    assert model.batches == []


def test_batches_are_padded_to_allowed_sizes_with_the_last_tasks_first_row(clock, model):
    b = batcher(clock, model, allowed_batch_sizes=(1, 2, 4))
    first, second = b.schedule(images(1), None), b.schedule(images(2, 3), None)
    clock.now += 0.001
    b.process(b.ready_batch() or [])
    assert model.batches[0][:, 0, 0, 0].tolist() == [1, 2, 3, 2]
    assert answers(first[0]) == [1] and answers(second[0]) == [2, 3]


def test_requests_of_different_image_shapes_are_not_merged(clock, model):
    b = batcher(clock, model)
    b.schedule(images(1, size=2), None)
    b.schedule(images(2, size=3), None)
    clock.now += 0.001
    while (ready := b.ready_batch()) is not None:
        b.process(ready)
    assert [batch.shape[1] for batch in model.batches] == [2, 3]


def test_a_failing_batch_fails_each_of_its_requests_with_the_reason(clock):
    def broken(_batch: np.ndarray) -> np.ndarray:
        raise RuntimeError("interpreter failed")

    b = Batcher(PARAMETERS, broken, ServerMetrics("m"), clock=clock, threads=False)
    tasks = b.schedule(images(1), None) + b.schedule(images(2), None)
    clock.now += 0.001
    b.process(b.ready_batch() or [])
    assert [t.error.message for t in tasks if t.error] == ["RuntimeError: interpreter failed"] * 2


def test_batch_threads_merge_requests_that_arrive_while_they_are_busy():
    """Timeout 0: no waiting for company, yet requests queued behind a running batch share the next."""
    started, release = threading.Event(), threading.Event()
    sizes: list[int] = []

    def slow(batch: np.ndarray) -> np.ndarray:
        sizes.append(len(batch))
        started.set()
        release.wait(10)
        return batch[:, 0, 0, :1].astype(np.float32)

    b = Batcher(replace(PARAMETERS, batch_timeout_micros=0), slow, ServerMetrics("m"))
    try:
        results: list[np.ndarray] = []
        callers = [threading.Thread(target=lambda v=v: results.append(b.predict(images(v), None))) for v in range(4)]
        callers[0].start()
        assert started.wait(10)
        for caller in callers[1:]:
            caller.start()
        while sum(t.size for batch in b._batches for t in batch.tasks) < 3:
            threading.Event().wait(0.001)
        release.set()
        for caller in callers:
            caller.join(10)
        assert sizes == [1, 3] and sorted(r[0, 0] for r in results) == [0, 1, 2, 3]
    finally:
        release.set()
        b.close()


def test_after_close_a_late_request_runs_alone_in_its_callers_thread(model):
    b = Batcher(PARAMETERS, model, ServerMetrics("m"))
    b.close()
    assert b.predict(images(7, 8), None)[:, 0].tolist() == [7, 8]
    assert [len(batch) for batch in model.batches] == [2]
