"""Stand-ins for routing unit tests: a model client that answers after a delay, or fails, as told;
and a stepped clock that makes those delays virtual, so a test runs in no time and exactly."""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np

from gateway.clients import BackendError, Prediction
from protocol import tensors
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc

# Two backends the fakes stand in for, hedging off so each test decides when the fallback is asked.
GATEWAY_ENV = {
    "PRIMARY_URL": "grpc://127.0.0.1:1",
    "PRIMARY_MODEL": "wide_resnet50_2",
    "PRIMARY_RESIZE_SHORTER": "232",
    "FALLBACK_URL": "grpc://127.0.0.1:2",
    "FALLBACK_MODEL": "mobilenet_v3_large",
    "HEDGE": "false",
}


def probabilities(top: int) -> np.ndarray:
    p = np.full((1, 1000), 0.5 / 999, np.float32)
    p[0, top] = 0.5
    return p


class SteppedClock:
    """Virtual time: ``wait`` jumps to the next scheduled event instead of sleeping.

    Pass the instance as the router's and breakers' ``clock`` and its ``wait`` as the router's."""

    def __init__(self) -> None:
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._events, (self.now + delay_s, next(self._order), callback))

    def wait(self, futures: list[Future], timeout_s: float) -> None:
        until = self.now + timeout_s
        while not any(f.done() for f in futures):
            if not self._events or self._events[0][0] > until:
                self.now = until
                return
            at, _, callback = heapq.heappop(self._events)
            self.now = max(self.now, at)
            callback()


class FakeClient:
    """Answers after ``delay_s`` (on ``clock`` when given, else on a real timer thread)."""

    def __init__(
        self,
        settings,
        top: int | None,
        delay_s: float = 0.0,
        error: str | None = None,
        clock: SteppedClock | None = None,
    ):
        self.settings = settings
        self.top, self.delay_s, self.error = top, delay_s, error
        self.clock = clock
        self.calls = 0
        self.timeouts: list[float] = []
        self.batches: list[np.ndarray] = []
        self.labels: list[str | None] = []
        self.caller_waits: list[bool] = []

    def submit(self, batch, timeout_s, label=None, caller_waits=False):
        self.calls += 1
        self.labels.append(label)
        self.caller_waits.append(caller_waits)
        self.timeouts.append(timeout_s)
        self.batches.append(batch)
        future: Future = Future()

        def finish():
            if self.error:
                future.set_exception(BackendError(self.error, "injected"))
            elif self.delay_s > timeout_s:
                future.set_exception(BackendError("timeout", "deadline exceeded"))
            else:
                future.set_result(Prediction(self.answer(batch), "1"))

        if self.clock is not None:
            self.clock.call_later(min(self.delay_s, timeout_s), finish)
            return future
        timer = threading.Timer(min(self.delay_s, timeout_s), finish)
        timer.daemon = True
        timer.start()
        return future

    def answer(self, batch: np.ndarray) -> np.ndarray:
        """``top`` for every image, or with ``top=None`` each image's mean pixel value (solid colours
        tell a batch's images apart)."""
        tops = [self.top if self.top is not None else round(float(image.mean())) for image in batch]
        return np.concatenate([probabilities(top) for top in tops])

    def status(self, timeout_s):
        return "AVAILABLE" if not self.error else "UNAVAILABLE (injected)"

    def close(self):
        pass


class _SlowPredictions(tfs_predict_pb2_grpc.PredictionServiceServicer):
    def __init__(self, model: SlowModel):
        self.model = model

    def Predict(self, request, context):
        time.sleep(self.model.delay_s)
        batch = len(tensors.to_array(request.inputs["images"]))
        return tfs_predict_pb2.PredictResponse(
            outputs={"probabilities": tensors.to_proto(probabilities(1).repeat(batch, 0))}
        )


class _SlowRestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        batch = len(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["instances"])
        time.sleep(self.server.model.delay_s)
        body = json.dumps({"predictions": probabilities(1).repeat(batch, 0).tolist()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class SlowModel:
    """TF-Serving's Predict over gRPC and REST on 127.0.0.1, answering after ``delay_s``."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self._grpc = grpc.server(ThreadPoolExecutor(4))
        tfs_predict_pb2_grpc.add_PredictionServiceServicer_to_server(_SlowPredictions(self), self._grpc)
        self.grpc_url = f"grpc://127.0.0.1:{self._grpc.add_insecure_port('127.0.0.1:0')}"
        self._grpc.start()
        self._rest = ThreadingHTTPServer(("127.0.0.1", 0), _SlowRestHandler)
        self._rest.daemon_threads = True
        self._rest.model = self  # type: ignore[attr-defined]
        self.rest_url = f"http://127.0.0.1:{self._rest.server_port}"
        threading.Thread(target=self._rest.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._grpc.stop(0)
        self._rest.shutdown()
        self._rest.server_close()
