"""The model server's errors, each with TF-Serving's gRPC code and the HTTP status its REST API uses.

TF-Serving maps status codes to HTTP as: INVALID_ARGUMENT/OUT_OF_RANGE 400, NOT_FOUND 404,
FAILED_PRECONDITION 412, RESOURCE_EXHAUSTED 429, UNIMPLEMENTED 501, UNAVAILABLE 503,
DEADLINE_EXCEEDED 504, INTERNAL/UNKNOWN 500. REST bodies are {"error": "<message>"}.
"""

from __future__ import annotations

import grpc


class ServingError(Exception):
    """Base class, and itself the INTERNAL / 500 error."""

    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(ServingError):
    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServingError):
    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


class Unavailable(ServingError):
    http_status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE


class ResourceExhausted(ServingError):
    http_status = 429
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
