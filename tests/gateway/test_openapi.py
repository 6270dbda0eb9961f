"""/openapi.json is valid OpenAPI 3.1, lists exactly the app's routes, and real answers fit it."""

import io

import jsonschema
import pytest

from gateway.openapi import openapi_document


def test_document_lists_exactly_the_routes(client):
    """Every route but the files of the page and the docs (their ``<path:...>`` routes)."""
    app = client.application
    routes = {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        if "<path:" not in rule.rule
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, item in openapi_document()["paths"].items() for method in item}
    assert routes == documented


def test_served_document_is_valid_openapi_31(client):
    from openapi_spec_validator import validate

    document = client.get("/openapi.json").get_json()
    validate(document)
    assert document["openapi"] == "3.1.0"


def _schema(name):
    document = openapi_document()
    return {**document["components"]["schemas"][name], "components": document["components"]}


def test_answers_match_their_schemas(make_app, jpeg):
    client = make_app(primary={"error": "timeout"}).test_client()
    ok = client.post("/classify", data={"file": (io.BytesIO(jpeg), "a.jpg")}, content_type="multipart/form-data")
    jsonschema.validate(ok.get_json(), _schema("Classification"))
    error = client.post("/classify", json={})
    jsonschema.validate(error.get_json(), _schema("Error"))
    jsonschema.validate(client.get("/readyz").get_json(), _schema("Readiness"))


def test_batch_answers_match_their_schema(make_app, jpeg):
    from urllib3 import encode_multipart_formdata

    client = make_app(primary={"error": "timeout"}).test_client()
    body, content_type = encode_multipart_formdata([("file", ("a.jpg", jpeg)), ("file", ("b.jpg", b"text"))])
    answer = client.post("/classify", data=body, content_type=content_type).get_json()
    jsonschema.validate(answer, _schema("BatchClassification"))
    assert [sorted(result) for result in answer["results"]] == [["predictions"], ["error"]]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(answer, _schema("Classification"))
    body, content_type = encode_multipart_formdata([("file", ("a", b"x")), ("file", ("b", b""))])
    only_bad = client.post("/classify", data=body, content_type=content_type).get_json()
    jsonschema.validate(only_bad, _schema("BatchClassification"))
    assert only_bad["model"] is None
