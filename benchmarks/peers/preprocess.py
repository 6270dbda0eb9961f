"""The preprocessing our gateway applies for MobileNetV3, written as a BentoML user would: Pillow and
numpy only, the export manifest's steps (shorter side to 256, bilinear, centre crop 224, uint8 RGB)
with the gateway's two savings (JPEG ``draft`` to the smallest DCT scale that keeps the shorter side
>= 256; one resample of just the box that lands in the crop). Same pixels as gateway.imaging for
RGB photos (tests/benchmarks/test_peer_preprocess.py), so the BentoML peer pays what we pay per image.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

RESIZE_SHORTER = 256
CROP = 224


def to_batch(data: bytes) -> np.ndarray:
    """Encoded image -> uint8 [1, 224, 224, 3]."""
    encoded = Image.open(io.BytesIO(data))
    width, height = encoded.size
    scale = RESIZE_SHORTER / min(width, height)
    if encoded.format == "JPEG":
        encoded.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
    image = ImageOps.exif_transpose(encoded).convert("RGB")
    width, height = image.size
    scale = RESIZE_SHORTER / min(width, height)
    left = round((width * scale - CROP) / 2) / scale
    top = round((height * scale - CROP) / 2) / scale
    box = (left, top, left + CROP / scale, top + CROP / scale)
    resized = image.resize((CROP, CROP), Image.Resampling.BILINEAR, box=box, reducing_gap=None)
    return np.asarray(resized, dtype=np.uint8)[np.newaxis]
