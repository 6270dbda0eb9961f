"""Canary test material: a model server holding a stable and a canary version, and small LiteRT
models that make bad canaries, written by TensorFlow in a child process (~10 s):

- ``wrong_size``: takes [N, 160, 160, 3], so the server refuses our 224 px tensors (an erroring canary);
- ``constant``: the contract's shapes, always answering class 7 first (a canary that disagrees);
- ``slow``: the contract's shapes, always class 7, after ~0.7 s of matrix products (a slow canary).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from local_mode.processes import ModelServer, serve_tflite

SCRIPT = r"""
import sys
import numpy as np
import tensorflow as tf

out = sys.argv[1]

def convert(name, size, work):
    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="images")])
    def serve(images):
        x = tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2, 3])[:, None]
        weight = tf.constant(np.random.default_rng(0).random((768, 768), np.float32) / 768.0)
        total = tf.tile(x[:, :, None], [1, 128, 768])
        for _ in range(work):
            total = tf.matmul(total, weight)
        logits = tf.one_hot(tf.fill(tf.shape(x)[:1], 7), 1000) * 10.0 + 0.0 * tf.reduce_sum(total, [1, 2])[:, None]
        return {"probabilities": tf.nn.softmax(logits)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], serve)
    with open(f"{out}/{name}.tflite", "wb") as handle:
        handle.write(converter.convert())

convert("wrong_size", 160, 0)
convert("constant", 224, 0)
convert("slow", 224, 500)
"""


def write_canary_models(out: Path) -> Path:
    subprocess.run([sys.executable, "-c", SCRIPT, str(out)], check=True, timeout=600, capture_output=True)
    return out


def canary_server(base: Path, model: str, stable: Path, canary: Path, log: Path) -> ModelServer:
    """Our model server with version 1 (``stable``) and 2 (``canary``) of ``model`` under those labels."""
    serve_tflite(base, model, stable, 1)
    serve_tflite(base, model, canary, 2)
    config = base / "models.config"
    config.write_text(
        f"model_config_list {{ config {{ name: '{model}' base_path: '{base / model}' "
        "model_version_policy { all {} } "
        "version_labels { key: 'stable' value: 1 } version_labels { key: 'canary' value: 2 } } }"
    )
    return ModelServer(base, model, log, MODEL_NAME="", MODEL_CONFIG_FILE=str(config))
