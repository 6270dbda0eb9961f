"""Which primary on a CPU-only host? WRN-50-2 latency at batch 1 on this machine's cores.

    .venv/bin/python -m benchmarks.primary_cpu --models build/models

Compares LiteRT float32 and dynamic-range int8 (what our server would run) with the SavedModel on
TensorFlow's CPU kernels (what TF-Serving's CPU image runs; the same kernels, measured in-process).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from benchmarks.timing import ms, timed
from common.cpu_quota import usable_cores


def p50_ms(call, count: int) -> tuple[float, float]:
    samples = timed(call, count, warmup=3)
    return ms(samples, 50), ms(samples, 90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("build/models"))
    parser.add_argument("--count", type=int, default=30)
    args = parser.parse_args()
    version_dir = args.models / "wide_resnet50_2" / "1"
    cores = usable_cores()
    image = np.random.default_rng(0).integers(0, 256, size=(1, 224, 224, 3), dtype=np.uint8)
    rows = []

    from ai_edge_litert.interpreter import Interpreter

    for name in ("model.tflite", "model_int8.tflite"):
        runner = Interpreter(str(version_dir / name), num_threads=cores).get_signature_runner()
        rows.append((f"LiteRT {name}", *p50_ms(lambda runner=runner: runner(images=image), args.count)))

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(cores)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    tensor = tf.constant(image)
    rows.append(
        ("TensorFlow SavedModel (TF-Serving CPU kernels)", *p50_ms(lambda: signature(images=tensor), args.count))
    )

    print(f"| WRN-50-2, batch 1, {cores} cores | p50 ms | p90 ms |\n|---|---|---|")
    for label, p50, p90 in rows:
        print(f"| {label} | {p50:.0f} | {p90:.0f} |")


if __name__ == "__main__":
    main()
