"""TF-Serving's server-side batching settings: ENABLE_BATCHING and BATCHING_PARAMETERS_FILE.

They are TF-Serving's --enable_batching and --batching_parameters_file (model_servers/main.cc:107-130)
and read the same text-format BatchingParameters, so one batching.config serves both servers.
Citations are tensorflow/serving at 9d981c5c and tensorflow's
core/kernels/batching_util/shared_batch_scheduler.h, whose QueueOptions hold the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from common.environment import EnvReader, SettingsError
from protocol.generated.tfs_batching_pb2 import BatchingParameters as BatchingParametersProto

FILE_VARIABLE = "BATCHING_PARAMETERS_FILE"
ENABLE_VARIABLE = "ENABLE_BATCHING"
# SharedBatchScheduler::QueueOptions: input_batch_size_limit = 1000, batch_timeout_micros = 0,
# max_enqueued_batches = 10.
DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_MAX_ENQUEUED_BATCHES = 10
# server.cc:229-231 names the pool only when no file is given; otherwise Options' "batch_threads".
POOL_WITHOUT_FILE = "model_server_batch_threads"
POOL_WITH_FILE = "batch_threads"
_LIMIT = 1 << 20  # far above any batch a model server is given; keeps hostile files from allocating


@dataclass(frozen=True)
class BatchingParameters:
    max_batch_size: int  # the largest request accepted, in images (input_batch_size_limit)
    batch_timeout_micros: int  # how long an open batch may wait for more images once it has one
    max_enqueued_batches: int  # queue length in batches, the open one included
    num_batch_threads: int
    thread_pool_name: str
    allowed_batch_sizes: tuple[int, ...]  # batches are padded up to the next of these
    pad_variable_length_inputs: bool
    large_batch_splitting: bool  # split a request across batches instead of refusing it
    max_execution_batch_size: int  # the largest batch run; max_batch_size unless splitting

    def padded_size(self, size: int) -> int:
        """RoundToLowestAllowedBatchSize (batching/batching_util.cc:211): the first allowed size
        that holds ``size``; ``size`` itself when none is configured."""
        return next((allowed for allowed in self.allowed_batch_sizes if allowed >= size), size)


def batching_from_env(reader: EnvReader, cores: int) -> BatchingParameters | None:
    """None when batching is off. As server.cc:226-243: a file without ENABLE_BATCHING is an
    error, and ENABLE_BATCHING alone batches with the defaults."""
    enabled = reader.bool(ENABLE_VARIABLE, False)
    file = reader.raw(FILE_VARIABLE)
    if not enabled:
        if file:
            raise SettingsError(f"{FILE_VARIABLE}={file!r} is set without {ENABLE_VARIABLE}=true")
        return None
    if not file:
        return from_proto(BatchingParametersProto(), cores, POOL_WITHOUT_FILE, f"{ENABLE_VARIABLE}=true")
    return read_batching_parameters(Path(file), cores)


def read_batching_parameters(path: Path, cores: int) -> BatchingParameters:
    where = f"{FILE_VARIABLE}={str(path)!r}"
    try:
        proto = text_format.Parse(path.read_text(encoding="utf-8"), BatchingParametersProto())
    except OSError as exc:
        raise SettingsError(f"{where}: cannot read it: {exc.strerror}") from None
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{where}: not a TF-Serving BatchingParameters in text format: {exc}") from None
    return from_proto(proto, cores, POOL_WITH_FILE, where)


def from_proto(proto: BatchingParametersProto, cores: int, pool: str, where: str) -> BatchingParameters:
    def positive(field: str, default: int) -> int:
        value = getattr(proto, field).value if proto.HasField(field) else default
        if not 1 <= value <= _LIMIT:
            raise SettingsError(f"{where}: {field} is {value}; it must be 1..{_LIMIT}")
        return value

    max_batch_size = positive("max_batch_size", DEFAULT_MAX_BATCH_SIZE)
    timeout = proto.batch_timeout_micros.value
    if not 0 <= timeout <= 60_000_000:
        raise SettingsError(f"{where}: batch_timeout_micros is {timeout}; it must be 0..60000000 (a minute)")
    splitting = proto.enable_large_batch_splitting.value
    # bundle_factory_util.h:123-134: max_execution_batch_size counts only with splitting.
    execution = positive("max_execution_batch_size", max_batch_size) if splitting else max_batch_size
    if execution > max_batch_size:
        raise SettingsError(
            f"{where}: max_execution_batch_size {execution} is larger than max_batch_size {max_batch_size}"
        )
    allowed = tuple(proto.allowed_batch_sizes)
    if allowed:
        # TF-Serving checks the order only with splitting (batching_session.cc:1013-1022, a TODO for
        # the other case, :1041-1043); an unordered list makes padding pick a wrong size, so always.
        if any(b <= a for a, b in zip(allowed, allowed[1:], strict=False)) or allowed[0] < 1:
            raise SettingsError(f"{where}: allowed_batch_sizes {list(allowed)} must be positive and increasing")
        # bundle_factory_util.cc:113-125 and batching_session.cc:1030-1048.
        if allowed[-1] != execution:
            name = "max_execution_batch_size" if splitting else "max_batch_size"
            raise SettingsError(
                f"{where}: the last entry in allowed_batch_sizes must match {name}; "
                f"last entry was {allowed[-1]}; expected {execution}"
            )
    return BatchingParameters(
        max_batch_size=max_batch_size,
        batch_timeout_micros=timeout,
        max_enqueued_batches=positive("max_enqueued_batches", DEFAULT_MAX_ENQUEUED_BATCHES),
        num_batch_threads=positive("num_batch_threads", cores),  # port::MaxParallelism()
        thread_pool_name=proto.thread_pool_name.value if proto.HasField("thread_pool_name") else pool,
        allowed_batch_sizes=allowed,
        pad_variable_length_inputs=proto.pad_variable_length_inputs,
        large_batch_splitting=splitting,
        max_execution_batch_size=execution,
    )
