"""A served version on a real export: batches over MAX_EXECUTION_BATCH_SIZE run in parts."""

from __future__ import annotations

from functools import partial

import grpc
import numpy as np
import pytest

from local_mode.processes import ModelServer
from protocol import tensors
from protocol.generated import tfs_predict_pb2_grpc
from tests.conftest import REPO
from tests.models.server.conftest import MOBILENET, PROCESSED, moved, scrape
from tests.models.server.test_grpc_service import request


@pytest.fixture(scope="module")
def split(exported_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("split") / "server.log"
    config = REPO / "models" / "primary" / "monitoring.config"
    env = {
        "INTERPRETERS": "1",
        "MAX_BATCH": "8",
        "MAX_EXECUTION_BATCH_SIZE": "2",
        "MONITORING_CONFIG_FILE": str(config),
    }
    with ModelServer(exported_models, MOBILENET, log, **env) as running:
        yield running.start()


def test_a_batch_over_the_execution_size_runs_in_parts_with_the_same_answers(split, reference):
    images = np.random.default_rng(3).integers(0, 256, size=(5, 224, 224, 3), dtype=np.uint8)
    before = scrape(split)
    with grpc.insecure_channel(split.grpc_target) as channel:
        answer = tfs_predict_pb2_grpc.PredictionServiceStub(channel).Predict(request(images), timeout=30)
    after = scrape(split)
    got = tensors.to_array(answer.outputs["probabilities"])
    assert got.shape == (5, 1000)
    np.testing.assert_allclose(got, reference(images), atol=1e-5)  # each part's answer kept, in order

    delta = partial(moved, before, after)

    assert delta(f"{PROCESSED}_count") == 3 and delta(f"{PROCESSED}_sum") == 5  # calls of 2, 2 and 1
    # A size lands in the first bucket whose limit exceeds it (TF-Serving's Sampler): one call under 2
    # images and two under 4 make, with the sum, calls of 2, 2 and 1 and none of 3.
    assert delta(f"{PROCESSED}_bucket", le="2") == 1 and delta(f"{PROCESSED}_bucket", le="4") == 3
