"""TF-Serving REST conformance, written from TF-Serving's documented requests and responses."""

import json
from pathlib import Path

import numpy as np
import pytest
import requests

from models.server.model import LiteRTModel, TensorSpec
from models.server.rest import create_rest_app, metadata
from models.server.settings import Settings
from models.server.versions import ModelVersions, single_model
from tests.models.server.conftest import MOBILENET
from tests.raw_http import announce_huge_body


def url(server, path=""):
    return f"{server.rest}/v1/models/{MOBILENET}{path}"


def test_model_status(server):
    body = requests.get(url(server)).json()
    assert body == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    assert requests.get(url(server, "/versions/1")).json() == body


def test_metadata_describes_the_signature(server):
    body = requests.get(url(server, "/metadata")).json()
    assert body["model_spec"] == {"name": MOBILENET, "signature_name": "", "version": "1"}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    images = signature["inputs"]["images"]
    assert images["dtype"] == "DT_UINT8"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "224", "224", "3"]
    probabilities = signature["outputs"]["probabilities"]
    assert probabilities["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in probabilities["tensor_shape"]["dim"]] == ["-1", "1000"]


def test_predict_row_format(server, images, reference):
    response = requests.post(url(server, ":predict"), json={"instances": images.tolist()})
    assert response.status_code == 200
    got = np.array(response.json()["predictions"], dtype=np.float32)
    np.testing.assert_allclose(got, reference(images), atol=1e-6)


def test_predict_row_format_with_named_inputs_and_version(server, images, reference):
    body = {"signature_name": "serving_default", "instances": [{"images": image.tolist()} for image in images]}
    response = requests.post(url(server, "/versions/1:predict"), json=body)
    assert response.status_code == 200
    np.testing.assert_allclose(np.array(response.json()["predictions"]), reference(images), atol=1e-6)


def test_predict_columnar_format(server, images, reference):
    for inputs in (images.tolist(), {"images": images.tolist()}):
        response = requests.post(url(server, ":predict"), json={"inputs": inputs})
        assert response.status_code == 200
        np.testing.assert_allclose(np.array(response.json()["outputs"]), reference(images), atol=1e-6)


IMAGE = np.zeros((224, 224, 3), np.uint8).tolist()


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (":predict", b"{not json", 400, "JSON Parse error"),
        (":predict", {"instances": [[1, 2, 3]]}, 400, "must have shape [-1, 224, 224, 3]"),
        (":predict", {"instances": [np.full((224, 224, 3), 0.5).tolist()]}, 400, "expects uint8 integers"),
        (":predict", {"instances": [np.full((224, 224, 3), 300).tolist()]}, 400, "outside uint8 range"),
        (":predict", {"instances": [IMAGE, [[1]]]}, 400, "not a rectangular array"),
        (":predict", {"instances": [IMAGE] * 5}, 400, "batch of 5 is outside 1..4"),
        (":predict", {"instances": []}, 400, "non-empty list"),
        (":predict", {"instances": [IMAGE], "inputs": [IMAGE]}, 400, "exactly one of"),
        (":predict", {"signature_name": "nope", "instances": [IMAGE]}, 400, '"nope" not found'),
        (":predict", [1, 2], 400, "must be a JSON object"),
        ("/versions/7:predict", {"instances": [IMAGE]}, 404, "Specific(mobilenet_v3_large, 7)"),
        (":classify", {"examples": []}, 404, "Malformed request"),
        # Each of these was a 500 before: json.loads' RecursionError, int() of over 4,300 digits.
        (":predict", b'{"instances": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", 400, "nested too deeply"),
        ("/versions/" + "9" * 4301 + ":predict", {"instances": [IMAGE]}, 400, "Failed to convert version"),
        ("/versions/9223372036854775808:predict", {"instances": [IMAGE]}, 400, "Failed to convert version"),
    ],
)
def test_predict_errors(server, path, body, status, message):
    if isinstance(body, bytes):
        response = requests.post(url(server, path), data=body)
    else:
        response = requests.post(url(server, path), json=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_unknown_model_and_paths(server):
    response = requests.post(f"{server.rest}/v1/models/other:predict", json={"instances": [IMAGE]})
    assert response.status_code == 404 and "Servable not found" in response.json()["error"]
    assert requests.get(f"{server.rest}/v1/models/other").status_code == 404
    assert requests.get(url(server, "/versions/9")).status_code == 404
    assert requests.get(url(server, "/versions/" + "9" * 5000)).status_code == 400
    missing = requests.get(f"{server.rest}/nothing/here")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong_method = requests.delete(url(server))
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


def test_body_over_the_limit_is_refused_with_413(server):
    response = requests.post(
        url(server, ":predict"), data=b"[" + b"0," * (3 << 20) + b"0]", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413 and "over the limit" in response.json()["error"]


def test_body_over_the_limit_is_refused_before_it_is_read(server):
    """The JSON 413 comes back while the client is still announcing a 1 GiB body."""
    answer = announce_huge_body(server.rest_port, f"/v1/models/{MOBILENET}:predict", "application/json")
    assert answer.startswith("HTTP/1.1 413"), answer
    head, _, body = answer.partition("\r\n\r\n")
    assert "application/json" in head
    assert json.loads(body) == {"error": f"request body is over the limit of {4 << 20} bytes"}


def test_server_keeps_serving_after_bad_requests(server, images, reference):
    for _ in range(3):
        requests.post(url(server, ":predict"), data=b"\xff\xfe garbage")
    response = requests.post(url(server, ":predict"), json={"instances": images[:1].tolist()})
    assert response.status_code == 200


def test_the_app_keeps_its_own_limit_under_any_wsgi_server(exported_models):
    """Outside our waitress (which refuses first), Flask's MAX_CONTENT_LENGTH gives the same JSON 413."""
    settings = Settings.from_env(
        {"MODEL_NAME": MOBILENET, "MODEL_BASE_PATH": str(exported_models), "MAX_REQUEST_BYTES": "2048"}
    )
    versions = ModelVersions(settings, single_model(settings))
    versions.poll()
    response = (
        create_rest_app(versions, settings.max_request_bytes)
        .test_client()
        .post(f"/v1/models/{MOBILENET}:predict", data=b"[" + b"0," * 2048 + b"0]", content_type="application/json")
    )
    assert response.status_code == 413
    assert response.get_json() == {"error": "request body is over the limit of 2048 bytes"}


@pytest.mark.parametrize(
    ("dtype", "name"),
    [
        ("uint16", "DT_UINT16"),
        ("uint32", "DT_UINT32"),
        ("uint64", "DT_UINT64"),
        ("float16", "DT_HALF"),
        ("bool", "DT_BOOL"),
    ],
)
def test_metadata_names_every_tensor_dtype_as_grpc_does(dtype, name):
    model = LiteRTModel(Settings.from_env({"MODEL_NAME": "m"}), "m", 1, Path("/nowhere"))
    model.input = TensorSpec("x", "serving_default_x:0", np.dtype(dtype), (-1, 3))
    model.output = TensorSpec("y", "StatefulPartitionedCall:0", np.dtype("float32"), (-1, 2))
    signature = metadata(model)["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["x"] == {
        "name": "serving_default_x:0",
        "dtype": name,
        "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "3", "name": ""}], "unknown_rank": False},
    }
