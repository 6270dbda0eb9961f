"""Several versions at once: TF-Serving's model config file, version labels, polling for new versions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
from google.protobuf import wrappers_pb2

from local_mode.processes import ModelServer, serve_tflite, wait_until
from protocol import tensors
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc
from tests.conftest import REPO
from tests.models.server.conftest import MOBILENET, run_server
from tests.models.server.test_instrumentation import scrape

IMAGE = np.zeros((1, 224, 224, 3), np.uint8)


def model_config(base: Path, policy: str = "", labels: dict[str, int] | None = None) -> str:
    """TF-Serving's --model_config_file text, as its documentation writes it."""
    label_lines = "".join(f"      version_labels {{ key: '{k}' value: {v} }}\n" for k, v in (labels or {}).items())
    return (
        "model_config_list {\n  config {\n"
        f"    name: '{MOBILENET}'\n    base_path: '{base / MOBILENET}'\n    model_platform: 'tensorflow'\n"
        f"    {policy}\n{label_lines}  }}\n}}\n"
    )


def predict(server: ModelServer, **spec) -> int:
    """The version that answered a gRPC Predict naming ``spec`` (version= or version_label=)."""
    if "version" in spec:
        spec["version"] = wrappers_pb2.Int64Value(value=spec["version"])
    with grpc.insecure_channel(server.grpc_target) as channel:
        response = tfs_predict_pb2_grpc.PredictionServiceStub(channel).Predict(
            tfs_predict_pb2.PredictRequest(
                model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET, **spec), inputs={"images": tensors.to_proto(IMAGE)}
            ),
            timeout=10,
        )
    return response.model_spec.version.value


def served_versions(server: ModelServer) -> dict[str, str]:
    body = requests.get(f"{server.rest}/v1/models/{MOBILENET}", timeout=5).json()
    return {v["version"]: v["state"] for v in body["model_version_status"]}


@pytest.fixture
def base(tmp_path, exported_models):
    """A base path holding versions 1 and 2 of the model (the same file)."""
    tflite = exported_models / MOBILENET / "1" / "model.tflite"
    for version in (1, 2):
        serve_tflite(tmp_path / "models", MOBILENET, tflite, version)
    return tmp_path / "models"


def test_labels_and_versions_on_both_protocols(base, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(model_config(base, "model_version_policy { all {} }", {"stable": 1, "canary": 2}))
    with ModelServer(base, MOBILENET, tmp_path / "log", MODEL_NAME="", MODEL_CONFIG_FILE=str(config)) as server:
        server.start()
        wait_until(lambda: served_versions(server) == {"1": "AVAILABLE", "2": "AVAILABLE"}, 10, "both versions")
        assert predict(server) == 2 and predict(server, version=1) == 1
        assert predict(server, version_label="stable") == 1 and predict(server, version_label="canary") == 2
        with pytest.raises(grpc.RpcError) as caught:
            predict(server, version_label="beta")
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        rest = f"{server.rest}/v1/models/{MOBILENET}"
        canary = requests.get(f"{rest}/labels/canary", timeout=5).json()["model_version_status"]
        assert [v["version"] for v in canary] == ["2"]
        assert requests.get(f"{rest}/labels/stable/metadata", timeout=5).json()["model_spec"]["version"] == "1"
        answer = requests.post(f"{rest}/labels/canary:predict", json={"instances": IMAGE.tolist()}, timeout=10)
        assert answer.status_code == 200 and len(answer.json()["predictions"][0]) == 1000
        assert requests.post(f"{rest}/versions/1:predict", json={"instances": IMAGE.tolist()}, timeout=10).ok
        missing = requests.post(f"{rest}/labels/beta:predict", json={"instances": IMAGE.tolist()}, timeout=10)
        assert missing.status_code == 404 and "Unrecognized servable version label: beta" in missing.json()["error"]


def test_promotion_by_editing_the_config_needs_no_restart(base, tmp_path):
    """Moving `stable` to the canary's version is an edit of the file the server re-reads."""
    config = tmp_path / "models.config"
    config.write_text(
        model_config(base, "model_version_policy { specific { versions: 1 versions: 2 } }", {"stable": 1, "canary": 2})
    )
    env = {"MODEL_NAME": "", "MODEL_CONFIG_FILE": str(config), "MODEL_CONFIG_FILE_POLL_WAIT_SECONDS": "0.2"}
    with ModelServer(base, MOBILENET, tmp_path / "log", **env) as server:
        server.start()
        pid = server.process.pid
        config.write_text(
            model_config(base, "model_version_policy { specific { versions: 2 versions: 3 } }", {"stable": 3})
        )  # version 3 does not exist: refused whole
        wait_until(lambda: "keeping the previous model config" in server.log(), 10, "the refusal logged")
        assert predict(server, version_label="stable") == 1 and predict(server, version_label="canary") == 2
        config.write_text(model_config(base, "model_version_policy { specific { versions: 2 } }", {"stable": 2}))
        wait_until(lambda: served_versions(server) == {"2": "AVAILABLE"}, 10, "version 1 unloaded")
        assert predict(server, version_label="stable") == 2
        with pytest.raises(grpc.RpcError):
            predict(server, version_label="canary")
        assert server.process.pid == pid


def test_a_new_version_is_hot_loaded_under_load_without_a_failed_request(tmp_path, exported_models):
    tflite = exported_models / MOBILENET / "1" / "model.tflite"
    base = serve_tflite(tmp_path / "models", MOBILENET, tflite, 1)
    env = {"FILE_SYSTEM_POLL_WAIT_SECONDS": "0.2"}
    with ModelServer(base, MOBILENET, tmp_path / "log", **env) as server:
        server.start()
        answered: list[int] = []
        errors: list[str] = []
        stop = threading.Event()

        def load() -> None:
            deadline = time.monotonic() + 60
            with grpc.insecure_channel(server.grpc_target) as channel:
                stub = tfs_predict_pb2_grpc.PredictionServiceStub(channel)
                request = tfs_predict_pb2.PredictRequest(
                    model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET), inputs={"images": tensors.to_proto(IMAGE)}
                )
                while not stop.is_set() and time.monotonic() < deadline and len(answered) < 5000:
                    try:
                        answered.append(stub.Predict(request, timeout=10).model_spec.version.value)
                    except grpc.RpcError as exc:
                        errors.append(f"{exc.code()}: {exc.details()}")

        clients = [threading.Thread(target=load) for _ in range(3)]
        for client in clients:
            client.start()
        wait_until(lambda: len(answered) > 20, 20, "traffic on version 1")
        serve_tflite(base, MOBILENET, tflite, 2)
        wait_until(lambda: served_versions(server) == {"2": "AVAILABLE"}, 30, "version 2 alone")
        seen = len(answered)
        wait_until(lambda: len(answered) > seen + 20, 20, "traffic on version 2")
        stop.set()
        for client in clients:
            client.join()
    assert errors == []
    assert answered[0] == 1 and answered[-1] == 2 and sorted(set(answered)) == [1, 2]
    assert answered.index(2) > 0 and 1 not in answered[answered.index(2) + 3 * 3 :], "no return to version 1"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "model_config_list { config { name: 'a' base_path: '/a' } config { name: 'b' base_path: '/b' } }",
            "serves one model per process; the file lists 2",
        ),
        ("model_config_list { config { name: 'a' } }", "needs a name (no '/') and a base_path"),
        ("model_config_list { config { name: 'a' base_path: '/a' logging_config {} } }", "logging_config"),
        (
            "model_config_list { config { name: 'a' base_path: '/a' model_version_policy { specific {} } } }",
            "specific lists no versions",
        ),
    ],
)
def test_bad_model_config_fails_start_with_one_line(tmp_path, config, message):
    path = tmp_path / "models.config"
    path.write_text(config)
    result = run_server({"MODEL_CONFIG_FILE": str(path)})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"models.server: MODEL_CONFIG_FILE={path}: ") and message in lines[0]


def test_a_label_on_a_missing_version_stops_the_start(base, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(model_config(base, "", {"canary": 7}))
    result = run_server({"MODEL_CONFIG_FILE": str(config)}, timeout=60)
    assert result.returncode == 1
    assert "version_labels {'canary': 7} name versions of mobilenet_v3_large that are not available" in result.stdout


def test_versions_share_the_models_metrics(base, tmp_path):
    """Metrics are per model name, as TF-Serving's: calls to either version count under it, and the
    pool gauge counts the interpreters of every loaded version."""
    config = tmp_path / "models.config"
    config.write_text(model_config(base, "model_version_policy { all {} }", {"stable": 1, "canary": 2}))
    monitoring = REPO / "models" / "primary" / "monitoring.config"
    with ModelServer(
        base,
        MOBILENET,
        tmp_path / "log",
        MODEL_NAME="",
        MODEL_CONFIG_FILE=str(config),
        INTERPRETERS="2",
        MONITORING_CONFIG_FILE=str(monitoring),
    ) as server:
        server.start()
        wait_until(lambda: served_versions(server) == {"1": "AVAILABLE", "2": "AVAILABLE"}, 10, "both versions")
        assert predict(server, version_label="stable") == 1 and predict(server, version_label="canary") == 2
        metrics = scrape(server)
    assert (
        metrics[
            (
                ":tensorflow:serving:request_latency_count",
                (("API", "Predict"), ("entrypoint", "GRPC"), ("model_name", MOBILENET)),
            )
        ]
        == 2
    )
    assert (
        metrics[
            (
                ":tensorflow:serving:runtime_latency_count",
                (("API", "Predict"), ("model_name", MOBILENET), ("runtime", "LiteRT")),
            )
        ]
        == 2
    )
    assert metrics[("litert_model_state", (("model_name", MOBILENET), ("state", "AVAILABLE")))] == 1
    assert metrics[("litert_interpreters", (("model_name", MOBILENET),))] == 4
