"""Where a model's weights come from: a checked download, or seeded random initialisation."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from models.export.catalog import WeightsFile
from models.export.progress import Progress
from protocol.contract import IMAGE_SIZE

if TYPE_CHECKING:
    import keras

DOWNLOAD_TIMEOUT_S = 30


class ExportError(RuntimeError):
    """A failure the CLI reports as one line (exit status 1)."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_with_progress(response: BinaryIO, out: BinaryIO, name: str, progress: Progress) -> None:
    length = response.headers.get("Content-Length", "")
    total = int(length) if length.isdigit() else None
    done = 0
    while chunk := response.read(1 << 20):
        out.write(chunk)
        done += len(chunk)
        progress.transfer(f"downloading {name}", done, total)
    progress.end(f"downloaded {name} ({done / 1e6:.1f} MB)")


def fetch(
    weights: WeightsFile, cache_dir: Path, url: str | None = None, progress: Progress | None = None
) -> tuple[Path, str]:
    """Download (or reuse) the weights file; return its path and sha256 after checking it."""
    progress = progress or Progress()
    url = url or weights.url
    target = cache_dir / weights.url.rsplit("/", 1)[-1]
    if not target.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, partial.open("wb") as out:
                _copy_with_progress(response, out, target.name, progress)
        except (urllib.error.URLError, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise ExportError(
                f"cannot download ImageNet weights from {url} ({exc}); "
                "use --weights random offline, or put the file in --cache-dir"
            ) from exc
        partial.rename(target)
    digest = sha256_of(target)
    if not digest.startswith(weights.sha256_prefix):
        target.unlink()
        raise ExportError(
            f"checksum mismatch for {target.name}: sha256 {digest[:16]}..., expected {weights.sha256_prefix}..."
        )
    return target, digest


def synthetic_images(rng: np.random.Generator, count: int) -> np.ndarray:
    """Smooth random colour fields: closer to photo statistics than white noise."""
    coarse = rng.integers(0, 256, size=(count, 7, 7, 3)).astype(np.float32)
    upsampled = coarse.repeat(IMAGE_SIZE // 7, axis=1).repeat(IMAGE_SIZE // 7, axis=2)
    noise = rng.normal(0, 12, size=upsampled.shape)
    return np.clip(upsampled + noise, 0, 255).astype(np.uint8)


def reestimate_batchnorm(model: keras.Model, seed: int, batches: int = 4, batch_size: int = 8) -> None:
    """Set BatchNorm moving statistics to the running average of synthetic-batch statistics.

    With random weights and the default statistics (mean 0, variance 1), activations blow up or
    vanish through 50 layers and every input gets the same answer. Momentum i/(i+1) on batch i
    turns Keras' moving average into an exact average over the batches.
    """
    import keras

    norms = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    rng = np.random.default_rng(seed)
    try:
        for i in range(batches):
            for layer in norms:
                layer.momentum = i / (i + 1)
            model(synthetic_images(rng, batch_size), training=True)
    finally:
        for layer, momentum in zip(norms, saved, strict=True):
            layer.momentum = momentum


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):
            found.extend(_all_layers(layer))
    return found
