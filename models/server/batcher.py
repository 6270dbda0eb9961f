"""Server-side batching: concurrent requests merged into one interpreter call, as TF-Serving batches.

Modelled on TF-Serving's batching session over a SharedBatchScheduler queue (tensorflow
core/kernels/batching_util/shared_batch_scheduler.h, tensorflow_serving/batching/batching_session.cc
at 9d981c5c): the queue is a list of batches whose last one is open; a request goes into the open
batch, or closes it and opens a new one when it does not fit. A batch thread takes the oldest closed
batch, or the open one once it is full or has waited batch_timeout_micros since its first request
(0: as soon as a thread is free, so batches form only while every thread is busy). Sizes count
images, not requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.server.batching_parameters import BatchingParameters
from models.server.errors import InvalidArgument, ResourceExhausted, ServingError, Unavailable
from models.server.metrics import ServerMetrics

log = logging.getLogger(__name__)

# batching_session.cc:770-773: what a request gets when its deadline passed while it was queued.
EXPIRED_IN_QUEUE = "Run() timeout exceeded while waiting in batching queue"


@dataclass
class Task:
    """One request's images (or, with splitting, a part of them) waiting for their batch."""

    images: np.ndarray
    deadline: float | None  # on the batcher's clock; None: none
    enqueued: float
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: ServingError | None = None

    @property
    def size(self) -> int:
        return len(self.images)

    def finish(self, result: np.ndarray | None = None, error: ServingError | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


@dataclass
class _Batch:
    tasks: list[Task] = field(default_factory=list)
    size: int = 0
    opened: float = 0.0

    def fits(self, task: Task, limit: int) -> bool:
        same_shape = not self.tasks or self.tasks[0].images.shape[1:] == task.images.shape[1:]
        return same_shape and self.size + task.size <= limit


class Batcher:
    """Queue and batch threads for one served version; ``run`` runs a merged batch on the model."""

    def __init__(
        self,
        parameters: BatchingParameters,
        run: Callable[[np.ndarray], np.ndarray],
        metrics: ServerMetrics,
        clock: Callable[[], float] = time.monotonic,
        threads: bool = True,
    ):
        """``threads=False`` starts no batch thread: tests drive ``ready_batch`` and ``process``."""
        self.parameters = parameters
        self._run = run
        self._metrics = metrics
        self._clock = clock
        self._batches: deque[_Batch] = deque([_Batch()])
        self._changed = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{parameters.thread_pool_name}-{i}", daemon=True)
            for i in range(parameters.num_batch_threads if threads else 0)
        ]
        for thread in self._threads:
            thread.start()

    def predict(self, images: np.ndarray, deadline: float | None) -> np.ndarray:
        """Queue the request, wait for its batch to run, and return its rows of the result."""
        tasks = self.schedule(images, deadline)
        for task in tasks:
            task.done.wait()
        for task in tasks:
            if task.error is not None:
                raise task.error
        results = [task.result for task in tasks if task.result is not None]
        return results[0] if len(results) == 1 else np.concatenate(results)

    def schedule(self, images: np.ndarray, deadline: float | None) -> list[Task]:
        """Put a request into the queue (as one task, or several with splitting) without waiting."""
        p = self.parameters
        size = len(images)
        if size > p.max_batch_size:
            # shared_batch_scheduler.h, Queue::ValidateBatchTaskQueueCapacity
            raise InvalidArgument(f"Task size {size} is larger than maximum input batch size {p.max_batch_size}")
        self._metrics.record_input_batch(size)
        now = self._clock()
        with self._changed:
            if not self._closed:
                return self._enqueue(images, deadline, now)
        # A request that resolved this version just before it was unloaded: it runs alone, in its
        # caller's thread, so it neither waits for threads that are gone nor meets a gap.
        task = Task(images, deadline, now)
        self.process([task])
        return [task]

    def _enqueue(self, images: np.ndarray, deadline: float | None, now: float) -> list[Task]:
        p = self.parameters
        size = len(images)
        # Called with the lock held.
        open_batch = self._batches[-1]
        if p.large_batch_splitting:
            capacity = (p.max_enqueued_batches - len(self._batches)) * p.max_execution_batch_size + (
                p.max_execution_batch_size - open_batch.size
            )
            if size > capacity:
                raise Unavailable(
                    "The batch scheduling queue to which this task was submitted is full; task size is "
                    f"{size} but scheduling capacity is only {capacity} (num_enqueued_batches="
                    f"{len(self._batches)}, max_enqueued_batches={p.max_enqueued_batches}, "
                    f"open_batch_size={open_batch.size}, max_execution_batch_size={p.max_execution_batch_size})"
                )
            first = p.max_execution_batch_size - open_batch.size
            cuts = [*range(first, size, p.max_execution_batch_size)] if first < size else []
            parts = np.split(images, cuts) if cuts else [images]
        else:
            if not open_batch.fits(Task(images, None, now), p.max_batch_size) and len(self._batches) >= (
                p.max_enqueued_batches
            ):
                raise Unavailable(
                    "The batch scheduling queue to which this task was submitted is full; currently "
                    f"{len(self._batches)} batches enqueued and max_enqueued_batches is {p.max_enqueued_batches}"
                )
            parts = [images]
        tasks = [Task(part, deadline, now) for part in parts if len(part)]
        for task in tasks:
            if not self._batches[-1].fits(task, p.max_execution_batch_size):
                self._batches.append(_Batch())
            batch = self._batches[-1]
            if not batch.tasks:
                batch.opened = now
            batch.tasks.append(task)
            batch.size += task.size
        self._changed.notify()
        return tasks

    def ready_batch(self) -> list[Task] | None:
        """Take the batch a free thread would run now, if any. Callers hold no lock."""
        with self._changed:
            return self._take()

    def process(self, tasks: list[Task]) -> None:
        """Run one batch: answer expired tasks, merge the rest, pad, run, split the result back."""
        now = self._clock()
        live: list[Task] = []
        for task in tasks:
            self._metrics.record_queuing(self.parameters.thread_pool_name, now - task.enqueued)
            if task.deadline is not None and task.deadline <= now:
                # TF-Serving runs a batch unless every task expired; an expired task is not run here.
                task.finish(error=ResourceExhausted(EXPIRED_IN_QUEUE))
            else:
                live.append(task)
        if not live:
            return
        size = sum(task.size for task in live)
        padded = self.parameters.padded_size(size)
        parts = [task.images for task in live]
        if padded > size:
            # batching_session.cc:549-560: padding repeats the first row of the last task.
            parts.append(np.repeat(live[-1].images[:1], padded - size, axis=0))
        merged = parts[0] if len(parts) == 1 else np.concatenate(parts)
        self._metrics.record_padding(padded - size, padded)
        try:
            result = self._run(merged)
        except ServingError as error:
            for task in live:
                task.finish(error=error)
            return
        except Exception as error:  # every waiting request gets the reason; the thread keeps serving
            log.exception("batch of %d failed", size)
            for task in live:
                task.finish(error=ServingError(f"{type(error).__name__}: {error}"))
            return
        start = 0
        for task in live:
            task.finish(result=result[start : start + task.size])
            start += task.size

    def close(self) -> None:
        """End the batch threads once what is queued has run; a request still arriving (it resolved
        this version before it was unloaded) then runs alone in its caller's thread."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()

    def _take(self) -> list[Task] | None:
        if len(self._batches) > 1:
            return self._batches.popleft().tasks
        batch = self._batches[0]
        if batch.tasks and (self._closed or self._wait_left(batch) <= 0):
            self._batches[0] = _Batch()
            return batch.tasks
        return None

    def _wait_left(self, batch: _Batch) -> float:
        if batch.size >= self.parameters.max_execution_batch_size:
            return 0.0
        return batch.opened + self.parameters.batch_timeout_micros / 1e6 - self._clock()

    def _work(self) -> None:
        while True:
            with self._changed:
                tasks = self._take()
                while tasks is None:
                    if self._closed and not self._batches[0].tasks:
                        return
                    open_batch = self._batches[0]
                    self._changed.wait(self._wait_left(open_batch) if open_batch.tasks else None)
                    tasks = self._take()
                if self._batches[0].tasks or len(self._batches) > 1:
                    self._changed.notify()  # more work queued: wake another thread for it
            self.process(tasks)
