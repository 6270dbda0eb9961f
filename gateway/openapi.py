"""OpenAPI 3.1 description of the gateway's API (a test keeps it in step with the routes)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_CLASSIFY = {
    "summary": "Top-k ImageNet labels for an image",
    "description": "Send multipart/form-data with the image in field `file` (or `image`), or the raw bytes "
                   "with Content-Type image/jpeg, png, webp, gif or bmp. The primary model answers when it "
                   "can; otherwise the fallback does and `fallback_reason` says why.",
    "parameters": [
        {"name": "top_k", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5}},
        {"name": "X-Request-ID", "in": "header", "required": False,
         "description": "Echoed back when it is 1-128 characters of A-Z a-z 0-9 . _ : -; any other value is "
                        "replaced by a generated id (it never refuses a request)",
         "schema": {"type": "string"}},
    ],
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {
            "type": "object", "anyOf": [{"required": ["file"]}, {"required": ["image"]}], "properties": {
                "file": {"type": "string", "format": "binary", "minLength": 1},
                "image": {"type": "string", "format": "binary", "minLength": 1}}}},
        **{media: {"schema": {"type": "string", "format": "binary", "minLength": 1}}
           for media in ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp")},
    }},
    "responses": {
        "200": {"description": "Classified", "headers": {
            "X-Model": {"schema": {"type": "string"}},
            "X-Fallback": {"schema": {"type": "string", "enum": ["true", "false"]}},
            "X-Request-ID": {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Classification"}}}},
        "400": _error("No file, empty file or invalid top_k"),
        "413": _error("Body over the size limit, or image over the pixel limit or the decoding memory budget"),
        "415": _error("Not an image in a supported format, or an unsupported Content-Type"),
        "422": _error("Truncated or corrupt image, a header declaring no pixels, or a JPEG with too many scans"),
        "503": _error("Overloaded (Retry-After), the deadline used up by decoding, or no model could answer"),
    },
}

_HEALTH = {"type": "object", "properties": {"status": {"type": "string"}}}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Resilient image classifier", "version": "1.0.0"},
        "paths": {
            "/classify": {"post": {**_CLASSIFY, "operationId": "classify"}},
            "/": {"post": {**_CLASSIFY, "operationId": "classifyRoot",
                           "summary": "Same as /classify (ingress-nginx sends failover traffic to /)"}},
            "/healthz": {"get": {"operationId": "healthz", "summary": "The process is alive", "responses": {
                "200": {"description": "Alive", "content": {"application/json": {"schema": _HEALTH}}}}}},
            "/readyz": {"get": {"operationId": "readyz", "summary": "At least one model answers", "responses": {
                "200": {"description": "Ready", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Readiness"}}}},
                "503": {"description": "Not ready or draining", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Readiness"}}}}}}},
            "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics", "responses": {
                "200": {"description": "Text exposition format", "content": {"text/plain": {
                    "schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {
                    "schema": {"type": "object"}}}}}}},
        },
        "components": {"schemas": {
            "Prediction": {"type": "object", "required": ["label", "index", "score"], "properties": {
                "label": {"type": "string"}, "index": {"type": "integer", "minimum": 0, "maximum": 999},
                "score": {"type": "number", "minimum": 0, "maximum": 1}}},
            "Classification": {"type": "object", "required": [
                "predictions", "model", "model_version", "fallback", "fallback_reason", "hedged", "timings_ms",
                "request_id"], "properties": {
                "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}},
                "model": {"type": "string"},
                "model_version": {"type": ["string", "null"]},
                "fallback": {"type": "boolean"},
                "fallback_reason": {"type": ["string", "null"],
                                    "enum": [None, "timeout", "unavailable", "error", "circuit_open"]},
                "hedged": {"type": "boolean"},
                "timings_ms": {"type": "object", "properties": {
                    k: {"type": "number"} for k in ("decode", "preprocess", "infer", "total")}},
                "request_id": {"type": "string"}}},
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
            "Readiness": {"type": "object", "properties": {
                "ready": {"type": "boolean"}, "draining": {"type": "boolean"},
                "backends": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                    "url": {"type": "string"}, "model": {"type": "string"}, "state": {"type": "string"},
                    "circuit": {"type": "string", "enum": ["closed", "half_open", "open"]}}}},
                "canary": {"$ref": "#/components/schemas/Canary"}}},
            "Canary": {"type": "object", "description": "Present when CANARY_SHARE is set (README, Canary)",
                       "required": ["state", "share", "reason", "window_s", "stable", "canary", "disagreement",
                                    "compared"], "properties": {
                "state": {"type": "string", "enum": ["active", "rolled_back"]},
                "share": {"type": "number", "minimum": 0, "maximum": 1},
                "reason": {"type": ["string", "null"]},
                "window_s": {"type": "number"},
                "stable": {"$ref": "#/components/schemas/CanaryArm"},
                "canary": {"$ref": "#/components/schemas/CanaryArm"},
                "disagreement": {"type": "number", "minimum": 0, "maximum": 1},
                "compared": {"type": "integer", "minimum": 0}}},
            "CanaryArm": {"type": "object", "required": ["requests", "error_rate", "fallback_rate", "p95_ms"],
                          "properties": {
                "requests": {"type": "integer", "minimum": 0},
                "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
                "fallback_rate": {"type": "number", "minimum": 0, "maximum": 1},
                "p95_ms": {"type": ["number", "null"]}}},
        }},
    }
