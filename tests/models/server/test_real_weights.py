"""With real weights, the server classifies real photos correctly through both APIs."""

import grpc
import numpy as np
import requests

from protocol import tensors
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc
from tests.real_weights import assert_real_labels, photo_tensor


def test_rest_and_grpc_name_the_cat_and_the_espresso(efficientnet, shared_dir):
    photos = np.concatenate([photo_tensor(shared_dir, "chelsea"), photo_tensor(shared_dir, "coffee")])
    rest = requests.post(f"{efficientnet.rest}/v1/models/efficientnet:predict", json={"instances": photos.tolist()})
    assert rest.status_code == 200
    rest_top1 = np.array(rest.json()["predictions"]).argmax(axis=1)
    assert_real_labels(*rest_top1)

    with grpc.insecure_channel(efficientnet.grpc_target) as channel:
        response = tfs_predict_pb2_grpc.PredictionServiceStub(channel).Predict(
            tfs_predict_pb2.PredictRequest(
                model_spec=tfs_predict_pb2.ModelSpec(name="efficientnet"), inputs={"args_0": tensors.to_proto(photos)}
            ),
            timeout=30,
        )
    assert list(response.outputs) == ["output_0"]
    grpc_probabilities = tensors.to_array(response.outputs["output_0"])
    assert_real_labels(*grpc_probabilities.argmax(axis=1))
    np.testing.assert_allclose(grpc_probabilities, np.array(rest.json()["predictions"]), atol=1e-6)
