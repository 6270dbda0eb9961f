"""Where requests are measured: one gRPC interceptor and one pair of Flask hooks, as TF-Serving
measures in PredictionServiceImpl (model_servers/prediction_service_impl.cc:38-60) and its HTTP
dispatcher (model_servers/http_server.cc:160-203); and the Prometheus endpoint on the REST port."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import grpc
from flask import Flask, Response, g, request

from models.server.metrics import ServerMetrics

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
# /v1/models/<name>[...][:<verb>]; TF-Serving labels REST requests with the name and verb it parsed
# (model_servers/http_rest_api_util.cc:90-110): "predict" for POST, "" for GET status/metadata.
_REST_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)[^:]*(?::(?P<verb>[a-z]+))?$")
# The inverse of TF-Serving's ToHTTPStatusCode (http_server.cc:46-86) for the statuses we answer;
# 500 stands for INTERNAL (TF-Serving also sends UNKNOWN and DATA_LOSS as 500).
_STATUS_BY_HTTP = {
    200: "OK",
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts and times Predict calls; must come first so it sees the status other interceptors set."""

    def __init__(self, metrics: ServerMetrics):
        self.metrics = metrics

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or handler_call_details.method != PREDICT_METHOD:
            return handler
        inner = handler.unary_unary

        def measured(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                return inner(request, context)
            finally:
                # ServicerContext.code() exists since grpcio 1.38; types-grpcio does not declare it.
                code = context.code() or grpc.StatusCode.OK  # type: ignore[attr-defined]
                self.metrics.record_request(
                    request.model_spec.name, "Predict", "GRPC", code.name, time.perf_counter() - started
                )

        return grpc.unary_unary_rpc_method_handler(
            measured, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )


def instrument_rest(app: Flask, metrics: ServerMetrics, path: str | None) -> None:
    """Measure every /v1/ request and, when ``path`` is set, serve the metrics there, as TF-Serving's
    REST port does."""

    @app.before_request
    def start_clock() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def record(response: Response) -> Response:
        match = _REST_PATH.match(request.path)
        if request.path.startswith("/v1/"):
            metrics.record_request(
                match["name"] if match else "",
                (match and match["verb"]) or "",
                "REST",
                _STATUS_BY_HTTP.get(response.status_code, "INTERNAL"),
                time.perf_counter() - g.get("metrics_started", time.perf_counter()),
            )
        return response

    def exposition() -> Response:
        # TF-Serving answers with a bare text/plain (http_server.cc:92), which Prometheus reads as 0.0.4.
        return Response(metrics.exposition(), content_type="text/plain")

    if path:
        app.add_url_rule(path, "prometheus_metrics", exposition, methods=["GET"])
