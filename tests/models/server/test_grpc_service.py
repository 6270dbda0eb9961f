"""tensorflow.serving.PredictionService conformance over gRPC with our generated stubs."""

import grpc
import numpy as np
import pytest
from google.protobuf import wrappers_pb2

from protocol import tensors
from protocol.generated import tfs_predict_pb2, tfs_tensor_pb2, tfs_types_pb2
from tests.models.server.conftest import MOBILENET


def request(images, **spec):
    return tfs_predict_pb2.PredictRequest(
        model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET, **spec), inputs={"images": tensors.to_proto(images)}
    )


def test_predict_with_tensor_content(stub, images, reference):
    response = stub.Predict(request(images, signature_name="serving_default"), timeout=10)
    assert response.model_spec.name == MOBILENET and response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    assert list(response.outputs) == ["probabilities"]
    got = tensors.to_array(response.outputs["probabilities"])
    assert got.dtype == np.float32 and got.shape == (2, 1000)
    np.testing.assert_allclose(got, reference(images), atol=1e-6)


def test_predict_with_typed_int_val_and_any_input_name(stub, images, reference):
    proto = tfs_tensor_pb2.TensorProto(
        dtype=tfs_types_pb2.DT_UINT8,
        tensor_shape=tensors.shape_proto(images[:1].shape),
        int_val=images[:1].ravel().tolist(),
    )
    got = stub.Predict(
        tfs_predict_pb2.PredictRequest(model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET), inputs={"input_1": proto}),
        timeout=10,
    )
    np.testing.assert_allclose(tensors.to_array(got.outputs["probabilities"]), reference(images[:1]), atol=1e-6)


def test_predict_with_version_and_output_filter(stub, images):
    response = stub.Predict(
        tfs_predict_pb2.PredictRequest(
            model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET, version=wrappers_pb2.Int64Value(value=1)),
            inputs={"images": tensors.to_proto(images)},
            output_filter=["probabilities"],
        ),
        timeout=10,
    )
    assert tensors.to_array(response.outputs["probabilities"]).shape == (2, 1000)


def uint8_request(shape, **tensor_fields):
    """A request whose one input is a DT_UINT8 TensorProto of ``shape`` built field by field."""
    tensor = tfs_tensor_pb2.TensorProto(
        dtype=tfs_types_pb2.DT_UINT8, tensor_shape=tensors.shape_proto(shape), **tensor_fields
    )
    return tfs_predict_pb2.PredictRequest(
        model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET), inputs={"images": tensor}
    )


@pytest.mark.parametrize(
    ("build", "code", "message"),
    [
        (lambda im: request(im.astype(np.float32)), grpc.StatusCode.INVALID_ARGUMENT, "must be uint8"),
        (lambda im: request(im[:, :100]), grpc.StatusCode.INVALID_ARGUMENT, "must have shape"),
        (lambda im: request(np.zeros((5, 224, 224, 3), np.uint8)), grpc.StatusCode.INVALID_ARGUMENT, "batch of 5"),
        (lambda im: request(im, signature_name="other"), grpc.StatusCode.INVALID_ARGUMENT, "not found"),
        (lambda im: request(im, version=wrappers_pb2.Int64Value(value=3)), grpc.StatusCode.NOT_FOUND, "Specific"),
        (
            lambda im: request(im, version_label="stable"),
            grpc.StatusCode.NOT_FOUND,
            "Unrecognized servable version label",
        ),
        (
            lambda im: tfs_predict_pb2.PredictRequest(
                model_spec=tfs_predict_pb2.ModelSpec(name="other"), inputs={"images": tensors.to_proto(im)}
            ),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found",
        ),
        (
            lambda im: tfs_predict_pb2.PredictRequest(model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "one input",
        ),
        (
            lambda im: tfs_predict_pb2.PredictRequest(
                model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET),
                inputs={"images": tensors.to_proto(im)},
                output_filter=["logits"],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "logits",
        ),
        (
            lambda im: uint8_request([1, 224, 224, 3], tensor_content=b"short"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "tensor_content holds 5 bytes",
        ),
        (
            lambda im: uint8_request([10**6, 224, 224, 3]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "exceeds the limit",
        ),
        # The int64 product of these dimensions wraps to 0: the old code answered INTERNAL.
        (
            lambda im: uint8_request([2**62, 224, 224, 3]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "overflows int64",
        ),
    ],
)
def test_predict_errors(stub, images, build, code, message):
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(build(images), timeout=10)
    assert caught.value.code() == code
    assert message in caught.value.details()


def test_get_model_metadata(stub):
    response = stub.GetModelMetadata(
        tfs_predict_pb2.GetModelMetadataRequest(
            model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET), metadata_field=["signature_def"]
        ),
        timeout=10,
    )
    assert response.model_spec.version.value == 1
    signatures = tfs_predict_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    signature = signatures.signature_def["serving_default"]
    assert signature.inputs["images"].dtype == tfs_types_pb2.DT_UINT8
    assert [d.size for d in signature.inputs["images"].tensor_shape.dim] == [-1, 224, 224, 3]
    assert [d.size for d in signature.outputs["probabilities"].tensor_shape.dim] == [-1, 1000]


def test_request_over_the_message_limit_is_refused(stub):
    big = np.zeros((4, 224, 224, 3), np.uint8)
    proto = tensors.to_proto(big)
    proto.tensor_content = proto.tensor_content * 8  # > 4 MiB limit of this server
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(
            tfs_predict_pb2.PredictRequest(
                model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET), inputs={"images": proto}
            ),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
