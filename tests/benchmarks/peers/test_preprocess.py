"""The BentoML peer gets the same pixels our gateway sends the model, so it pays the same imaging."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.peers.preprocess import to_batch
from gateway.imaging import ResizePolicy, decode, to_tensor

DATA = Path(__file__).resolve().parents[2] / "data"


def gateway_tensor(data: bytes) -> np.ndarray:
    policy = ResizePolicy(256, 224, "bilinear")  # the MobileNetV3 export's manifest
    return to_tensor(decode(data, 50_000_000, policy.resize_shorter), policy)


def jpeg(size: tuple[int, int], orientation: int = 1) -> bytes:
    rng = np.random.default_rng(1)
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    coarse.save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["chelsea.jpg", "coffee.jpg"])
def test_same_pixels_as_the_gateway_for_the_test_photos(name):
    data = (DATA / name).read_bytes()
    batch = to_batch(data)
    assert batch.shape == (1, 224, 224, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch, gateway_tensor(data))


@pytest.mark.parametrize("size, orientation", [((2448, 1632), 1), ((333, 1001), 1), ((1200, 900), 6), ((640, 480), 8)])
def test_same_pixels_for_large_tall_and_rotated_jpegs(size, orientation):
    data = jpeg(size, orientation)
    np.testing.assert_array_equal(to_batch(data), gateway_tensor(data))
