"""Clients for TF-Serving's protocol (our LiteRT server speaks the same): gRPC or REST.

``submit`` returns a ``concurrent.futures.Future`` so the routing policy can wait on several calls
at once (hedging). A failed call's exception is always a ``BackendError`` whose ``reason`` is one
of timeout / unavailable / error. Calls are blocking calls on a persistent thread pool: measured
against grpc's own ``.future()`` (which starts a channel spin thread per call) this saves 0.44 ms of
CPU and 0.9 ms of latency per call (docs/benchmarks.md). When the caller has nothing else to do
until the call ends, a gRPC call runs on the caller's thread instead: gRPC's deadline bounds it as
the caller's wait would, and the two thread hand-offs are saved (docs/benchmarks.md, issue 15).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import grpc
import numpy as np
import requests

from gateway.settings import BackendSettings
from protocol import tensors
from protocol.contract import INPUT_NAME, NUM_CLASSES, SIGNATURE
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc

_GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 16 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    # Reconnect to a restarted backend within seconds, not grpc's default of up to 120 s.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 30_000),
]


@dataclass(frozen=True)
class Prediction:
    probabilities: np.ndarray  # [batch, 1000] float32
    version: str | None  # the model version that answered, when the protocol says


class BackendError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def failure_reason(error: BaseException) -> str:
    """timeout / unavailable / error for whatever a call's future raised."""
    return error.reason if isinstance(error, BackendError) else "error"


class ModelClient(Protocol):
    settings: BackendSettings

    def submit(
        self, batch: np.ndarray, timeout_s: float, label: str | None = None, caller_waits: bool = False
    ) -> Future[Prediction]:
        """Predict on the model's newest version, or the one TF-Serving's version ``label`` names.
        ``caller_waits``: the caller will only wait for this call, so a client whose call ends within
        ``timeout_s`` by itself may make it on the caller's thread and return it finished."""
        ...

    def status(self, timeout_s: float) -> str: ...

    def close(self) -> None: ...


def check_output(probabilities: np.ndarray, batch_size: int) -> np.ndarray:
    if probabilities.shape != (batch_size, NUM_CLASSES) or not np.isfinite(probabilities).all():
        raise BackendError(
            "error",
            f"malformed answer: shape {list(probabilities.shape)}, "
            f"expected [{batch_size}, {NUM_CLASSES}] finite values",
        )
    return probabilities.astype(np.float32, copy=False)


_GRPC_REASONS = {grpc.StatusCode.DEADLINE_EXCEEDED: "timeout", grpc.StatusCode.UNAVAILABLE: "unavailable"}


def _finished(call: Callable[[], Prediction]) -> Future[Prediction]:
    """``call`` made now, on this thread, as a finished future (an exception is the future's, as on a pool)."""
    future: Future[Prediction] = Future()
    try:
        future.set_result(call())
    except Exception as exc:
        future.set_exception(exc)
    return future


class _PooledClient:
    """A client whose calls run on its own thread pool, one worker per call in flight, or on the
    caller's thread when it only waits and ``_predict`` keeps its timeout by itself."""

    keeps_timeout: bool  # whether _predict returns within its timeout by itself

    def __init__(self, settings: BackendSettings, workers: int):
        self.settings = settings
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=f"call-{settings.role}")

    def submit(
        self, batch: np.ndarray, timeout_s: float, label: str | None = None, caller_waits: bool = False
    ) -> Future[Prediction]:
        timeout_s = max(timeout_s, 0.001)
        if caller_waits and self.keeps_timeout:
            return _finished(lambda: self._predict(batch, timeout_s, label))
        return self._pool.submit(self._predict, batch, timeout_s, label)

    def _predict(self, batch: np.ndarray, timeout_s: float, label: str | None) -> Prediction:
        raise NotImplementedError

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _channel(settings: BackendSettings) -> grpc.Channel:
    tls = settings.tls
    if tls is None:
        return grpc.insecure_channel(settings.target, options=_GRPC_OPTIONS)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes(),
        private_key=tls.key.read_bytes() if tls.key else None,
        certificate_chain=tls.cert.read_bytes() if tls.cert else None,
    )
    return grpc.secure_channel(settings.target, credentials, options=_GRPC_OPTIONS)


class GrpcModelClient(_PooledClient):
    keeps_timeout = True  # the call's deadline: gRPC cancels it and raises DEADLINE_EXCEEDED

    def __init__(self, settings: BackendSettings, workers: int = 16):
        super().__init__(settings, workers)
        self._channel = _channel(settings)
        self._stub = tfs_predict_pb2_grpc.PredictionServiceStub(self._channel)

    def _predict(self, batch: np.ndarray, timeout_s: float, label: str | None) -> Prediction:
        spec = tfs_predict_pb2.ModelSpec(name=self.settings.model, signature_name=SIGNATURE)
        if label:  # setting the oneof even to "" would name the label ""
            spec.version_label = label
        request = tfs_predict_pb2.PredictRequest(model_spec=spec, inputs={INPUT_NAME: tensors.to_proto(batch)})
        try:
            response = self._stub.Predict(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            code = exc.code()
            raise BackendError(_GRPC_REASONS.get(code, "error"), f"{code.name}: {exc.details()}") from None
        if len(response.outputs) != 1:
            raise BackendError("error", f"expected one output, got {sorted(response.outputs)}")
        try:
            probabilities = tensors.to_array(next(iter(response.outputs.values())))
        except tensors.TensorEncodingError as exc:
            raise BackendError("error", f"malformed answer: {exc}") from None
        version = str(response.model_spec.version.value) if response.model_spec.HasField("version") else None
        return Prediction(check_output(probabilities, len(batch)), version)

    def status(self, timeout_s: float) -> str:
        try:
            self._stub.GetModelMetadata(
                tfs_predict_pb2.GetModelMetadataRequest(
                    model_spec=tfs_predict_pb2.ModelSpec(name=self.settings.model), metadata_field=["signature_def"]
                ),
                timeout=timeout_s,
            )
            return "AVAILABLE"
        except grpc.RpcError as exc:
            return f"UNAVAILABLE ({exc.code().name}: {exc.details()})"

    def close(self) -> None:
        super().close()
        self._channel.close()


class RestModelClient(_PooledClient):
    # requests' timeout bounds each connect and read, not the call: a server trickling its answer
    # would hold the caller past the deadline, so REST calls always run on the pool.
    keeps_timeout = False

    def __init__(self, settings: BackendSettings, workers: int = 16):
        super().__init__(settings, workers)
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=workers, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        # Per call, not on the session: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self._tls: dict = {}
        if settings.tls is not None:
            self._tls["verify"] = str(settings.tls.ca)
            if settings.tls.cert and settings.tls.key:
                self._tls["cert"] = (str(settings.tls.cert), str(settings.tls.key))
        self._model_url = f"{settings.target}/v1/models/{settings.model}"
        self._status_url = self._model_url
        # REST predict answers carry no version; status calls do (the newest, or a label's).
        self._versions: dict[str | None, str] = {}

    def _predict(self, batch: np.ndarray, timeout_s: float, label: str | None) -> Prediction:
        body = json.dumps({"signature_name": SIGNATURE, "instances": batch.tolist()})
        url = f"{self._model_url}/labels/{label}:predict" if label else f"{self._model_url}:predict"
        try:
            response = self._session.post(
                url, data=body, timeout=timeout_s, headers={"Content-Type": "application/json"}, **self._tls
            )
        except requests.Timeout as exc:
            raise BackendError("timeout", str(exc)) from None
        except requests.ConnectionError as exc:
            raise BackendError("unavailable", str(exc)) from None
        if response.status_code != 200:
            reason = "unavailable" if response.status_code == 503 else "error"
            raise BackendError(reason, f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            predictions = np.asarray(response.json()["predictions"], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError("error", f"malformed answer: {exc}") from None
        if label is not None and label not in self._versions:
            self._label_version(label, timeout_s)
        return Prediction(check_output(predictions, len(batch)), self._versions.get(label))

    def _label_version(self, label: str, timeout_s: float) -> None:
        """Learn once which version a label names (a status call), for answers' model_version."""
        try:
            response = self._session.get(f"{self._model_url}/labels/{label}", timeout=timeout_s, **self._tls)
            self._versions[label] = str(response.json()["model_version_status"][0]["version"])
        except (requests.RequestException, ValueError, KeyError, IndexError, TypeError):
            pass

    def status(self, timeout_s: float) -> str:
        try:
            response = self._session.get(self._status_url, timeout=timeout_s, **self._tls)
            versions = response.json()["model_version_status"]
            available = [str(v["version"]) for v in versions if v["state"] == "AVAILABLE"]
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            return f"UNAVAILABLE ({type(exc).__name__}: {str(exc)[:300]})"
        if not available:
            return f"UNAVAILABLE ({', '.join(v['state'] for v in versions) or 'no version'})"
        self._versions = {None: available[-1]}  # labels are learnt again: they may have moved
        return "AVAILABLE"

    def close(self) -> None:
        super().close()
        self._session.close()


def make_client(settings: BackendSettings, workers: int = 16) -> ModelClient:
    kind = GrpcModelClient if settings.protocol == "grpc" else RestModelClient
    return kind(settings, workers)
