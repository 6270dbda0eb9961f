"""The server as a process: readiness gating, versions, restart, graceful stop, concurrency."""

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import requests

from local_mode.processes import ModelServer, serve_tflite
from models.server.grpc_service import create_grpc_server
from models.server.rest import create_rest_app
from models.server.settings import Settings
from models.server.versions import ModelVersions, single_model
from protocol import tensors
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc
from tests.models.server.conftest import MOBILENET, run_server


def _predict(stub, images, timeout=30):
    response = stub.Predict(
        tfs_predict_pb2.PredictRequest(
            model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET), inputs={"images": tensors.to_proto(images)}
        ),
        timeout=timeout,
    )
    return tensors.to_array(response.outputs["probabilities"])


def test_not_ready_until_loaded_and_warmed_up(exported_models, images):
    settings = Settings.from_env({"MODEL_NAME": MOBILENET, "MODEL_BASE_PATH": str(exported_models)})
    versions = ModelVersions(settings, single_model(settings))
    client = create_rest_app(versions, settings.max_request_bytes).test_client()
    status = client.get(f"/v1/models/{MOBILENET}")
    assert status.status_code == 404 and "Could not find any versions" in status.get_json()["error"]  # as TF-Serving
    predict = client.post(f"/v1/models/{MOBILENET}:predict", json={"instances": images[:1].tolist()})
    assert predict.status_code == 503 and "not available" in predict.get_json()["error"]
    assert client.get(f"/v1/models/{MOBILENET}/metadata").status_code == 503

    server = create_grpc_server(versions, workers=2, max_message_bytes=settings.max_request_bytes)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = tfs_predict_pb2_grpc.PredictionServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                _predict(stub, images[:1])
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            versions.poll()
            assert _predict(stub, images[:1]).shape == (1, 1000)
    finally:
        server.stop(None)
    assert client.get(f"/v1/models/{MOBILENET}").get_json()["model_version_status"][0]["state"] == "AVAILABLE"


def test_highest_version_wins(tmp_path, exported_models):
    tflite = exported_models / MOBILENET / "1" / "model.tflite"
    for version in (1, 3, 20):
        serve_tflite(tmp_path, MOBILENET, tflite, version)
    (tmp_path / MOBILENET / "not-a-version").mkdir()
    with ModelServer(tmp_path, MOBILENET, tmp_path / "log") as server:
        server.start()
        status = requests.get(f"{server.rest}/v1/models/{MOBILENET}").json()["model_version_status"]
        assert [s["version"] for s in status] == ["20"]
        assert requests.get(f"{server.rest}/v1/models/{MOBILENET}/versions/3").status_code == 404


def test_restart_and_graceful_stop_with_a_request_in_flight(tmp_path, exported_models):
    images = np.random.default_rng(3).integers(0, 256, size=(32, 224, 224, 3), dtype=np.uint8)
    server = ModelServer(exported_models, MOBILENET, tmp_path / "log", MAX_BATCH="64", INTERPRETERS="1")
    for round_ in range(2):  # the second round restarts on the same ports
        server.start()
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = tfs_predict_pb2_grpc.PredictionServiceStub(channel)
            assert _predict(stub, images[:1]).shape == (1, 1000)
            result: dict = {}

            def slow_call(stub=stub, result=result) -> None:
                result["out"] = _predict(stub, images)

            slow = threading.Thread(target=slow_call)
            slow.start()
            threading.Event().wait(0.05)  # the batch of 32 is being computed when SIGTERM arrives
            assert server.stop() == 0
            slow.join(10)
            assert result["out"].shape == (32, 1000), f"in-flight request lost in round {round_}"
    assert server.log().count("shutting down") == 2


def test_concurrent_requests_get_their_own_answers(server, stub, reference):
    rng = np.random.default_rng(11)
    batches = [rng.integers(0, 256, size=(1 + i % 3, 224, 224, 3), dtype=np.uint8) for i in range(24)]
    expected = [reference(batch) for batch in batches]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda batch: _predict(stub, batch), batches))
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_missing_model_makes_the_process_exit_with_the_reason(tmp_path):
    result = run_server({"MODEL_NAME": "absent", "MODEL_BASE_PATH": str(tmp_path)})
    assert result.returncode != 0
    assert "no numeric version folder" in result.stdout + result.stderr


def test_bad_settings_stop_the_process_with_one_line():
    result = run_server({"MODEL_NAME": "m", "INTERPRETERS": "many"})
    assert result.returncode == 2
    assert result.stderr.strip() == "models.server: INTERPRETERS='many' is not an integer"
