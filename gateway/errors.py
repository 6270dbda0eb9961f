"""The gateway's API errors, each naming its HTTP status and code, and the one place that turns any
error into the JSON shape {"error": {"code", "message"}}."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

log = logging.getLogger(__name__)
# Statuses whose code is not werkzeug's name for them, snake-cased.
_CODES = {413: "payload_too_large", 500: "internal_error"}


class ApiError(Exception):
    """Base class, and itself the 500 internal error."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})


class InvalidTopK(ApiError):
    status, code = 400, "invalid_top_k"


class BadMultipart(ApiError):
    status, code = 400, "bad_multipart"


class MissingFile(ApiError):
    status, code = 400, "missing_file"


class EmptyFile(ApiError):
    status, code = 400, "empty_file"


class ImageError(ApiError):
    """Input that is not a usable image (the subclasses say how)."""


class UnsupportedMediaType(ImageError):
    status, code = 415, "unsupported_media_type"


class TooManyPixels(ImageError):
    status, code = 413, "too_many_pixels"


class CorruptImage(ImageError):
    status, code = 422, "corrupt_image"


class TooManyScans(ImageError):
    """A JPEG with more scans than any encoder writes: each costs a pass over every pixel."""

    status, code = 422, "too_many_scans"


class TooManyImages(ApiError):
    status, code = 400, "too_many_images"


class InvalidJson(ApiError):
    status, code = 400, "invalid_json"


class InvalidUrl(ApiError):
    status, code = 400, "invalid_url"


class UrlFetchDisabled(ApiError):
    status, code = 403, "url_fetch_disabled"


class UrlNotAllowed(ApiError):
    """The host is not on the allowlist, or resolves to an address the gateway must not reach."""

    status, code = 403, "url_not_allowed"


class UrlTooLarge(ApiError):
    status, code = 413, "url_too_large"


class UrlFetchFailed(ApiError):
    status, code = 502, "url_fetch_failed"


class UrlFetchTimeout(ApiError):
    status, code = 504, "url_fetch_timeout"


class Overloaded(ApiError):
    status, code = 503, "overloaded"


class DeadlineExceeded(ApiError):
    """Reading and decoding the upload left less than MIN_MODEL_CALL_MS of the deadline; no backend was asked."""

    status, code = 503, "deadline_exceeded"


class AllBackendsFailed(ApiError):
    """No backend could answer; Retry-After is when the soonest circuit lets a probe through."""

    status, code = 503, "models_unavailable"

    def __init__(self, reasons: dict[str, str], retry_after_s: float):
        detail = "; ".join(f"{role}: {reason}" for role, reason in reasons.items())
        super().__init__(f"no model could answer ({detail})", {"Retry-After": str(int(round(retry_after_s)))})
        self.reasons = reasons
        self.retry_after_s = retry_after_s


def code_for(status: int) -> str:
    """The error code of a bare HTTP status (Flask's routing errors, waitress's own refusals)."""
    return _CODES.get(status) or HTTP_STATUS_CODES.get(status, "Unknown Error").lower().replace(" ", "_")


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code or code_for(status), "message": message}}


def _response(status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def register_error_handlers(app: Flask, max_body_bytes: int) -> None:
    """Every error the app raises, or Flask raises for it, answered as JSON."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _response(error.status, error_body(error.status, error.message, error.code), error.headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = error.description or error.name
        if status == 413:
            message = f"request body is over the limit of {max_body_bytes} bytes"
        allow = getattr(error, "valid_methods", None)
        return _response(status, error_body(status, message), {"Allow": ", ".join(allow)} if allow else None)

    @app.errorhandler(Exception)
    def internal_error(_error: Exception) -> Response:
        log.exception(
            "unhandled error on %s %s", request.method, request.path, extra={"request_id": g.get("request_id")}
        )
        return _response(500, error_body(500, "internal error; the request id is in the logs"))
