"""The real-weights reference model and photos in ../shared, and what a correct pipeline answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gateway.imaging import ResizePolicy, decode, to_tensor

CAT_CLASSES = range(281, 288)  # tabby .. Egyptian cat
ESPRESSO = 967
REFERENCE_POLICY = ResizePolicy(resize_shorter=256, crop=224, interpolation="bilinear")


def photo_tensor(shared: Path, name: str) -> np.ndarray:
    data = (shared / "images" / f"{name}.jpg").read_bytes()
    return to_tensor(decode(data, max_pixels=50_000_000, min_shorter=256), REFERENCE_POLICY)


def assert_real_labels(top1_chelsea: int, top1_coffee: int) -> None:
    assert top1_chelsea in CAT_CLASSES, f"chelsea.jpg: class {top1_chelsea} is not a cat"
    assert top1_coffee == ESPRESSO, f"coffee.jpg: class {top1_coffee} is not espresso"
