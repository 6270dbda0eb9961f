from __future__ import annotations

import subprocess
import sys

import grpc
import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from local_mode.processes import ModelServer
from models.server.settings import DEFAULT_PROMETHEUS_PATH
from protocol.generated import tfs_predict_pb2_grpc
from tests.conftest import REPO

MOBILENET = "mobilenet_v3_large"
PROCESSED = ":tensorflow:serving:batching_session:processed_batch_size"


def scrape(server: ModelServer) -> dict:
    """The server's metrics page as {(sample name, sorted labels): value}."""
    response = requests.get(f"{server.rest}{DEFAULT_PROMETHEUS_PATH}", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/plain"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def moved(before: dict, after: dict, name: str, **labels: str) -> float:
    """How far the sample ``name{labels}`` moved between two scrapes."""
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0) - before.get(key, 0)


def run_server(env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess:
    """``python -m models.server`` to its end, on free ports: for settings that stop it at start."""
    return subprocess.run(
        [sys.executable, "-m", "models.server"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "HOST": "127.0.0.1", "GRPC_PORT": "0", "REST_PORT": "0", **env},
    )


@pytest.fixture(scope="module")
def server(exported_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with ModelServer(exported_models, MOBILENET, log, MAX_BATCH="4", MAX_REQUEST_BYTES=str(4 << 20)) as running:
        running.start()
        yield running


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield tfs_predict_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def reference(exported_models):
    """Direct interpreter call on the same file: what the server must return."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(exported_models / MOBILENET / "1" / "model.tflite"))
    runner = interpreter.get_signature_runner("serving_default")
    return lambda images: runner(images=images)["probabilities"]


class FakeClock:
    """An injectable time.monotonic that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def images():
    return np.random.default_rng(7).integers(0, 256, size=(2, 224, 224, 3), dtype=np.uint8)
