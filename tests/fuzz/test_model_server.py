"""The model server's REST and gRPC surfaces fuzzed: every answer is a result or a client error
(HTTP 400/404/413, gRPC INVALID_ARGUMENT/NOT_FOUND/RESOURCE_EXHAUSTED), never an internal one."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.server.grpc_service import create_grpc_server
from models.server.rest import create_rest_app
from models.server.settings import Settings
from models.server.versions import ModelVersions, single_model
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc, tfs_tensor_pb2, tfs_types_pb2
from tests.fuzz.conftest import FUZZ
from tests.fuzz.mutations import mutated
from tests.models.server.conftest import MOBILENET

MAX_BYTES = 2 << 20
CLIENT_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED}


@pytest.fixture(scope="module")
def model(exported_models):
    settings = Settings.from_env(
        {
            "MODEL_NAME": MOBILENET,
            "MODEL_BASE_PATH": str(exported_models),
            "MAX_BATCH": "2",
            "MAX_REQUEST_BYTES": str(MAX_BYTES),
            "INTERPRETERS": "1",
        }
    )
    served = ModelVersions(settings, single_model(settings))
    served.poll()
    return served


@pytest.fixture(scope="module")
def rest(model):
    return create_rest_app(model, MAX_BYTES).test_client()


@pytest.fixture(scope="module")
def stub(model):
    server = create_grpc_server(model, workers=2, max_message_bytes=MAX_BYTES)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield tfs_predict_pb2_grpc.PredictionServiceStub(channel)
    server.stop(None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=40,
)
image_rows = st.integers(1, 3).map(lambda n: np.zeros((n, 224, 224, 3), np.uint8).tolist())
bodies = st.one_of(
    st.fixed_dictionaries({"instances": json_values | image_rows}).map(json.dumps).map(str.encode),
    st.fixed_dictionaries({"inputs": json_values | image_rows}, optional={"signature_name": st.text(max_size=20)})
    .map(json.dumps)
    .map(str.encode),
    mutated(st.just(json.dumps({"instances": [[[[1, 2, 3]] * 4] * 4]}).encode())),
    st.binary(max_size=300),
    st.integers(1, 20_000).map(lambda depth: b'{"instances": ' + b"[" * depth + b"1" + b"]" * depth + b"}"),
)
paths = st.one_of(
    st.just(f"/v1/models/{MOBILENET}:predict"),
    st.text("0123456789-", min_size=1, max_size=40).map(lambda v: f"/v1/models/{MOBILENET}/versions/{v}:predict"),
    st.text(max_size=20).map(lambda tail: f"/v1/models/{MOBILENET}{tail}"),
)


@FUZZ
@given(path=paths, body=bodies)
def test_rest_predict(rest, path, body):
    response = rest.post(path, data=body, content_type="application/json")
    assert response.status_code in (200, 400, 404, 405, 413), (response.status_code, response.data[:300])
    answer = response.get_json()
    assert answer is not None and (response.status_code == 200) == ("error" not in answer)


@FUZZ
@given(path=paths.map(lambda p: p.replace(":predict", "")) | st.text(max_size=30).map(lambda t: "/v1/models/" + t))
def test_rest_status_and_metadata(rest, path):
    for suffix in ("", "/metadata"):
        response = rest.get(path + suffix)
        assert response.status_code in (200, 400, 404, 405), (response.status_code, response.data[:300])


dims = st.lists(
    st.one_of(st.integers(0, 8), st.sampled_from([224, 3, 2**31, 2**62, 2**63 - 1]), st.integers(-3, -1)), max_size=6
)
tensors = st.builds(
    lambda dtype, shape, content, values, rank_unknown: tfs_tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tfs_tensor_pb2.TensorShapeProto(
            dim=[tfs_tensor_pb2.TensorShapeProto.Dim(size=d) for d in shape], unknown_rank=rank_unknown
        ),
        tensor_content=content,
        int_val=values,
    ),
    st.sampled_from(
        [
            tfs_types_pb2.DT_UINT8,
            tfs_types_pb2.DT_FLOAT,
            tfs_types_pb2.DT_INT32,
            tfs_types_pb2.DT_STRING,
            tfs_types_pb2.DT_HALF,
            99,
        ]
    ),
    dims,
    st.binary(max_size=64) | st.just(bytes(224 * 224 * 3)),
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=8),
    st.booleans(),
)
specs = st.builds(
    lambda name, signature, version, label: tfs_predict_pb2.ModelSpec(
        name=name,
        signature_name=signature,
        **({"version_label": label} if label else {}),
        **({"version": {"value": version}} if version is not None and not label else {}),
    ),
    st.sampled_from([MOBILENET, "", "other"]),
    st.sampled_from(["", "serving_default", "x"]),
    st.none() | st.integers(-(2**63), 2**63 - 1),
    st.sampled_from(["", "stable"]),
)


@FUZZ
@given(
    spec=specs,
    inputs=st.dictionaries(st.sampled_from(["images", "x", ""]), tensors, max_size=2),
    output_filter=st.lists(st.sampled_from(["probabilities", "logits"]), max_size=2),
)
def test_grpc_predict(stub, spec, inputs, output_filter):
    request = tfs_predict_pb2.PredictRequest(model_spec=spec, inputs=inputs, output_filter=output_filter)
    try:
        response = stub.Predict(request, timeout=30)
    except grpc.RpcError as error:
        assert error.code() in CLIENT_ERRORS, (error.code(), error.details())
    else:
        assert response.outputs["probabilities"].tensor_shape.dim[1].size == 1000
