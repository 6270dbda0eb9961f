"""The HTTP API: /classify (and / for ingress failover), /healthz, /readyz, /metrics, /openapi.json."""

from __future__ import annotations

import re
import time

from flask import Blueprint, Response, current_app, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.memory_budget import Reservation
from gateway.errors import ApiError, DeadlineExceeded, InvalidTopK, Overloaded, error_body
from gateway.inputs import read_inputs
from gateway.labels import top_k
from gateway.openapi import openapi_document
from gateway.service import Service

bp = Blueprint("api", __name__)
MAX_TOP_K = 10
_TOP_K = re.compile(r"[0-9]{1,3}")  # ASCII digits only: str.isdigit() also takes "²" and "①"


def _service() -> Service:
    return current_app.extensions["classifier"]


def _top_k() -> int:
    raw = request.args.get("top_k", "5")
    if not _TOP_K.fullmatch(raw) or not 1 <= int(raw) <= MAX_TOP_K:
        raise InvalidTopK(f"top_k must be an integer from 1 to {MAX_TOP_K}, got {raw!r}")
    return int(raw)


@bp.post("/classify")
@bp.post("/")
def classify() -> Response:
    started = time.monotonic()
    service = _service()
    settings = service.settings
    if not service.in_flight.try_enter():
        service.metrics.shed.inc()
        raise Overloaded(f"more than {settings.max_in_flight} requests in flight; retry shortly", {"Retry-After": "1"})
    service.metrics.in_flight.inc()
    try:
        k = _top_k()
        with Reservation(service.memory, started + settings.deadline_s) as memory:
            inputs = read_inputs(request, service.fetcher, settings, memory)
            usable = inputs.usable
            if not inputs.batch and isinstance(inputs.images[0], ApiError):
                raise inputs.images[0]
            # A fetched image's deadline starts when it has arrived, as an upload's does.
            deadline = started + inputs.fetch_s + settings.deadline_s
            local_s = inputs.fetch_s + inputs.decode_s
            if usable and time.monotonic() >= deadline:  # local work used the time up: no backend is blamed
                raise DeadlineExceeded(
                    f"reading and decoding the upload took {local_s * 1000:.0f} ms "
                    f"of the {settings.deadline_s * 1000:.0f} ms deadline",
                    {"Retry-After": "1"},
                )
            outcome = service.router.classify(usable, deadline) if usable else None
    finally:
        service.in_flight.leave()
        service.metrics.in_flight.dec()
    total = time.monotonic() - started
    metrics = service.metrics
    metrics.stage_latency.labels("decode").observe(inputs.decode_s)
    metrics.request_images.observe(len(inputs.images))
    timings = {
        **({"fetch": round(inputs.fetch_s * 1000, 2)} if inputs.by_url else {}),
        "decode": round(inputs.decode_s * 1000, 2),
    }
    if outcome is not None:
        metrics.stage_latency.labels("preprocess").observe(outcome.preprocess_ms / 1000)
        metrics.stage_latency.labels("infer").observe(outcome.infer_ms / 1000)
        timings.update(preprocess=round(outcome.preprocess_ms, 2), infer=round(outcome.infer_ms, 2))
    metrics.stage_latency.labels("total").observe(total)
    timings["total"] = round(total * 1000, 2)
    rows = iter(outcome.probabilities if outcome is not None else ())
    answers = [
        error_body(image.status, image.message, image.code)
        if isinstance(image, ApiError)
        else {"predictions": top_k(next(rows), service.labels, k)}
        for image in inputs.images
    ]
    body = {
        **(answers[0] if not inputs.batch else {"results": answers}),
        "model": outcome.backend.model if outcome else None,
        "model_version": outcome.version if outcome else None,
        "fallback": outcome.fallback if outcome else False,
        "fallback_reason": outcome.fallback_reason if outcome else None,
        "hedged": outcome.hedged if outcome else False,
        "timings_ms": timings,
        "request_id": g.request_id,
    }
    response = jsonify(body)
    if outcome is not None:
        response.headers.update({"X-Model": outcome.backend.model, "X-Fallback": str(outcome.fallback).lower()})
        if outcome.fallback_reason:
            response.headers["X-Fallback-Reason"] = outcome.fallback_reason
    return response


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "alive"})


@bp.get("/readyz")
def readyz() -> Response:
    service = _service()
    backends = service.backend_states()
    draining = service.draining.is_set()
    ready = not draining and any(b["state"] == "AVAILABLE" for b in backends.values())
    body = {"ready": ready, "draining": draining, "backends": backends}
    if service.canary is not None:
        body["canary"] = service.canary.judge.snapshot()
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    return response


@bp.get("/metrics")
def metrics() -> Response:
    # content_type, not mimetype: Flask would append a second "; charset=utf-8" to CONTENT_TYPE_LATEST,
    # which Go's mime.ParseMediaType refuses (duplicate parameter), so Prometheus 3 fails the scrape.
    return Response(generate_latest(_service().metrics.registry), content_type=CONTENT_TYPE_LATEST)


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
