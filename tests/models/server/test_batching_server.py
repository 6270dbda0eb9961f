"""A real server with ENABLE_BATCHING and a BATCHING_PARAMETERS_FILE, over gRPC and REST."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import requests

from local_mode.processes import ModelServer
from protocol import tensors
from protocol.generated import tfs_predict_pb2_grpc
from tests.conftest import REPO
from tests.models.server.conftest import MOBILENET, PROCESSED, moved, run_server, scrape
from tests.models.server.test_grpc_service import request

# One batch thread and one batch in the queue; an open batch waits up to 2 s for company, so
# requests sent together share one interpreter call however slow the machine.
BATCHING = """
max_batch_size { value: 4 }
batch_timeout_micros { value: 2000000 }
max_enqueued_batches { value: 1 }
num_batch_threads { value: 1 }
allowed_batch_sizes: [1, 2, 4]
"""


@pytest.fixture(scope="module")
def batching(exported_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("batching")
    (folder / "batching.config").write_text(BATCHING)
    with ModelServer(
        exported_models,
        MOBILENET,
        folder / "server.log",
        ENABLE_BATCHING="true",
        BATCHING_PARAMETERS_FILE=str(folder / "batching.config"),
        MONITORING_CONFIG_FILE=str(REPO / "models" / "primary" / "monitoring.config"),
    ) as running:
        yield running.start()


@pytest.fixture(scope="module")
def batching_stub(batching):
    with grpc.insecure_channel(batching.grpc_target) as channel:
        yield tfs_predict_pb2_grpc.PredictionServiceStub(channel)


def pictures(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 224, 224, 3), dtype=np.uint8)


def grpc_predict(stub, images: np.ndarray, timeout: float = 30) -> np.ndarray:
    return tensors.to_array(stub.Predict(request(images), timeout=timeout).outputs["probabilities"])


def rest_predict(server: ModelServer, images: np.ndarray) -> requests.Response:
    body = json.dumps({"instances": images.tolist()})
    return requests.post(f"{server.rest}/v1/models/{MOBILENET}:predict", data=body, timeout=30)


def batches(before: dict, after: dict) -> tuple[float, float]:
    """How many batches the interpreter ran between two scrapes, and how many images they held."""
    return moved(before, after, f"{PROCESSED}_count"), moved(before, after, f"{PROCESSED}_sum")


def test_concurrent_grpc_requests_share_one_interpreter_call(batching, batching_stub, reference):
    one_each = [pictures(1, seed) for seed in range(4)]
    before = scrape(batching)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda images: grpc_predict(batching_stub, images), one_each))
    after = scrape(batching)
    for images, answer in zip(one_each, answers, strict=True):
        np.testing.assert_allclose(answer, reference(images), atol=1e-5)
    assert batches(before, after) == (1, 4)


def test_rest_and_grpc_requests_merge_and_count_by_images(batching, batching_stub, reference):
    rest_images, grpc_images = pictures(1, 10), pictures(2, 11)
    before = scrape(batching)
    with ThreadPoolExecutor(2) as pool:
        rest = pool.submit(rest_predict, batching, rest_images)
        over_grpc = pool.submit(grpc_predict, batching_stub, grpc_images)
        response, grpc_answer = rest.result(), over_grpc.result()
    after = scrape(batching)
    assert response.status_code == 200
    np.testing.assert_allclose(np.array(response.json()["predictions"]), reference(rest_images), atol=1e-5)
    np.testing.assert_allclose(grpc_answer, reference(grpc_images), atol=1e-5)
    # 3 images padded to the allowed 4: one call; TF-Serving's padding histogram says by how much.
    assert batches(before, after) == (1, 4)
    padding = (":tensorflow:serving:batching_session:padding_size_sum", (("execution_batch_size", "4"),))
    assert after[padding] - before.get(padding, 0) == 1


def test_a_full_queue_answers_unavailable_as_tfserving(batching, batching_stub):
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(grpc_predict, batching_stub, pictures(1, 20))  # opens a batch, waits 2 s
        time.sleep(0.3)
        with pytest.raises(grpc.RpcError) as refused:
            grpc_predict(batching_stub, pictures(4, 21))  # does not fit; the queue holds one batch
        response = rest_predict(batching, pictures(4, 22))
        assert waiting.result().shape == (1, 1000)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "batch scheduling queue to which this task was submitted is full" in (refused.value.details() or "")
    assert response.status_code == 503 and "is full" in response.json()["error"]


def test_a_request_whose_deadline_passes_in_the_queue_is_not_run(batching, batching_stub):
    before = scrape(batching)
    with pytest.raises(grpc.RpcError) as expired:
        grpc_predict(batching_stub, pictures(1, 30), timeout=0.3)
    assert expired.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    queued = (":tensorflow:serving:batching_session:queuing_latency_count", (("thread_pool_name", "batch_threads"),))
    deadline = time.monotonic() + 10
    while scrape(batching).get(queued, 0) == before.get(queued, 0) and time.monotonic() < deadline:
        time.sleep(0.1)  # the batch leaves the queue after its 2 s timeout
    after = scrape(batching)
    assert after[queued] - before[queued] == 1
    assert batches(before, after) == (0, 0)  # never run


def test_a_request_larger_than_max_batch_size_is_refused_as_tfserving(batching, batching_stub):
    with pytest.raises(grpc.RpcError) as refused:
        grpc_predict(batching_stub, pictures(5, 40))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "Task size 5 is larger than maximum input batch size 4"
    response = rest_predict(batching, pictures(5, 41))
    assert response.status_code == 400 and "Task size 5" in response.json()["error"]


def test_bad_batching_settings_stop_the_server_naming_the_variable(tmp_path):
    config = tmp_path / "batching.config"
    config.write_text("max_batch_size { value: 8 }\nallowed_batch_sizes: [2, 4]\n")
    env = {"MODEL_NAME": MOBILENET, "MODEL_BASE_PATH": str(tmp_path), "BATCHING_PARAMETERS_FILE": str(config)}
    without_flag = run_server(env)
    assert without_flag.returncode == 2 and "without ENABLE_BATCHING=true" in without_flag.stderr
    wrong_sizes = run_server({**env, "ENABLE_BATCHING": "true"})
    assert wrong_sizes.returncode == 2
    assert "BATCHING_PARAMETERS_FILE=" in wrong_sizes.stderr and "must match max_batch_size" in wrong_sizes.stderr
