"""Model server configuration, read once from the environment (TF-Serving image conventions)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from common.cpu_quota import usable_cores
from common.environment import EnvReader, SettingsError
from models.server.batching_parameters import BatchingParameters, batching_from_env
from protocol.generated.tfs_monitoring_pb2 import MonitoringConfig

# PrometheusExporter::kPrometheusPath (tensorflow_serving/util/prometheus_exporter.cc)
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"

# Fallback container limit 512 MiB - 171 MiB idle RSS (MobileNetV3) leaves 341 MiB: 256 MiB for
# REST bodies being parsed, the rest for gRPC calls and margin (docs/reliability.md).
DEFAULT_MEMORY_BUDGET_BYTES = 256 << 20
DEFAULT_MEMORY_WAIT_S = 10.0
# MobileNetV3-L's arena takes ~4.8 MiB per image: 16 keep each interpreter under ~80 MiB, and the
# gateway never sends more (MAX_BATCH_IMAGES).
DEFAULT_MAX_EXECUTION_BATCH = 16


@dataclass(frozen=True)
class Settings:
    model_name: str
    model_base_path: Path
    model_file: str
    grpc_port: int
    rest_port: int
    host: str
    interpreters: int
    interpreter_threads: int
    max_batch: int
    max_execution_batch: int  # the most images one interpreter call runs; a larger batch runs in parts
    max_request_bytes: int
    memory_budget_bytes: int  # peak of the REST requests in flight together (rest.PEAK_PER_BODY_BYTE)
    memory_wait_s: float  # how long a REST request waits for the budget before a 503
    shutdown_grace_s: float  # how long in-flight calls may finish after SIGTERM
    prometheus_path: str | None  # None: no metrics endpoint, as TF-Serving without a monitoring config
    ssl_config_file: Path | None  # TF-Serving's --ssl_config_file: TLS for gRPC and REST
    model_config_file: Path | None  # TF-Serving's --model_config_file: versions, policy, labels
    file_system_poll_wait_s: float  # --file_system_poll_wait_seconds: 0 looks for versions once
    model_config_poll_wait_s: float  # --model_config_file_poll_wait_seconds: 0 reads the file once
    batching: BatchingParameters | None = None  # --enable_batching/--batching_parameters_file; None: off

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        reader = EnvReader(os.environ if env is None else env)
        name = reader.raw("MODEL_NAME")
        config_file = reader.raw("MODEL_CONFIG_FILE")
        if (not name and not config_file) or "/" in name or ":" in name:
            raise SettingsError(
                f"MODEL_NAME={name!r}: set it to the model's folder name under MODEL_BASE_PATH "
                "(or set MODEL_CONFIG_FILE)"
            )
        cores = usable_cores()  # the container's CPU limit, not its node's cores
        max_batch = reader.int("MAX_BATCH", 64, 1, 4096)
        batching = batching_from_env(reader, cores)
        # With batching, the batcher already runs at most its max_execution_batch_size (its file).
        execution = batching.max_execution_batch_size if batching else DEFAULT_MAX_EXECUTION_BATCH
        return cls(
            model_name=name,
            model_base_path=Path(reader.text("MODEL_BASE_PATH", "/models")),
            model_file=reader.text("MODEL_FILE", "model.tflite"),
            grpc_port=reader.int("GRPC_PORT", 8500, 0, 65535),
            rest_port=reader.int("REST_PORT", 8501, 0, 65535),
            host=reader.text("HOST", "0.0.0.0"),
            interpreters=reader.int("INTERPRETERS", cores, 1, 64),
            interpreter_threads=reader.int("INTERPRETER_THREADS", 1, 1, 64),
            max_batch=max_batch,
            # Named after TF-Serving's BatchingParameters field of the same meaning. An interpreter's
            # arena grows to the largest batch it has run and keeps that size (docs/reliability.md).
            max_execution_batch=reader.int("MAX_EXECUTION_BATCH_SIZE", min(execution, max_batch), 1, max_batch),
            max_request_bytes=reader.int("MAX_REQUEST_BYTES", 64 << 20, 1024, 1 << 31),
            memory_budget_bytes=reader.int("MEMORY_BUDGET_BYTES", DEFAULT_MEMORY_BUDGET_BYTES, 1 << 20, 1 << 40),
            memory_wait_s=reader.float("MEMORY_WAIT_S", DEFAULT_MEMORY_WAIT_S, 0.0, 600.0),
            shutdown_grace_s=reader.float("SHUTDOWN_GRACE_S", 5.0, 0.0, 600.0),
            prometheus_path=prometheus_path(reader.raw("MONITORING_CONFIG_FILE")),
            ssl_config_file=Path(reader.raw("SSL_CONFIG_FILE")) if reader.raw("SSL_CONFIG_FILE") else None,
            model_config_file=Path(config_file) if config_file else None,
            file_system_poll_wait_s=reader.float("FILE_SYSTEM_POLL_WAIT_SECONDS", 1.0, 0.0, 86_400.0),
            model_config_poll_wait_s=reader.float("MODEL_CONFIG_FILE_POLL_WAIT_SECONDS", 0.0, 0.0, 86_400.0),
            batching=batching,
        )


def prometheus_path(config_file: str) -> str | None:
    """The metrics path a TF-Serving monitoring config (its --monitoring_config_file) asks for."""
    if not config_file:
        return None
    where = f"MONITORING_CONFIG_FILE={config_file!r}"
    try:
        config = text_format.Parse(Path(config_file).read_text(encoding="utf-8"), MonitoringConfig())
    except OSError as exc:
        raise SettingsError(f"{where}: cannot read it: {exc.strerror}") from None
    except text_format.ParseError as exc:
        raise SettingsError(f"{where}: not a TF-Serving MonitoringConfig in text format: {exc}") from None
    prometheus = config.prometheus_config
    if not prometheus.enable:
        return None
    path = prometheus.path or DEFAULT_PROMETHEUS_PATH
    if not path.startswith("/") or path.startswith("/v1/"):
        raise SettingsError(f"{where}: prometheus_config.path {path!r} must start with '/' and not with '/v1/'")
    return path
