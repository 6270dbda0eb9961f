"""The model clients against a real gRPC and REST server: where a call runs, and that it keeps its timeout."""

import time

import numpy as np
import pytest

from gateway.clients import BackendError, make_client

BATCH = np.zeros((2, 224, 224, 3), np.uint8)


@pytest.fixture
def client(slow_model, backend_settings):
    clients = []

    def build(protocol: str):
        url = slow_model.grpc_url if protocol == "grpc" else slow_model.rest_url
        clients.append(make_client(backend_settings(url), workers=2))
        return clients[-1]

    yield build
    for made in clients:
        made.close()


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_a_call_answers_each_image(client, protocol):
    prediction = client(protocol).submit(BATCH, 5.0).result(timeout=10)
    assert prediction.probabilities.shape == (2, 1000) and prediction.probabilities.argmax(axis=1).tolist() == [1, 1]


def test_a_grpc_call_the_caller_only_waits_for_is_made_on_its_thread(client, slow_model):
    slow_model.delay_s = 0.2
    future = client("grpc").submit(BATCH, 5.0, caller_waits=True)
    assert future.done(), "the 0.2 s call was made before submit returned"
    assert future.result().probabilities.shape == (2, 1000)


def test_a_grpc_call_made_on_the_callers_thread_keeps_its_timeout(client, slow_model):
    slow_model.delay_s = 2.0
    started = time.monotonic()
    future = client("grpc").submit(BATCH, 0.2, caller_waits=True)
    assert time.monotonic() - started < 1.0
    with pytest.raises(BackendError) as caught:
        future.result()
    assert caught.value.reason == "timeout"


@pytest.mark.parametrize(("protocol", "caller_waits"), [("grpc", False), ("rest", False), ("rest", True)])
def test_other_calls_run_on_the_pool(client, slow_model, protocol, caller_waits):
    """REST's timeout bounds each read, not the call, so a REST call never holds the caller."""
    slow_model.delay_s = 0.3
    future = client(protocol).submit(BATCH, 5.0, caller_waits=caller_waits)
    assert not future.done(), "submit returned before the 0.3 s answer"
    assert future.result(timeout=10).probabilities.shape == (2, 1000)
