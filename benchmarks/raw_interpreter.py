"""The ceiling: LiteRT interpreters called directly, no servers, with the model server's layout
(a LIFO pool of ``interpreters`` interpreters with ``threads`` threads each), driven closed-loop by
``concurrency`` threads on the same preprocessed images. CPU per invoke is this process's CPU time
over the run (XNNPACK's own threads included) divided by the invokes."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
from ai_edge_litert.interpreter import Interpreter


@dataclass(frozen=True)
class RawResult:
    concurrency: int
    invokes: int
    wall_s: float
    cpu_s: float

    @property
    def throughput(self) -> float:
        return self.invokes / self.wall_s

    @property
    def cpu_ms_per_invoke(self) -> float:
        return self.cpu_s * 1000 / self.invokes


class InterpreterPool:
    def __init__(self, model: Path, interpreters: int, threads: int):
        # (interpreter, input index, output index), most recently used first, as the model server's pool
        self._pool: queue.LifoQueue[tuple[Interpreter, int, int]] = queue.LifoQueue()
        for _ in range(interpreters):
            interpreter = Interpreter(model_path=str(model), num_threads=threads)
            interpreter.allocate_tensors()
            inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
            self._pool.put((interpreter, inputs[0]["index"], outputs[0]["index"]))

    def invoke(self, batch: np.ndarray) -> np.ndarray:
        slot = self._pool.get()
        interpreter, input_index, output_index = slot
        try:
            interpreter.set_tensor(input_index, batch)
            interpreter.invoke()
            return interpreter.get_tensor(output_index)
        finally:
            self._pool.put(slot)

    def run(self, batches: Sequence[np.ndarray], concurrency: int, invokes: int, time_cap_s: float) -> RawResult:
        tickets = itertools.count()
        deadline = time.monotonic() + time_cap_s
        done = [0] * concurrency

        def worker(slot: int) -> None:
            while (ticket := next(tickets)) < invokes and time.monotonic() < deadline:
                self.invoke(batches[ticket % len(batches)])
                done[slot] += 1

        me = psutil.Process()
        threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(concurrency)]
        cpu_before, started = sum(me.cpu_times()[:2]), time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        return RawResult(concurrency, sum(done), wall, sum(me.cpu_times()[:2]) - cpu_before)
