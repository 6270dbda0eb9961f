"""tensorflow.serving.PredictionService (Predict, GetModelMetadata) over a model's served versions."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import numpy as np
from google.protobuf import any_pb2, wrappers_pb2

from models.server.errors import InvalidArgument, ServingError
from models.server.instrumentation import MetricsInterceptor
from models.server.model import LiteRTModel, TensorSpec
from models.server.versions import ModelVersions
from protocol import tensors
from protocol.contract import SIGNATURE
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc

log = logging.getLogger(__name__)


class ErrorMappingInterceptor(grpc.ServerInterceptor):
    """The one place where ServingError becomes a gRPC status (and anything else INTERNAL)."""

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return inner(request, context)
            except ServingError as error:
                context.abort(error.grpc_code, error.message)
            except tensors.TensorEncodingError as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            except Exception as error:  # keep serving; the client gets INTERNAL with the reason
                log.exception("internal error in %s", handler_call_details.method)
                context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")

        return grpc.unary_unary_rpc_method_handler(
            guarded, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )


def _resolve(versions: ModelVersions, spec: tfs_predict_pb2.ModelSpec) -> LiteRTModel:
    """The version a ModelSpec names: ``version``, ``version_label`` or neither (the newest)."""
    choice = spec.WhichOneof("version_choice")
    return versions.resolve(
        spec.name,
        spec.version.value if choice == "version" else None,
        spec.version_label if choice == "version_label" else None,
    )


def _spec(model: LiteRTModel) -> tfs_predict_pb2.ModelSpec:
    """Names the version that answered, as TF-Serving does."""
    return tfs_predict_pb2.ModelSpec(
        name=model.name, signature_name=SIGNATURE, version=wrappers_pb2.Int64Value(value=model.version)
    )


class PredictionService(tfs_predict_pb2_grpc.PredictionServiceServicer):
    def __init__(self, versions: ModelVersions):
        self.versions = versions

    def Predict(
        self, request: tfs_predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> tfs_predict_pb2.PredictResponse:
        model = _resolve(self.versions, request.model_spec)
        assert model.output is not None
        output = model.output.name

        def read_batch(spec: TensorSpec) -> np.ndarray:
            if len(request.inputs) != 1:
                raise InvalidArgument(f"the model has one input ({spec.name!r}), got {sorted(request.inputs)}")
            unknown = set(request.output_filter) - {output}
            if unknown:
                raise InvalidArgument(f"output tensor alias not found in signature: {sorted(unknown)[0]}")
            # Bound the allocation: typed *_val fields may declare a huge shape with few values.
            limit = model.settings.max_request_bytes // spec.dtype.itemsize
            return tensors.to_array(next(iter(request.inputs.values())), max_elements=limit)

        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        result = model.infer(request.model_spec.signature_name, read_batch, deadline)
        return tfs_predict_pb2.PredictResponse(model_spec=_spec(model), outputs={output: tensors.to_proto(result)})

    def GetModelMetadata(
        self, request: tfs_predict_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> tfs_predict_pb2.GetModelMetadataResponse:
        model = _resolve(self.versions, request.model_spec)
        fields = set(request.metadata_field)
        if fields != {"signature_def"}:
            raise InvalidArgument("metadata_field must be exactly ['signature_def']")
        packed = any_pb2.Any()
        packed.Pack(tfs_predict_pb2.SignatureDefMap(signature_def={SIGNATURE: model.signature_def()}))
        return tfs_predict_pb2.GetModelMetadataResponse(model_spec=_spec(model), metadata={"signature_def": packed})


def create_grpc_server(versions: ModelVersions, workers: int, max_message_bytes: int) -> grpc.Server:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        interceptors=[MetricsInterceptor(versions.metrics), ErrorMappingInterceptor()],
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
        # Past this many queued calls new ones fail fast with RESOURCE_EXHAUSTED instead of waiting.
        # grpcio frees a call's place only after its answer is sent, so at 4x the 2-core default
        # (16) 16 clients calling back to back were refused now and then: 8x.
        maximum_concurrent_rpcs=workers * 8,
    )
    tfs_predict_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(versions), server)
    return server
