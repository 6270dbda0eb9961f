"""The generated code is current, and our protos are wire-compatible with TensorFlow's."""

import subprocess
import sys

from protocol.generated import tfs_tensor_pb2, tfs_types_pb2
from tests.conftest import REPO


def test_generated_files_are_current():
    result = subprocess.run(
        [sys.executable, "-m", "tools.regenerate", "--check"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def _fields(message):
    return {f.name: (f.number, f.type, f.is_repeated) for f in message.fields}


def test_field_numbers_match_tensorflow():
    """Same numbers and types as TensorFlow's own descriptors (different package, same wire)."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    ours = _fields(tfs_tensor_pb2.TensorProto.DESCRIPTOR)
    theirs = _fields(tensor_pb2.TensorProto.DESCRIPTOR)
    assert {name: theirs[name] for name in ours} == ours
    assert _fields(tfs_tensor_pb2.TensorShapeProto.DESCRIPTOR) == {
        k: v for k, v in _fields(tensor_shape_pb2.TensorShapeProto.DESCRIPTOR).items() if k in ("dim", "unknown_rank")
    }
    assert _fields(tfs_tensor_pb2.TensorShapeProto.Dim.DESCRIPTOR) == _fields(
        tensor_shape_pb2.TensorShapeProto.Dim.DESCRIPTOR
    )
    for value in tfs_types_pb2.DataType.DESCRIPTOR.values:
        assert types_pb2.DataType.Value(value.name) == value.number


def test_loads_beside_tensorflow_in_one_process():
    """Our messages live in their own package, so a process may load TensorFlow after them."""
    script = (
        "import protocol.generated.tfs_predict_pb2\n"
        "from tensorflow.core.framework import tensor_pb2\n"
        "print(tensor_pb2.TensorProto.DESCRIPTOR.full_name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "tensorflow.TensorProto"


def test_signature_map_type_url_is_tf_servings():
    from google.protobuf import any_pb2

    from protocol.generated import tfs_predict_pb2

    packed = any_pb2.Any()
    packed.Pack(tfs_predict_pb2.SignatureDefMap())
    assert packed.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
