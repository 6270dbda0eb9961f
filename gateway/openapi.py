"""OpenAPI 3.1 description of the gateway's API (a test keeps it in step with the routes)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


_BINARY = {"type": "string", "format": "binary", "minLength": 1}
_IMAGE_PARTS = {
    "description": "one image, or several for a batch (answered in order)",
    "anyOf": [_BINARY, {"type": "array", "minItems": 1, "items": _BINARY}],
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_CLASSIFY = {
    "summary": "Top-k ImageNet labels for an image",
    "description": "Send multipart/form-data with the image in field `file` (or `image`), the raw bytes "
    'with Content-Type image/jpeg, png, webp, gif or bmp, or JSON `{"url": "https://..."}` '
    "when the gateway fetches URLs (`URL_FETCH=allowlist|public`; off by default). The primary "
    "model answers when it can; otherwise the fallback does and `fallback_reason` says why. "
    'Several `file` parts, or `{"urls": [...]}`, make a batch of up to MAX_BATCH_IMAGES '
    "(16): one tensor per backend call, one deadline, and `results` answers each image in "
    "order, a bad image with its own `error`.",
    "parameters": [
        {
            "name": "top_k",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5},
        },
        {
            "name": "X-Request-ID",
            "in": "header",
            "required": False,
            "description": "Echoed back when it is 1-128 characters of A-Z a-z 0-9 . _ : -; any other value is "
            "replaced by a generated id (it never refuses a request)",
            "schema": {"type": "string"},
        },
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "anyOf": [{"required": ["file"]}, {"required": ["image"]}],
                    # multipart cannot tell one part from a list of one: either field takes one image or several
                    "properties": {field: _IMAGE_PARTS for field in ("file", "image")},
                }
            },
            **{
                media: {"schema": _BINARY}
                for media in ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp")
            },
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/UrlRequest"},
                        {"$ref": "#/components/schemas/UrlBatchRequest"},
                    ]
                }
            },
        },
    },
    "responses": {
        "200": {
            "description": "Classified",
            "headers": {
                "X-Model": {"schema": {"type": "string"}},
                "X-Fallback": {"schema": {"type": "string", "enum": ["true", "false"]}},
                "X-Request-ID": {"schema": {"type": "string"}},
            },
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/Classification"},
                            {"$ref": "#/components/schemas/BatchClassification"},
                        ]
                    }
                }
            },
        },
        "400": _error(
            "No file, empty file, invalid top_k, a JSON body without `url` or `urls`, an invalid "
            "URL (`invalid_url`: only http(s), no credentials), or more than MAX_BATCH_IMAGES "
            "images (`too_many_images`)"
        ),
        "403": _error(
            "`url_fetch_disabled` (URL_FETCH=off) or `url_not_allowed`: the host is not on the "
            "allowlist, or it resolves to a loopback, private, link-local, multicast, reserved or "
            "cloud metadata address (each redirect is checked too)"
        ),
        "413": _error(
            "Body over the size limit, image over the pixel limit or the decoding memory budget, "
            "or a fetched image over URL_FETCH_MAX_BYTES (`url_too_large`)"
        ),
        "415": _error("Not an image in a supported format, or an unsupported Content-Type"),
        "422": _error("Truncated or corrupt image, a header declaring no pixels, or a JPEG with too many scans"),
        "502": _error(
            "`url_fetch_failed`: the URL could not be resolved, connected to or fetched, answered "
            "other than 200, or redirected too often"
        ),
        "503": _error("Overloaded (Retry-After), the deadline used up by decoding, or no model could answer"),
        "504": _error("`url_fetch_timeout`: fetching the URL took longer than URL_FETCH_TIMEOUT_MS"),
    },
}

_PREDICTIONS = {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}
# What an answer says besides its predictions: the same for one image and for a batch.
_FACTS = {
    "model": {"type": "string"},
    "model_version": {"type": ["string", "null"]},
    "fallback": {"type": "boolean"},
    "fallback_reason": {"type": ["string", "null"], "enum": [None, "timeout", "unavailable", "error", "circuit_open"]},
    "hedged": {"type": "boolean"},
    "timings_ms": {"$ref": "#/components/schemas/Timings"},
    "request_id": {"type": "string"},
}
_HTML = {"content": {"text/html": {"schema": {"type": "string"}}}}
_HEALTH = {"type": "object", "properties": {"status": {"type": "string"}}}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Resilient image classifier", "version": "1.0.0"},
        "paths": {
            "/classify": {"post": {**_CLASSIFY, "operationId": "classify"}},
            "/": {
                "post": {
                    **_CLASSIFY,
                    "operationId": "classifyRoot",
                    "summary": "Same as /classify (ingress-nginx sends failover traffic to /)",
                },
                "get": {
                    "operationId": "page",
                    "summary": "A web page to classify a photo or an image URL",
                    "responses": {"200": {"description": "The page", **_HTML}},
                },
            },
            "/docs/": {
                "get": {
                    "operationId": "docs",
                    "summary": "This document in Swagger UI",
                    "responses": {"200": {"description": "Interactive API documentation", **_HTML}},
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "The process is alive",
                    "responses": {
                        "200": {"description": "Alive", "content": {"application/json": {"schema": _HEALTH}}}
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "At least one model answers",
                    "responses": {
                        "200": {
                            "description": "Ready",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}},
                        },
                        "503": {
                            "description": "Not ready or draining",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}},
                        },
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Prediction": {
                    "type": "object",
                    "required": ["label", "index", "score"],
                    "properties": {
                        "label": {"type": "string"},
                        "index": {"type": "integer", "minimum": 0, "maximum": 999},
                        "score": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                },
                "Classification": {
                    "type": "object",
                    "required": ["predictions", *_FACTS],
                    "properties": {"predictions": _PREDICTIONS, **_FACTS, "model": {"type": "string"}},
                },
                "UrlBatchRequest": {
                    "type": "object",
                    "required": ["urls"],
                    "properties": {
                        "urls": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "uri"}}
                    },
                },
                "BatchClassification": {
                    "type": "object",
                    "required": ["results", *_FACTS],
                    "properties": {
                        "results": {
                            "type": "array",
                            "description": "one per image, in the request's order",
                            "items": {
                                "oneOf": [
                                    {
                                        "type": "object",
                                        "required": ["predictions"],
                                        "additionalProperties": False,
                                        "properties": {"predictions": _PREDICTIONS},
                                    },
                                    {"$ref": "#/components/schemas/Error"},
                                ]
                            },
                        },
                        **_FACTS,
                        "model": {"type": ["string", "null"], "description": "null when no image was usable"},
                    },
                },
                "UrlRequest": {
                    "type": "object",
                    "required": ["url"],
                    "properties": {"url": {"type": "string", "format": "uri", "pattern": "^https?://"}},
                },
                "Timings": {
                    "type": "object",
                    "properties": {k: {"type": "number"} for k in ("fetch", "decode", "preprocess", "infer", "total")},
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        }
                    },
                },
                "Readiness": {
                    "type": "object",
                    "properties": {
                        "ready": {"type": "boolean"},
                        "draining": {"type": "boolean"},
                        "backends": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "properties": {
                                    "url": {"type": "string"},
                                    "model": {"type": "string"},
                                    "state": {"type": "string"},
                                    "circuit": {"type": "string", "enum": ["closed", "half_open", "open"]},
                                },
                            },
                        },
                        "canary": {"$ref": "#/components/schemas/Canary"},
                    },
                },
                "Canary": {
                    "type": "object",
                    "description": "Present when CANARY_SHARE is set (README, Canary)",
                    "required": [
                        "state",
                        "share",
                        "reason",
                        "window_s",
                        "stable",
                        "canary",
                        "disagreement",
                        "compared",
                    ],
                    "properties": {
                        "state": {"type": "string", "enum": ["active", "rolled_back"]},
                        "share": {"type": "number", "minimum": 0, "maximum": 1},
                        "reason": {"type": ["string", "null"]},
                        "window_s": {"type": "number"},
                        "stable": {"$ref": "#/components/schemas/CanaryArm"},
                        "canary": {"$ref": "#/components/schemas/CanaryArm"},
                        "disagreement": {"type": "number", "minimum": 0, "maximum": 1},
                        "compared": {"type": "integer", "minimum": 0},
                    },
                },
                "CanaryArm": {
                    "type": "object",
                    "required": ["requests", "error_rate", "fallback_rate", "p95_ms"],
                    "properties": {
                        "requests": {"type": "integer", "minimum": 0},
                        "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
                        "fallback_rate": {"type": "number", "minimum": 0, "maximum": 1},
                        "p95_ms": {"type": ["number", "null"]},
                    },
                },
            }
        },
    }
