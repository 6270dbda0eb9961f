"""The classification gateway: a Flask app factory, in the Flask tutorial's style."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from gateway.errors import ApiError
from gateway.service import Service
from gateway.settings import Settings

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    response = jsonify(ApiError(status, code, message).body())
    response.status_code = status
    response.headers.update(headers or {})
    return response


def create_app(env: Mapping[str, str] | None = None, service: Service | None = None) -> Flask:
    """Build the app from the environment (or ``env``), or around an existing ``service`` (tests)."""
    if service is None:
        service = Service.build(Settings.from_env(env))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = service.settings.max_body_bytes
    app.extensions["classifier"] = service

    from gateway.api import bp

    app.register_blueprint(bp)

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        if request.path in ("/", "/classify"):
            service.metrics.requests.labels(str(error.status), "none").inc()
        return _error(error.status, error.code, error.message, error.headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        message = error.description or error.name
        if status == 413:
            code, message = "payload_too_large", f"request body is over the limit of {service.settings.max_body_bytes} bytes"
        if request.path in ("/", "/classify"):
            service.metrics.requests.labels(str(status), "none").inc()
        allow = getattr(error, "valid_methods", None)
        return _error(status, code, message, {"Allow": ", ".join(allow)} if allow else None)

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        service.metrics.requests.labels("500", "none").inc()
        return _error(500, "internal_error", "internal error; the request id is in the logs")

    return app
