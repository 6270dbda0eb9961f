"""One served model version: its .tflite behind a pool of LiteRT interpreters.

Each interpreter serves one request at a time (LiteRT interpreters are not thread-safe);
``invoke`` releases the GIL, so a pool of N interpreters runs N requests on N cores at once.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from models.server.batcher import Batcher
from models.server.errors import InvalidArgument
from models.server.metrics import ServerMetrics
from models.server.settings import Settings
from protocol import tensors
from protocol.contract import SIGNATURE
from protocol.generated import tfs_tensor_pb2

log = logging.getLogger(__name__)


class State(enum.Enum):
    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    END = "END"


@dataclass(frozen=True)
class TensorSpec:
    name: str  # the signature's name ("images"), or the tensor's when the file has no signature
    tensor_name: str  # the tensor's own name ("serving_default_images:0")
    dtype: np.dtype
    shape: tuple[int, ...]  # -1 for dimensions that vary; dimension 0 is always the batch


def check_signature(name: str) -> None:
    """Only serving_default exists; "" means it, as in TF-Serving."""
    if name not in ("", SIGNATURE):
        raise InvalidArgument(f'Serving signature name: "{name}" not found in signature def')


class _Runner:
    """An interpreter with the indices of its only input and output, resized on demand."""

    def __init__(self, path: Path, threads: int):
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.shape = tuple(self.input["shape"])

    def run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape != self.shape:
            self.interpreter.resize_tensor_input(self.input["index"], batch.shape)
            self.interpreter.allocate_tensors()
            self.shape = batch.shape
        self.interpreter.set_tensor(self.input["index"], batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])


class _Slot:
    """One pool place: an interpreter per prepared batch size, and one resized for any other size.

    Resizing the input and allocating tensors costs about as much as an inference (MobileNetV3-L:
    5 ms for 2 images, 21 ms for 8, against 6 ms per image), so with allowed_batch_sizes every
    size a padded batch can have keeps its own interpreter."""

    def __init__(self, path: Path, threads: int, prepared: tuple[int, ...]):
        self.spare = _Runner(path, threads)
        self.interpreter = self.spare.interpreter
        self.prepared = {size: _Runner(path, threads) for size in prepared}

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.prepared.get(len(batch), self.spare).run(batch)


class LiteRTModel:
    def __init__(
        self, settings: Settings, name: str, version: int, directory: Path, metrics: ServerMetrics | None = None
    ):
        """``metrics``: the model's, shared by its versions (ModelVersions); a version alone gets its own."""
        self.settings = settings
        self.name = name
        self.version = version
        self.directory = directory
        self.state = State.START
        self.error: str | None = None
        self.input: TensorSpec | None = None
        self.output: TensorSpec | None = None
        # LIFO: under light load the most recently used interpreter (weights warm in cache) serves.
        self._pool: queue.LifoQueue[_Slot] = queue.LifoQueue()
        self._ready = threading.Event()
        self._batcher: Batcher | None = None
        self.metrics = metrics or ServerMetrics(name)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def load(self) -> None:
        """Load every interpreter and run one warm-up inference; only then become AVAILABLE."""
        self.state = State.LOADING
        try:
            path = self.directory / self.settings.model_file
            batching = self.settings.batching
            prepared = tuple(s for s in batching.allowed_batch_sizes if s > 1) if batching else ()
            slots = [
                _Slot(path, self.settings.interpreter_threads, prepared) for _ in range(self.settings.interpreters)
            ]
            self.input, self.output = _describe(slots[0].interpreter)
            for slot in slots:
                if len(slot.interpreter.get_input_details()) != 1 or len(slot.interpreter.get_output_details()) != 1:
                    raise ValueError(f"{path.name} must have exactly one input and one output")
                for size in (1, *prepared):
                    shape = (size, *(1 if d == -1 else d for d in self.input.shape[1:]))
                    slot.run(np.zeros(shape, dtype=self.input.dtype))
                self._pool.put(slot)
            if batching:
                self._batcher = Batcher(batching, self._predict, self.metrics)
        except Exception as exc:
            self.state = State.END
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model %s version %s failed to load: %s", self.name, self.version, self.error)
            raise
        self.state = State.AVAILABLE
        self._ready.set()
        log.info(
            "model %s version %s AVAILABLE (%s, %d interpreters x %d threads)",
            self.name,
            self.version,
            path,
            self.settings.interpreters,
            self.settings.interpreter_threads,
        )

    def infer(
        self, signature: str, read_batch: Callable[[TensorSpec], np.ndarray], deadline: float | None = None
    ) -> np.ndarray:
        """One Predict call on this version, whichever protocol brought it: check the signature, read
        the batch against the input's spec, validate it and run it, merged with other requests'
        when batching. ``deadline``: time.monotonic() past which a queued request is not run."""
        check_signature(signature)
        assert self.input is not None
        batch = self._validate(read_batch(self.input))
        if self._batcher is not None:
            return self._batcher.predict(batch, deadline)
        self.metrics.record_input_batch(len(batch))
        return self._predict(batch)

    def close(self) -> None:
        """Stop batching once what is queued has run (nothing to do without batching)."""
        if self._batcher is not None:
            self._batcher.close()

    def signature_def(self) -> tfs_tensor_pb2.SignatureDef:
        """The served signature as TF-Serving describes it, for both protocols' metadata calls."""
        assert self.input is not None and self.output is not None
        return tfs_tensor_pb2.SignatureDef(
            inputs={self.input.name: _tensor_info(self.input)},
            outputs={self.output.name: _tensor_info(self.output)},
            method_name="tensorflow/serving/predict",
        )

    def _validate(self, batch: np.ndarray) -> np.ndarray:
        assert self.input is not None
        if batch.dtype != self.input.dtype:
            raise InvalidArgument(f"input {self.input.name!r} must be {self.input.dtype}, got {batch.dtype}")
        expected = self.input.shape
        if batch.ndim != len(expected) or any(
            e not in (-1, g) for e, g in zip(expected[1:], batch.shape[1:], strict=True)
        ):
            raise InvalidArgument(
                f"input {self.input.name!r} must have shape {list(expected)} (-1: any), got {list(batch.shape)}"
            )
        if batch.shape[0] < 1 or batch.shape[0] > self.settings.max_batch:
            raise InvalidArgument(f"batch of {batch.shape[0]} is outside 1..{self.settings.max_batch}")
        return np.ascontiguousarray(batch)

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        """Run one validated batch on a free interpreter, in calls of at most max_execution_batch
        images: the interpreter's arena grows to the largest call and never shrinks."""
        step = self.settings.max_execution_batch
        with self.metrics.waiting_for_interpreter():
            slot = self._pool.get()
        try:
            answers = []
            for start in range(0, len(batch), step):
                part = batch[start : start + step]
                with self.metrics.invocation(len(part)):
                    answers.append(slot.run(part))
            return answers[0] if len(answers) == 1 else np.concatenate(answers)
        finally:
            self._pool.put(slot)


def _tensor_info(spec: TensorSpec) -> tfs_tensor_pb2.TensorInfo:
    return tfs_tensor_pb2.TensorInfo(
        name=spec.tensor_name, dtype=tensors.proto_dtype(spec.dtype), tensor_shape=tensors.shape_proto(spec.shape)
    )


def _describe(interpreter: Interpreter) -> tuple[TensorSpec, TensorSpec]:
    """Name the input and output the way the signature does (our exports: images -> probabilities)."""
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    signature = interpreter.get_signature_list().get(SIGNATURE)
    names_in = [d["name"] for d in inputs]
    names_out = [d["name"] for d in outputs]
    if signature and len(signature["inputs"]) == 1 and len(signature["outputs"]) == 1:
        names_in, names_out = signature["inputs"], signature["outputs"]

    def spec(detail: dict, name: str) -> TensorSpec:
        # Files converted with a fixed batch of 1 still resize; serve them with a variable batch.
        shape = (-1, *(int(d) for d in detail["shape_signature"][1:]))
        return TensorSpec(name, detail["name"], np.dtype(detail["dtype"]), shape)

    return spec(inputs[0], names_in[0]), spec(outputs[0], names_out[0])
