"""The second peer: the framework a user would pick instead of writing a server. BentoML serving
the same MobileNetV3 ``.tflite`` we serve, with the same preprocessing (preprocess.py), the same
layout as our model server (one LiteRT interpreter with one thread per worker, one worker per core)
and top-5 with labels.

    MODEL_TFLITE=.../model.tflite bentoml serve benchmarks.peers.bento_service:Classifier --port 18401
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import bentoml
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from benchmarks.peers.preprocess import to_batch

LABELS = json.loads((Path(__file__).resolve().parents[2] / "gateway" / "data" / "imagenet1k_labels.json").read_text())


@bentoml.service(workers="cpu_count", threads=1, logging={"access": {"enabled": False}})
class Classifier:
    def __init__(self) -> None:
        self.interpreter = Interpreter(model_path=os.environ["MODEL_TFLITE"], num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    @bentoml.api(route="/classify")
    def classify(self, file: Path) -> dict:
        self.interpreter.set_tensor(self.input, to_batch(file.read_bytes()))
        self.interpreter.invoke()
        probabilities = self.interpreter.get_tensor(self.output)[0]
        top = np.argsort(probabilities)[::-1][:5]
        return {"predictions": [{"label": LABELS[i], "index": int(i), "score": float(probabilities[i])} for i in top]}
