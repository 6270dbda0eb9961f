"""The gateway against a real TensorFlow Serving running our WRN-50-2 SavedModel export.

TensorFlow Serving has no pip package or Debian package; it exists only as the tensorflow/serving
container image, which this project's machines cannot pull. The public CI workflow starts it and
sets TFSERVING_GRPC (host:port) and TFSERVING_REST (http://host:port); elsewhere these tests skip.
"""

import os

import numpy as np
import pytest
import requests

from gateway.clients import GrpcModelClient, RestModelClient
from gateway.imaging import ResizePolicy
from gateway.settings import BackendSettings
from local_mode.processes import Gateway

GRPC, REST = os.environ.get("TFSERVING_GRPC"), os.environ.get("TFSERVING_REST")
MODEL = "wide_resnet50_2"
pytestmark = pytest.mark.skipif(
    not (GRPC and REST),
    reason="no TensorFlow Serving here (the tensorflow/serving "
    "image cannot be pulled); the public CI workflow sets TFSERVING_GRPC/TFSERVING_REST",
)


def backend(protocol: str) -> BackendSettings:
    url = f"grpc://{GRPC}" if protocol == "grpc" else REST
    target = GRPC if protocol == "grpc" else REST
    return BackendSettings("primary", url, protocol, target, MODEL, ResizePolicy(232))


@pytest.mark.parametrize("kind", [GrpcModelClient, RestModelClient])
def test_our_clients_speak_to_tensorflow_serving(kind):
    client = kind(backend("grpc" if kind is GrpcModelClient else "rest"), workers=2)
    try:
        assert client.status(5) == "AVAILABLE"
        images = np.random.default_rng(0).integers(0, 256, size=(1, 224, 224, 3), dtype=np.uint8)
        prediction = client.submit(images, 30).result()
        assert prediction.probabilities.shape == (1, 1000)
        np.testing.assert_allclose(prediction.probabilities.sum(), 1.0, atol=1e-4)
    finally:
        client.close()


def test_gateway_uses_tensorflow_serving_as_its_primary(tmp_path):
    with Gateway(
        tmp_path / "log",
        PRIMARY_URL=f"grpc://{GRPC}",
        PRIMARY_MODEL=MODEL,
        PRIMARY_RESIZE_SHORTER="232",
        REQUEST_DEADLINE_MS="10000",
    ) as gateway:
        gateway.start()
        pixels = np.random.default_rng(1).integers(0, 256, size=(300, 400, 3), dtype=np.uint8)
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        response = requests.post(
            f"{gateway.url}/classify", data=buffer.getvalue(), headers={"Content-Type": "image/png"}, timeout=30
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == MODEL and body["fallback"] is False and body["model_version"] == "1"
