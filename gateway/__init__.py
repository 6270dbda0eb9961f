"""The classification gateway: a Flask app factory, in the Flask tutorial's style."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from gateway.errors import ApiError
from gateway.service import Service
from gateway.settings import Settings

log = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CLASSIFY_PATHS = ("/", "/classify")


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    response = jsonify(ApiError(status, code, message).body())
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _classifying() -> bool:
    return request.method == "POST" and request.path in _CLASSIFY_PATHS


def create_app(env: Mapping[str, str] | None = None, service: Service | None = None) -> Flask:
    """Build the app from the environment (or ``env``), or around an existing ``service`` (tests)."""
    if service is None:
        service = Service.build(Settings.from_env(env))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = service.settings.max_body_bytes
    app.extensions["classifier"] = service

    from gateway import web
    from gateway.api import bp

    app.register_blueprint(bp)
    web.register(app)

    @app.before_request
    def assign_request_id() -> None:
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        g.started = time.monotonic()

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if _classifying():
            log.info("classify", extra={
                "request_id": g.get("request_id"), "status": response.status_code,
                "model": response.headers.get("X-Model"), "fallback": response.headers.get("X-Fallback"),
                "fallback_reason": response.headers.get("X-Fallback-Reason"),
                "ms": round((time.monotonic() - g.get("started", time.monotonic())) * 1000, 1)})
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        if _classifying():
            service.metrics.requests.labels(str(error.status), "none").inc()
        return _error(error.status, error.code, error.message, error.headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        message = error.description or error.name
        if status == 413:
            code, message = "payload_too_large", f"request body is over the limit of {service.settings.max_body_bytes} bytes"
        if _classifying():
            service.metrics.requests.labels(str(status), "none").inc()
        allow = getattr(error, "valid_methods", None)
        return _error(status, code, message, {"Allow": ", ".join(allow)} if allow else None)

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path,
                      extra={"request_id": g.get("request_id")})
        service.metrics.requests.labels("500", "none").inc()
        return _error(500, "internal_error", "internal error; the request id is in the logs")

    return app
