"""Write one model version in TF-Serving layout: SavedModel, LiteRT files and a manifest."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from models.export.catalog import ModelEntry
from models.export.weights import sha256_of
from protocol.contract import IMAGE_SIZE, INPUT_DTYPE, INPUT_NAME, NUM_CLASSES, OUTPUT_DTYPE, OUTPUT_NAME, SIGNATURE

TFLITE_FLOAT32 = "model.tflite"
TFLITE_INT8 = "model_int8.tflite"
MANIFEST = "manifest.json"


def write_saved_model(model: keras.Model, version_dir: Path) -> None:
    # ExportArchive, not tf.saved_model.save: on a Keras 3 model the latter yields a SavedModel
    # from which the TFLite converter silently drops the weights. No track(): the endpoint's
    # captured variables are saved once; tracking the model would store them twice.
    archive = keras.export.ExportArchive()
    archive.add_endpoint(
        name=SIGNATURE,
        fn=lambda images: {OUTPUT_NAME: model(images, training=False)},
        input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], INPUT_DTYPE, name=INPUT_NAME)],
    )
    archive.write_out(str(version_dir), verbose=False)


def write_tflite(version_dir: Path, int8: bool) -> Path:
    converter = tf.lite.TFLiteConverter.from_saved_model(str(version_dir), signature_keys=[SIGNATURE])
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic-range int8 weights
    target = version_dir / (TFLITE_INT8 if int8 else TFLITE_FLOAT32)
    target.write_bytes(converter.convert())
    return target


def write_manifest(
    version_dir: Path, entry: ModelEntry, version: int, weights: dict[str, Any], seconds: float
) -> dict[str, Any]:
    files = {
        str(path.relative_to(version_dir)): {"sha256": sha256_of(path), "bytes": path.stat().st_size}
        for path in sorted(version_dir.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    manifest = {
        "model": entry.name,
        "version": version,
        "weights": weights,
        "signature": SIGNATURE,
        "input": {
            "name": INPUT_NAME,
            "dtype": INPUT_DTYPE,
            "shape": [-1, IMAGE_SIZE, IMAGE_SIZE, 3],
            "layout": "NHWC RGB",
        },
        "output": {
            "name": OUTPUT_NAME,
            "dtype": OUTPUT_DTYPE,
            "shape": [-1, NUM_CLASSES],
            "meaning": "softmax, ImageNet-1k order",
        },
        "preprocessing": {
            "resize_shorter": entry.resize_shorter,
            "crop": IMAGE_SIZE,
            "interpolation": entry.interpolation,
        },
        "files": files,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "export_seconds": round(seconds, 1),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    (version_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
