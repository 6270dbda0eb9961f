"""Real model servers, a fault proxy in front of the primary, and a gateway per test."""

from __future__ import annotations

import io
import threading
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
import numpy as np
import pytest
import requests
from PIL import Image

from local_mode.processes import Gateway, ModelServer, free_port
from protocol.generated import tfs_predict_pb2_grpc
from tests.fault_proxy import FaultProxy

PRIMARY, FALLBACK = "wide_resnet50_2", "mobilenet_v3_large"


class _FailingService(tfs_predict_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request, context):
        context.abort(grpc.StatusCode.INTERNAL, "injected internal error")

    def GetModelMetadata(self, request, context):
        context.abort(grpc.StatusCode.INTERNAL, "injected internal error")


@pytest.fixture(scope="session")
def error_server():
    """A real gRPC server that fails every call: what a broken primary (HTTP 500) looks like."""
    server = grpc.server(futures.ThreadPoolExecutor(4))
    tfs_predict_pb2_grpc.add_PredictionServiceServicer_to_server(_FailingService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


def start_primary(exported_models, log, ports: tuple[int, int] | None = None):
    """The primary (WRN int8); on ``ports`` (gRPC, REST) to stand in for one that was killed."""
    server = ModelServer(
        exported_models, PRIMARY, log, MODEL_FILE="model_int8.tflite", INTERPRETERS="1", INTERPRETER_THREADS="2"
    )
    if ports is not None:
        server.grpc_port, server.rest_port = ports
        server.env.update(GRPC_PORT=str(ports[0]), REST_PORT=str(ports[1]))
    return server.start(timeout=120)


@pytest.fixture(scope="module")
def primary(exported_models, tmp_path_factory):
    server = start_primary(exported_models, tmp_path_factory.mktemp("primary") / "log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fallback(exported_models, tmp_path_factory):
    server = ModelServer(
        exported_models, FALLBACK, tmp_path_factory.mktemp("fallback") / "log", INTERPRETERS="1"
    ).start()
    yield server
    server.stop()


@pytest.fixture
def proxy(primary, error_server):
    fault = FaultProxy(primary.grpc_port, error_port=error_server)
    yield fault
    fault.close()


GATEWAY_ENV = {
    "REQUEST_DEADLINE_MS": "1500",
    "FALLBACK_RESERVE_MS": "400",
    "BREAKER_FAILURES": "3",
    "BREAKER_COOLDOWN_MS": "500",
    "BREAKER_MAX_COOLDOWN_MS": "2000",
    "HEDGE": "false",
    "PRIMARY_RESIZE_SHORTER": "232",
}


@pytest.fixture
def start_gateway(tmp_path):
    running = []

    def start(primary_target: str, fallback_target: str, **env: str) -> Gateway:
        gateway = Gateway(
            tmp_path / f"gateway{len(running)}.log",
            PRIMARY_URL=f"grpc://{primary_target}",
            PRIMARY_MODEL=PRIMARY,
            FALLBACK_URL=f"grpc://{fallback_target}",
            FALLBACK_MODEL=FALLBACK,
            **{**GATEWAY_ENV, **env},
        )
        running.append(gateway)
        return gateway.start()

    yield start
    for gateway in running:
        gateway.stop()


def dead_target() -> str:
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def photo() -> bytes:
    pixels = np.random.default_rng(1).integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).resize((640, 480), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


@dataclass
class Answer:
    status: int
    body: dict
    latency_s: float
    at: float  # seconds since the load started

    @property
    def model(self) -> str | None:
        return self.body.get("model")


def run_load(
    url: str, photo: bytes, clients: int = 4, duration_s: float = 3.0, max_requests: int = 2000, during=None
) -> tuple[list[Answer], int]:
    """Send requests from ``clients`` threads for ``duration_s``; return every answer and the count sent.

    ``during(elapsed)`` is called from a control thread every 50 ms to inject faults.
    """
    answers: list[Answer] = []
    sent = [0]
    lock = threading.Lock()
    start = time.monotonic()
    stop = threading.Event()

    def client() -> None:
        session = requests.Session()
        while not stop.is_set():
            with lock:
                if sent[0] >= max_requests:
                    return
                sent[0] += 1
            began = time.monotonic()
            try:
                response = session.post(
                    f"{url}/classify", data=photo, headers={"Content-Type": "image/jpeg"}, timeout=10
                )
                answer = Answer(response.status_code, response.json(), time.monotonic() - began, began - start)
            except (requests.RequestException, ValueError) as exc:
                answer = Answer(0, {"exception": repr(exc)}, time.monotonic() - began, began - start)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    while time.monotonic() - start < duration_s:
        if during:
            during(time.monotonic() - start)
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(15)
    return answers, sent[0]
