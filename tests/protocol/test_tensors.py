import numpy as np
import pytest

from protocol import tensors
from protocol.generated import tfs_predict_pb2, tfs_tensor_pb2, tfs_types_pb2

DT = tfs_types_pb2.DataType


@pytest.mark.parametrize(
    "dtype",
    ["uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64", "float16", "float32", "float64", "bool"],
)
def test_round_trip_through_tensor_content(dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    proto = tensors.to_proto(array)
    assert proto.tensor_content and not proto.float_val
    wire = tfs_predict_pb2.PredictRequest(inputs={"x": proto}).SerializeToString()
    decoded = tensors.to_array(tfs_predict_pb2.PredictRequest.FromString(wire).inputs["x"])
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


def test_non_contiguous_and_big_endian_arrays_are_encoded_correctly():
    array = np.arange(12, dtype=">f4").reshape(3, 4).T
    np.testing.assert_array_equal(tensors.to_array(tensors.to_proto(array)), array)


@pytest.mark.parametrize(
    ("dtype", "field", "values", "expected"),
    [
        (DT.DT_FLOAT, "float_val", [1.5, 2.5, 3.5, 4.5], np.array([[1.5, 2.5], [3.5, 4.5]], np.float32)),
        (DT.DT_UINT8, "int_val", [0, 255, 7, 9], np.array([[0, 255], [7, 9]], np.uint8)),
        (DT.DT_INT64, "int64_val", [1, -2, 3, -4], np.array([[1, -2], [3, -4]], np.int64)),
        (DT.DT_BOOL, "bool_val", [True, False, True, True], np.array([[True, False], [True, True]])),
        (
            DT.DT_HALF,
            "half_val",
            list(np.array([1, 2, 3, 4], np.float16).view(np.uint16)),
            np.array([[1, 2], [3, 4]], np.float16),
        ),
    ],
)
def test_typed_value_fields(dtype, field, values, expected):
    proto = tfs_tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensors.shape_proto([2, 2]))
    getattr(proto, field).extend(values)
    decoded = tensors.to_array(proto)
    assert decoded.dtype == expected.dtype
    np.testing.assert_array_equal(decoded, expected)


def test_typed_values_follow_tensorflow_fill_rules():
    proto = tfs_tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, tensor_shape=tensors.shape_proto([2, 3]), float_val=[1, 2])
    np.testing.assert_array_equal(tensors.to_array(proto), [[1, 2, 2], [2, 2, 2]])
    empty = tfs_tensor_pb2.TensorProto(dtype=DT.DT_INT32, tensor_shape=tensors.shape_proto([3]))
    np.testing.assert_array_equal(tensors.to_array(empty), [0, 0, 0])


@pytest.mark.parametrize(
    ("proto", "message"),
    [
        (
            tfs_tensor_pb2.TensorProto(dtype=DT.DT_STRING, tensor_shape=tensors.shape_proto([1])),
            "unsupported tensor dtype DT_STRING",
        ),
        (
            tfs_tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, tensor_shape=tensors.shape_proto([2]), tensor_content=b"abc"),
            "holds 3 bytes",
        ),
        (
            tfs_tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, tensor_shape=tensors.shape_proto([1]), float_val=[1, 2]),
            "2 values given",
        ),
        (
            tfs_tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, tensor_shape=tensors.shape_proto([-1, 2])),
            "negative dimension",
        ),
        (
            tfs_tensor_pb2.TensorProto(
                dtype=DT.DT_FLOAT, tensor_shape=tfs_tensor_pb2.TensorShapeProto(unknown_rank=True)
            ),
            "unknown rank",
        ),
        (tfs_tensor_pb2.TensorProto(dtype=99, tensor_shape=tensors.shape_proto([1])), "DataType(99)"),
        # The int64 product of these wraps to 0 or a small number: the old code then allocated or crashed.
        (
            tfs_tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, tensor_shape=tensors.shape_proto([2**32, 2**32])),
            "overflows int64",
        ),
        (
            tfs_tensor_pb2.TensorProto(dtype=DT.DT_UINT8, tensor_shape=tensors.shape_proto([2**62, 4, 3])),
            "overflows int64",
        ),
        (
            tfs_tensor_pb2.TensorProto(dtype=DT.DT_UINT8, tensor_shape=tensors.shape_proto([2**62, 8, 0])),
            "overflows int64",
        ),
        (tfs_tensor_pb2.TensorProto(dtype=DT.DT_UINT8, tensor_shape=tensors.shape_proto([1] * 70)), "70 dimensions"),
    ],
)
def test_malformed_tensors_raise_a_clear_error(proto, message):
    with pytest.raises(tensors.TensorEncodingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tensors.to_array(proto)


def test_element_limit_is_checked_before_allocating():
    huge = tfs_tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, tensor_shape=tensors.shape_proto([100000, 100000]))
    with pytest.raises(tensors.TensorEncodingError, match="exceeds the limit"):
        tensors.to_array(huge, max_elements=1000)


def test_unsupported_array_dtype():
    with pytest.raises(tensors.TensorEncodingError, match="unsupported array dtype"):
        tensors.to_proto(np.array(["a"]))
