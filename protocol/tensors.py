"""numpy <-> tensorflow.TensorProto, with TensorFlow's decoding rules and without TensorFlow.

Encoding always uses ``tensor_content`` (one memcpy, the fastest form on the wire). Decoding also
accepts the typed ``*_val`` fields the way ``tf.make_ndarray`` does: no values means zeros, fewer
values than elements repeats the last one.
"""

from __future__ import annotations

import math

import numpy as np

from protocol.generated import tfs_tensor_pb2, tfs_types_pb2

DataType = tfs_types_pb2.DataType

_NUMPY_BY_DTYPE: dict[int, np.dtype] = {
    DataType.DT_FLOAT: np.dtype("<f4"),
    DataType.DT_DOUBLE: np.dtype("<f8"),
    DataType.DT_HALF: np.dtype("<f2"),
    DataType.DT_INT8: np.dtype("i1"),
    DataType.DT_INT16: np.dtype("<i2"),
    DataType.DT_INT32: np.dtype("<i4"),
    DataType.DT_INT64: np.dtype("<i8"),
    DataType.DT_UINT8: np.dtype("u1"),
    DataType.DT_UINT16: np.dtype("<u2"),
    DataType.DT_UINT32: np.dtype("<u4"),
    DataType.DT_UINT64: np.dtype("<u8"),
    DataType.DT_BOOL: np.dtype("?"),
}
_DTYPE_BY_NUMPY = {np_dtype.newbyteorder("="): dt for dt, np_dtype in _NUMPY_BY_DTYPE.items()}
_VALUE_FIELD = {
    DataType.DT_FLOAT: "float_val",
    DataType.DT_DOUBLE: "double_val",
    DataType.DT_HALF: "half_val",
    DataType.DT_INT8: "int_val",
    DataType.DT_INT16: "int_val",
    DataType.DT_INT32: "int_val",
    DataType.DT_UINT8: "int_val",
    DataType.DT_UINT16: "int_val",
    DataType.DT_INT64: "int64_val",
    DataType.DT_UINT32: "uint32_val",
    DataType.DT_UINT64: "uint64_val",
    DataType.DT_BOOL: "bool_val",
}


MAX_RANK = 32  # numpy's limit is 64; TensorFlow's own kernels stop well before either


class TensorEncodingError(ValueError):
    """The TensorProto cannot be turned into an array (maps to INVALID_ARGUMENT / HTTP 400)."""


def dtype_name(dtype: int) -> str:
    return DataType.Name(dtype) if dtype in DataType.values() else f"DataType({dtype})"


def numpy_dtype(dtype: int) -> np.dtype:
    try:
        return _NUMPY_BY_DTYPE[dtype]
    except KeyError:
        raise TensorEncodingError(f"unsupported tensor dtype {dtype_name(dtype)}") from None


def proto_dtype(dtype: np.dtype) -> int:
    try:
        return _DTYPE_BY_NUMPY[np.dtype(dtype).newbyteorder("=")]
    except KeyError:
        raise TensorEncodingError(f"unsupported array dtype {np.dtype(dtype)}") from None


def shape_proto(shape: tuple[int, ...] | list[int]) -> tfs_tensor_pb2.TensorShapeProto:
    return tfs_tensor_pb2.TensorShapeProto(dim=[tfs_tensor_pb2.TensorShapeProto.Dim(size=int(s)) for s in shape])


def to_proto(array: np.ndarray) -> tfs_tensor_pb2.TensorProto:
    array = np.asarray(array)
    dtype = proto_dtype(array.dtype)
    contiguous = np.ascontiguousarray(array, dtype=_NUMPY_BY_DTYPE[dtype])
    return tfs_tensor_pb2.TensorProto(
        dtype=dtype, tensor_shape=shape_proto(array.shape), tensor_content=contiguous.tobytes()
    )


def to_array(tensor: tfs_tensor_pb2.TensorProto, max_elements: int | None = None) -> np.ndarray:
    dtype = numpy_dtype(tensor.dtype)
    if tensor.tensor_shape.unknown_rank:
        raise TensorEncodingError("tensor_shape has unknown rank")
    shape = tuple(dim.size for dim in tensor.tensor_shape.dim)
    if len(shape) > MAX_RANK:
        raise TensorEncodingError(f"tensor_shape has {len(shape)} dimensions, more than {MAX_RANK}")
    if any(size < 0 for size in shape):
        raise TensorEncodingError(f"tensor_shape {list(shape)} has a negative dimension")
    # Python integers: an int64 product of hostile dimensions wraps around. Like TensorFlow's
    # TensorShape, refuse dimensions whose product (zeros left out) overflows int64.
    if math.prod(size for size in shape if size) >= 1 << 63:
        raise TensorEncodingError(f"tensor_shape {list(shape)} overflows int64 elements")
    count = math.prod(shape)
    if max_elements is not None and count > max_elements:
        raise TensorEncodingError(f"tensor of shape {list(shape)} exceeds the limit of {max_elements} elements")
    if tensor.tensor_content:
        if len(tensor.tensor_content) != count * dtype.itemsize:
            raise TensorEncodingError(
                f"tensor_content holds {len(tensor.tensor_content)} bytes; shape {list(shape)} of "
                f"{dtype_name(tensor.dtype)} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape)
    values = getattr(tensor, _VALUE_FIELD[tensor.dtype])
    if len(values) > count:
        raise TensorEncodingError(f"{len(values)} values given for shape {list(shape)} ({count} elements)")
    if tensor.dtype == DataType.DT_HALF:
        flat = np.array(values, dtype=np.uint16).view(np.float16)
    else:
        flat = np.array(values, dtype=dtype)
    if len(flat) == 0:
        return np.zeros(shape, dtype=dtype)
    if len(flat) < count:
        flat = np.pad(flat, (0, count - len(flat)), mode="edge")
    return flat.reshape(shape)
