"""Schemathesis against /openapi.json: requests valid by the schema are accepted, invalid ones get a
JSON 4xx, and no answer breaks the schema or is a 5xx."""

from __future__ import annotations

import schemathesis
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.fuzz.conftest import EXAMPLES, fuzz_app

schemathesis.serializer.alias("image/bmp", "application/octet-stream")  # raw bytes, as for the other images
schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=max(10, EXAMPLES // 10),
    deterministic=True,
    allow_extra_parameters=True,
)  # unknown query parameters are ignored, not refused
# A schema cannot say "bytes that decode as an image": for schema-valid bodies that are not one,
# the documented 413/415/422 are the right answers, not a rejection of valid data. URL_FETCH is off
# in this app, so a schema-valid {"url": ...} body gets the documented 403 url_fetch_disabled.
schema.config.checks.positive_data_acceptance.expected_statuses = ["2xx", "403", "413", "415", "422"]


@schema.hook
def filter_body(_ctx, body) -> bool:
    """Skip two kinds of form the test client writes but no browser does. Field names holding
    control characters or quotes go raw into the part's Content-Disposition header, which makes
    the MIME itself malformed. An empty file goes out with its headers followed at once by the next
    delimiter (no blank line): valid MIME that python-multipart 0.0.34 reads as part data, so the
    part never ends (browsers write the blank line)."""
    if not isinstance(body, dict):
        return True
    odd_name = any(isinstance(name, str) and any(ord(c) < 32 or c in '"\\\x7f' for c in name) for name in body)
    return not odd_name and all(value not in (b"", "") for value in body.values())


def _images(body: object) -> int:
    if not isinstance(body, dict):
        return 1
    return sum(
        len(value) if isinstance(value, list) else 1 for name, value in body.items() if name in ("file", "image")
    )


@schema.parametrize()
def test_api_conforms_to_its_schema(case):
    # Several image parts make a batch, whose bad images are answered one by one inside a 200: a
    # schema-violating part is that image's error, not the request's, so only single images must be refused.
    excluded = [negative_data_rejection] if _images(case.body) > 1 else []
    case.call_and_validate(excluded_checks=excluded)
