"""TF-Serving's own Python client (tensorflow-serving-api + TensorFlow) talks to our server.

The client runs in a child process: its protos and ours define the same message names, which one
process cannot hold twice. tensorflow-serving-api is installed with --no-deps into .cache/ on demand
(a plain install would pull a second TensorFlow).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.models.server.conftest import MOBILENET

TARGET = REPO / ".cache" / "tfserving-api"
VERSION = "2.21.0"

CLIENT = r"""
import json, sys
sys.path.append(sys.argv[2])
import grpc, numpy as np, tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc
stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(sys.argv[1]))
images = np.random.default_rng(5).integers(0, 256, size=(2, 224, 224, 3), dtype=np.uint8)
request = predict_pb2.PredictRequest()
request.model_spec.name = sys.argv[3]
request.model_spec.signature_name = "serving_default"
request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
response = stub.Predict(request, 30)
probabilities = tf.make_ndarray(response.outputs["probabilities"])
metadata = stub.GetModelMetadata(get_model_metadata_pb2.GetModelMetadataRequest(
    model_spec=request.model_spec, metadata_field=["signature_def"]), 30)
signatures = get_model_metadata_pb2.SignatureDefMap()
metadata.metadata["signature_def"].Unpack(signatures)
signature = signatures.signature_def["serving_default"]
print(json.dumps({"probabilities": probabilities.tolist(), "version": response.model_spec.version.value,
                  "input_dtype": int(signature.inputs["images"].dtype),
                  "input_shape": [d.size for d in signature.inputs["images"].tensor_shape.dim]}))
"""


@pytest.fixture(scope="module")
def tfserving_api():
    if not (TARGET / "tensorflow_serving").exists():
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(TARGET),
                f"tensorflow-serving-api=={VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            pytest.skip(f"tensorflow-serving-api=={VERSION} could not be installed: {result.stderr[-300:]}")
    return TARGET


def run_client(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run one of the scripts above in a child process, with tensorflow-serving-api importable."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )


def test_tfserving_client_predicts_and_reads_metadata(server, tfserving_api, reference):
    result = run_client(CLIENT, server.grpc_target, str(tfserving_api), MOBILENET)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    images = np.random.default_rng(5).integers(0, 256, size=(2, 224, 224, 3), dtype=np.uint8)
    np.testing.assert_allclose(np.array(answer["probabilities"]), reference(images), atol=1e-6)
    assert answer["version"] == 1
    assert answer["input_dtype"] == 4  # DT_UINT8
    assert answer["input_shape"] == [-1, 224, 224, 3]


CONFIGS = r"""
import sys
sys.path.append(sys.argv[1])
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2
model = text_format.Parse(sys.argv[2], model_server_config_pb2.ModelServerConfig())
print(model.SerializeToString(deterministic=True).hex())
"""


def test_our_model_config_means_the_same_to_tfserving(tfserving_api):
    """A MODEL_CONFIG_FILE text parses with TF-Serving's own protos into the same bytes as with ours
    (tensorflow-serving-api ships no ssl_config_pb2; SSLConfig's four fields are copied by number)."""
    from google.protobuf import text_format

    from protocol.generated.tfs_model_server_config_pb2 import ModelServerConfig

    model_config = (
        "model_config_list { config { name: 'm' base_path: '/models/m' model_platform: 'tensorflow' "
        "model_version_policy { specific { versions: 1 versions: 2 } } "
        "version_labels { key: 'stable' value: 1 } version_labels { key: 'canary' value: 2 } } }"
    )
    result = run_client(CONFIGS, str(tfserving_api), model_config)
    assert result.returncode == 0, result.stderr[-3000:]
    ours = text_format.Parse(model_config, ModelServerConfig()).SerializeToString(deterministic=True)
    assert ours.hex() == result.stdout.strip()


LABEL_CLIENT = r"""
import sys
sys.path.append(sys.argv[2])
import grpc, numpy as np, tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(sys.argv[1]))
for label in ("stable", "canary"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = sys.argv[3]
    request.model_spec.version_label = label
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 224, 224, 3), np.uint8)))
    print(label, stub.Predict(request, 30).model_spec.version.value)
"""


def test_tfserving_client_names_a_version_label(exported_models, tfserving_api, tmp_path):
    from local_mode.processes import ModelServer, serve_tflite

    for version in (3, 4):
        serve_tflite(tmp_path, MOBILENET, exported_models / MOBILENET / "1" / "model.tflite", version)
    config = tmp_path / "models.config"
    config.write_text(
        f"model_config_list {{ config {{ name: '{MOBILENET}' base_path: '{tmp_path / MOBILENET}' "
        "model_version_policy { all {} } version_labels { key: 'stable' value: 3 } "
        "version_labels { key: 'canary' value: 4 } } }"
    )
    with ModelServer(tmp_path, MOBILENET, tmp_path / "log", MODEL_NAME="", MODEL_CONFIG_FILE=str(config)) as server:
        server.start()
        result = run_client(LABEL_CLIENT, server.grpc_target, str(tfserving_api), MOBILENET)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["stable", "3", "canary", "4"]
