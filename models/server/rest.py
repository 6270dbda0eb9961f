"""TF-Serving's REST API (``/v1/models/...``) as a Flask app over a model's served versions."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from models.server.errors import InvalidArgument, NotFound, ServingError
from models.server.model import SIGNATURE, LiteRTModel, TensorSpec, check_signature
from models.server.versions import ModelVersions

# /v1/models/<name>[/versions/<v>|/labels/<l>][/metadata | :predict]
_PATH = re.compile(
    r"^(?P<name>[^/:]+)(?:/versions/(?P<version>-?\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:/(?P<metadata>metadata)|:(?P<verb>[a-z]+))?$"
)
_DT_NAMES = {np.dtype("uint8"): "DT_UINT8", np.dtype("float32"): "DT_FLOAT", np.dtype("int8"): "DT_INT8",
             np.dtype("int32"): "DT_INT32", np.dtype("int64"): "DT_INT64", np.dtype("float16"): "DT_HALF",
             np.dtype("int16"): "DT_INT16", np.dtype("bool"): "DT_BOOL", np.dtype("float64"): "DT_DOUBLE"}


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json")


def _tensor_info(spec: TensorSpec) -> dict[str, Any]:
    return {
        "dtype": _DT_NAMES.get(spec.dtype, "DT_INVALID"),
        "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in spec.shape], "unknown_rank": False},
        "name": spec.tensor_name,
    }


def metadata(model: LiteRTModel) -> dict[str, Any]:
    assert model.input is not None and model.output is not None
    return {
        "model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
        "metadata": {"signature_def": {"signature_def": {SIGNATURE: {
            "inputs": {model.input.name: _tensor_info(model.input)},
            "outputs": {model.output.name: _tensor_info(model.output)},
            "method_name": "tensorflow/serving/predict",
        }}}},
    }


def _status(models: list[LiteRTModel]) -> dict[str, Any]:
    def one(model: LiteRTModel) -> dict[str, Any]:
        error = {"error_code": "UNKNOWN", "error_message": model.error} if model.error else {
            "error_code": "OK", "error_message": ""}
        return {"version": str(model.version), "state": model.state.value, "status": error}

    return {"model_version_status": [one(m) for m in models]}


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


def _parse_predict(body: Any, spec: TensorSpec) -> tuple[np.ndarray, bool]:
    if not isinstance(body, dict):
        raise InvalidArgument("request body must be a JSON object")
    check_signature(body.get("signature_name") or "")
    if ("instances" in body) == ("inputs" in body):
        raise InvalidArgument("request must have exactly one of 'instances' (row) or 'inputs' (columnar)")
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise InvalidArgument("'instances' must be a non-empty list")
        rows = [_single(row, spec, "instances") for row in instances]
        return _to_array(rows, spec), True
    return _to_array(_single(body["inputs"], spec, "inputs"), spec), False


def create_rest_app(versions: ModelVersions, max_request_bytes: int) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes

    @app.get("/v1/models/<path:rest>")
    def get_model(rest: str) -> Response:
        match = _PATH.match(rest)
        if not match or match["verb"]:
            raise NotFound(f"Malformed request: GET /v1/models/{rest}")
        version = int(match["version"]) if match["version"] else None
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
        model = versions.resolve(match["name"], int(match["version"]) if match["version"] else None, match["label"])
        try:
            body = json.loads(request.get_data(cache=False))  # over MAX_CONTENT_LENGTH: http_error's 413
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"JSON Parse error: {exc}") from None
        assert model.input is not None
        batch, row_format = _parse_predict(body, model.input)
        result = model.predict(model.validate(batch))
        if row_format:
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
