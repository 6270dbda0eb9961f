"""TF-Serving's REST API (``/v1/models/...``) as a Flask app over a model's served versions."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import numpy as np
from flask import Flask, Response, request
from google.protobuf import json_format
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from common.memory_budget import MemoryBudget, OverBudget, Reservation
from models.server import json_tensor
from models.server.errors import InvalidArgument, NotFound, ServingError, Unavailable
from models.server.model import LiteRTModel, TensorSpec
from models.server.settings import DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_MEMORY_WAIT_S
from models.server.versions import ModelVersions
from protocol.contract import SIGNATURE

# /v1/models/<name>[/versions/<v>|/labels/<l>][/metadata | :predict]
_PATH = re.compile(
    r"^(?P<name>[^/:]+)(?:/versions/(?P<version>-?[0-9]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:/(?P<metadata>metadata)|:(?P<verb>[a-z]+))?$"
)


# Peak RSS growth of one predict per byte of its body: the body read, decoded and parsed, the batch,
# the answer. Measured with benchmarks.rest_parse_memory (docs/reliability.md): 372 MiB for 48 MiB.
PEAK_PER_BODY_BYTE = 8


class RequestTooLarge(ServingError):
    """A body whose parse could never fit the memory budget: 413 as for one over MAX_REQUEST_BYTES."""

    http_status = 413


def _reserve(memory: MemoryBudget, wait_s: float, body_bytes: int) -> Reservation:
    """Hold the predict's peak before its body is read; refuse with JSON when it cannot fit."""
    reservation = Reservation(memory, time.monotonic() + wait_s)
    try:
        reservation.hold(PEAK_PER_BODY_BYTE * body_bytes)
    except OverBudget as exc:
        if exc.alone:
            raise RequestTooLarge(
                f"a {body_bytes}-byte body needs {exc.wanted} bytes to parse, over the memory budget of "
                f"{exc.capacity} bytes (MEMORY_BUDGET_BYTES); send fewer instances per request"
            ) from None
        raise Unavailable(
            f"the server is busy: no room in its memory budget for a {body_bytes}-byte body "
            f"within {wait_s:g} s; retry later"
        ) from None
    return reservation


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json")


def metadata(model: LiteRTModel) -> dict[str, Any]:
    # TF-Serving's REST metadata is the gRPC answer printed as proto3 JSON, default values included.
    signature = json_format.MessageToDict(
        model.signature_def(), preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return {
        "model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
        "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}},
    }


def _status(models: list[LiteRTModel]) -> dict[str, Any]:
    def one(model: LiteRTModel) -> dict[str, Any]:
        error = (
            {"error_code": "UNKNOWN", "error_message": model.error}
            if model.error
            else {"error_code": "OK", "error_message": ""}
        )
        return {"version": str(model.version), "state": model.state.value, "status": error}

    return {"model_version_status": [one(m) for m in models]}


def _version(text: str | None) -> int | None:
    """A version from the path; TF-Serving answers 400 for one that is not an int64."""
    if text is None:
        return None
    if len(text) > 20 or not -(1 << 63) <= int(text) < 1 << 63:
        raise InvalidArgument(f"Failed to convert version: {text[:40]}{'...' if len(text) > 40 else ''}")
    return int(text)


def _to_array(value: Any, spec: TensorSpec) -> np.ndarray:
    """JSON lists -> array of the model's dtype, refusing values the dtype cannot hold."""
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise InvalidArgument(f"input {spec.name!r} is not a rectangular array: {exc}") from None
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise InvalidArgument(f"input {spec.name!r} must be a rectangular array of numbers")
    target = spec.dtype
    if target.kind in "iu":
        if array.dtype.kind == "f":
            raise InvalidArgument(f"input {spec.name!r} expects {target} integers, got floating point values")
        info = np.iinfo(target)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise InvalidArgument(f"input {spec.name!r} has values outside {target} range {info.min}..{info.max}")
    return array.astype(target, copy=False)


def _single(value: Any, spec: TensorSpec, where: str) -> Any:
    """One named input: accept the bare value or {"<any name>": value} with exactly one key."""
    if isinstance(value, dict):
        if len(value) != 1:
            raise InvalidArgument(f"{where}: the model has one input ({spec.name!r}), got {sorted(value)}")
        return next(iter(value.values()))
    return value


def _read_batch(body: dict[str, Any], spec: TensorSpec) -> np.ndarray:
    if ("instances" in body) == ("inputs" in body):
        raise InvalidArgument("request must have exactly one of 'instances' (row) or 'inputs' (columnar)")
    if "instances" in body:
        instances = body["instances"]
        if isinstance(instances, np.ndarray) and instances.ndim:  # json_tensor's plain numeric form
            return _to_array(instances, spec)
        if not isinstance(instances, list) or not instances:
            raise InvalidArgument("'instances' must be a non-empty list")
        rows = [_single(row, spec, "instances") for row in instances]
        return _to_array(rows, spec)
    return _to_array(_single(body["inputs"], spec, "inputs"), spec)


def create_rest_app(
    versions: ModelVersions,
    max_request_bytes: int,
    memory: MemoryBudget | None = None,
    memory_wait_s: float = DEFAULT_MEMORY_WAIT_S,
) -> Flask:
    """``memory``: the budget predicts reserve from (one of DEFAULT_MEMORY_BUDGET_BYTES if None)."""
    budget = MemoryBudget(DEFAULT_MEMORY_BUDGET_BYTES) if memory is None else memory
    app = Flask(__name__)
    app.url_map.merge_slashes = (
        False  # werkzeug would answer "//x" with an HTML 308 redirect that skips the JSON handlers
    )
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes

    @app.get("/v1/models/<path:rest>")
    def get_model(rest: str) -> Response:
        match = _PATH.match(rest)
        if not match or match["verb"]:
            raise NotFound(f"Malformed request: GET /v1/models/{rest}")
        version = _version(match["version"])
        if match["name"] != versions.name:
            raise NotFound(f"Could not find any versions of model {match['name']}")
        if match["metadata"]:
            return _json(metadata(versions.resolve(match["name"], version, match["label"])))
        return _json(_status(versions.statuses(version, match["label"])))

    @app.post("/v1/models/<path:rest>")
    def post_model(rest: str) -> Response:
        match = _PATH.match(rest)
        if not match or match["verb"] != "predict":
            raise NotFound(f"Malformed request: POST /v1/models/{rest}")
        model = versions.resolve(match["name"], _version(match["version"]), match["label"])
        # Over MAX_CONTENT_LENGTH, get_data raises http_error's 413; no length (chunked): assume the limit.
        length = request.content_length
        reservation = _reserve(budget, memory_wait_s, max_request_bytes if length is None else length)
        try:
            response = _predict(model)
        except BaseException:
            reservation.close()
            raise
        response.call_on_close(reservation.close)  # once the answer is sent
        return response

    def _predict(model: LiteRTModel) -> Response:
        try:
            body = json_tensor.loads(request.get_data(cache=False))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"JSON Parse error: {exc}") from None
        if not isinstance(body, dict):
            raise InvalidArgument("request body must be a JSON object")
        result = model.infer(body.get("signature_name") or "", lambda spec: _read_batch(body, spec))
        if "instances" in body:
            return _json({"predictions": result.tolist()})
        return _json({"outputs": result.tolist()})

    @app.errorhandler(ServingError)
    def serving_error(error: ServingError) -> Response:
        return _json({"error": error.message}, error.http_status)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if isinstance(error, RequestEntityTooLarge):
            return _json({"error": f"request body is over the limit of {max_request_bytes} bytes"}, 413)
        return _json({"error": error.description or error.name}, error.code or 500)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        app.logger.exception("internal error")
        return _json({"error": f"Internal: {type(error).__name__}: {error}"}, 500)

    return app
