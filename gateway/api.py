"""The HTTP API: /classify (and / for ingress failover), /healthz, /readyz, /metrics, /openapi.json."""

from __future__ import annotations

import re
import time

from flask import Blueprint, Response, current_app, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import imaging
from gateway.errors import DeadlineExceeded, InvalidTopK, Overloaded, TooManyPixels
from gateway.labels import top_k
from gateway.memory_budget import OverBudget, Reservation
from gateway.openapi import openapi_document
from gateway.service import Service
from gateway.uploads import image_bytes

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


def _decode(memory: Reservation) -> imaging.Image.Image:
    """The upload as an RGB image, holding ``memory`` for the body (and the multipart copy of it)
    before it is read, and for the decode's peak before pixels are decoded; then only for the image."""
    settings = _service().settings
    body = 2 * (request.content_length or settings.max_body_bytes)
    try:
        memory.hold(body)
        data = image_bytes(request)
        image = imaging.decode(data, settings.max_pixels, settings.decode_shorter,
                               reserve=lambda nbytes: memory.hold(body + nbytes))
        memory.hold(image.width * image.height * 4)  # the body and the decode's copies are gone
        return image
    except OverBudget as exc:
        if exc.alone:
            raise TooManyPixels(f"decoding this image needs {exc.wanted >> 20} MiB, over the limit of "
                                f"{exc.capacity >> 20} MiB (MEMORY_BUDGET_BYTES)") from None
        raise Overloaded("other uploads hold the decoding memory; retry shortly", {"Retry-After": "1"}) from None


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
    deadline = started + settings.deadline_s
    try:
        k = _top_k()
        with Reservation(service.memory, deadline) as memory:
            image = _decode(memory)
            decoded = time.monotonic()
            if decoded >= deadline:  # local work used the time up: no backend is asked, none is blamed
                raise DeadlineExceeded(f"reading and decoding the upload took {(decoded - started) * 1000:.0f} ms "
                                       f"of the {settings.deadline_s * 1000:.0f} ms deadline", {"Retry-After": "1"})
            outcome = service.router.classify(image, deadline=deadline)
    finally:
        service.in_flight.leave()
        service.metrics.in_flight.dec()
    total = time.monotonic() - started
    metrics = service.metrics
    metrics.stage_latency.labels("decode").observe(decoded - started)
    metrics.stage_latency.labels("preprocess").observe(outcome.preprocess_ms / 1000)
    metrics.stage_latency.labels("infer").observe(outcome.infer_ms / 1000)
    metrics.stage_latency.labels("total").observe(total)
    body = {
        "predictions": top_k(outcome.probabilities, service.labels, k),
        "model": outcome.backend.model,
        "model_version": outcome.version,
        "fallback": outcome.fallback,
        "fallback_reason": outcome.fallback_reason,
        "hedged": outcome.hedged,
        "timings_ms": {"decode": round((decoded - started) * 1000, 2), "preprocess": round(outcome.preprocess_ms, 2),
                       "infer": round(outcome.infer_ms, 2), "total": round(total * 1000, 2)},
        "request_id": g.request_id,
    }
    response = jsonify(body)
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
    return Response(generate_latest(_service().metrics.registry), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
