"""The real-weights reference model and photos in ../shared, and what a correct pipeline answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gateway.imaging import ResizePolicy, decode, to_tensor
from tools.check_real_weights import CAT_CLASSES, ESPRESSO, assert_real_labels

__all__ = ["CAT_CLASSES", "ESPRESSO", "REFERENCE_POLICY", "assert_real_labels", "photo_tensor"]
REFERENCE_POLICY = ResizePolicy(resize_shorter=256, crop=224, interpolation="bilinear")


def photo_tensor(shared: Path, name: str) -> np.ndarray:
    data = (shared / "images" / f"{name}.jpg").read_bytes()
    return to_tensor(decode(data, max_pixels=50_000_000, min_shorter=256), REFERENCE_POLICY)
