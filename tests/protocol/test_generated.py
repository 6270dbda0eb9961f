"""The generated code is current, and our protos are wire-compatible with TensorFlow's."""

import json
import subprocess
import sys

from protocol.generated import tensor_pb2, types_pb2

from tests.conftest import REPO


def test_generated_files_are_current():
    result = subprocess.run([sys.executable, "-m", "tools.regenerate", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


_COMPARE = r"""
import json
def fields(message):
    return {f.name: (f.number, f.type, f.is_repeated) for f in message.fields}
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
out = {
  "TensorProto": fields(tensor_pb2.TensorProto.DESCRIPTOR),
  "TensorShapeProto": fields(tensor_shape_pb2.TensorShapeProto.DESCRIPTOR),
  "Dim": fields(tensor_shape_pb2.TensorShapeProto.Dim.DESCRIPTOR),
  "DataType": {v.name: v.number for v in types_pb2.DataType.DESCRIPTOR.values},
}
print(json.dumps(out))
"""


def test_field_numbers_match_tensorflow():
    """Read TensorFlow's own descriptors in a child: both sets in one process would clash by name."""
    result = subprocess.run([sys.executable, "-c", _COMPARE], capture_output=True, text=True,
                            timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    theirs = json.loads(result.stdout.strip().splitlines()[-1])

    def fields(message):
        return {f.name: [f.number, f.type, f.is_repeated] for f in message.fields}

    for name, field in fields(tensor_pb2.TensorProto.DESCRIPTOR).items():
        assert theirs["TensorProto"][name] == field, name
    assert fields(tensor_pb2.TensorShapeProto.DESCRIPTOR) == {
        k: v for k, v in theirs["TensorShapeProto"].items() if k in ("dim", "unknown_rank")}
    assert fields(tensor_pb2.TensorShapeProto.Dim.DESCRIPTOR) == theirs["Dim"]
    for value in types_pb2.DataType.DESCRIPTOR.values:
        assert theirs["DataType"][value.name] == value.number
