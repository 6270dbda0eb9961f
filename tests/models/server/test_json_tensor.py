"""The predict body parser: the same answer as json.loads, numpy arrays for plain numeric tensors."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.server import json_tensor


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [[1,2,3],[4,5,6]]}',
        b' {"signature_name": "serving_default", "inputs" : [[[1.5, -2e3, 0.25]]] } ',
        b'{"instances": [[[[0, 255, 7]]]], "signature_name": ""}',
        b'{"inputs": [1e-05, -0.5, 0, 10]}',
    ],
)
def test_plain_numeric_tensors_become_arrays(body):
    parsed = json_tensor.loads(body)
    reference = json.loads(body)
    assert parsed.keys() == reference.keys()
    for key, value in parsed.items():
        if key in ("instances", "inputs"):
            assert isinstance(value, np.ndarray)
            np.testing.assert_array_equal(value, np.asarray(reference[key]))
        else:
            assert value == reference[key]


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [[1,2],[3]]}',  # ragged
        b'{"instances": [[1,2],[3,4,5]], "other": 1}',
        b'{"instances": [{"images": [1, 2]}]}',  # named rows
        b'{"instances": []}',
        b'{"instances": [[]]}',
        b'{"instances": ["1"]}',
        b'{"inputs": [true, null]}',
        b'{"instances": "x"}',
        b"[1, 2]",
        b'{"caf\xc3\xa9": 1, "instances": [1]}',  # not ASCII
        b'{"instances": [18446744073709551616, -9223372036854775809]}',  # numpy would saturate these
        b'{"instances": [1234567890123456789012.5]}',
    ],
)
def test_everything_else_is_what_json_loads_gives(body):
    assert json_tensor.loads(body) == json.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [1,,2]}',
        b'{"instances": [01]}',
        b'{"instances": [-01]}',
        b'{"instances": [1.]}',
        b'{"instances": [.5]}',
        b'{"instances": [1, 2]} extra',
        b'{"instances": [1, 2],}',
        b'{"instances": [1, 2]',
        b'{"instances": [1 2]}',
        b'{"instances": [1e]}',
        b'{"instances": [--1]}',
        b'{"instances": [1]]}',
    ],
)
def test_invalid_json_is_a_value_error(body):
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(ValueError):
        json_tensor.loads(body)


def test_nesting_too_deep_for_json_loads_is_a_value_error():
    """json.loads raises RecursionError here: the old REST handler answered 500."""
    with pytest.raises(ValueError, match="nested too deeply"):
        json_tensor.loads(b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


tensors = (
    st.integers(1, 4)
    .flatmap(lambda rank: st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    .flatmap(
        lambda shape: st.one_of(
            st.builds(
                lambda v: np.array(v, np.int64).reshape(shape),
                st.lists(st.integers(-(2**40), 2**40), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))),
            ),
            st.builds(
                lambda v: np.array(v, np.float64).reshape(shape),
                st.lists(
                    st.floats(-1e6, 1e6, allow_nan=False), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))
                ),
            ),
        )
    )
)


@settings(max_examples=200, deadline=None)
@given(tensors, st.sampled_from(["instances", "inputs"]), st.sampled_from(["", " ", "\n\t"]))
def test_round_trip_matches_json_loads(array, key, blank):
    body = json.dumps({"signature_name": "serving_default", key: array.tolist()}).replace(", ", "," + blank).encode()
    parsed = json_tensor.loads(body)
    np.testing.assert_array_equal(np.asarray(parsed[key]), np.asarray(json.loads(body)[key]))
    assert parsed["signature_name"] == "serving_default"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(alphabet='[]{},:0123456789.-eE "', max_size=80).map(str.encode))
def test_fuzzed_bodies_parse_like_json_loads_or_raise_value_error(body):
    try:
        expected = json.loads(body)
    except (ValueError, RecursionError):
        with pytest.raises(ValueError):
            json_tensor.loads(body)
        return
    parsed = json_tensor.loads(body)
    if isinstance(parsed, dict):
        parsed = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in parsed.items()}
    assert parsed == expected
