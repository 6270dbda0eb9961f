"""The hooks on a real model server process: gRPC interceptor, REST hooks, the metrics endpoint."""

from __future__ import annotations

from functools import partial

import grpc
import pytest
import requests

from local_mode.processes import ModelServer
from models.server.settings import DEFAULT_PROMETHEUS_PATH
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc
from tests.conftest import REPO
from tests.models.server.conftest import MOBILENET, moved, scrape
from tests.models.server.test_grpc_service import request


@pytest.fixture(scope="module")
def monitored(exported_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("monitored") / "server.log"
    config = REPO / "models" / "primary" / "monitoring.config"
    with ModelServer(exported_models, MOBILENET, log, INTERPRETERS="2", MONITORING_CONFIG_FILE=str(config)) as running:
        yield running.start()


def test_a_real_server_counts_grpc_and_rest_requests_by_tfserving_status(monitored, images):
    before = scrape(monitored)
    with grpc.insecure_channel(monitored.grpc_target) as channel:
        stub = tfs_predict_pb2_grpc.PredictionServiceStub(channel)
        stub.Predict(request(images), timeout=10)
        with pytest.raises(grpc.RpcError):
            stub.Predict(tfs_predict_pb2.PredictRequest(model_spec=tfs_predict_pb2.ModelSpec(name="nope")), timeout=10)
    assert requests.post(
        f"{monitored.rest}/v1/models/{MOBILENET}:predict", json={"instances": images[:1].tolist()}, timeout=10
    ).ok
    assert requests.post(f"{monitored.rest}/v1/models/{MOBILENET}:predict", json={}, timeout=10).status_code == 400
    after = scrape(monitored)

    delta = partial(moved, before, after)

    count = ":tensorflow:serving:request_count_total"  # the parser's name; the exposition has no _total
    assert delta(count, model_name=MOBILENET, status="OK") == 2
    assert delta(count, model_name="nope", status="NOT_FOUND") == 1
    assert delta(count, model_name=MOBILENET, status="INVALID_ARGUMENT") == 1
    latency = ":tensorflow:serving:request_latency_count"
    assert delta(latency, model_name=MOBILENET, API="Predict", entrypoint="GRPC") == 1
    assert delta(latency, model_name=MOBILENET, API="predict", entrypoint="REST") == 1
    assert delta(":tensorflow:serving:batching_session:processed_batch_size_sum") == 3  # batches of 2 and 1
    assert (
        delta(":tensorflow:serving:runtime_latency_count", model_name=MOBILENET, API="Predict", runtime="LiteRT") == 2
    )
    assert after[("litert_model_state", (("model_name", MOBILENET), ("state", "AVAILABLE")))] == 1
    assert after[("litert_interpreters", (("model_name", MOBILENET),))] == 2
    assert after[("litert_interpreters_busy", (("model_name", MOBILENET),))] == 0


def test_no_metrics_endpoint_without_a_monitoring_config(server):
    assert requests.get(f"{server.rest}{DEFAULT_PROMETHEUS_PATH}", timeout=10).status_code == 404
