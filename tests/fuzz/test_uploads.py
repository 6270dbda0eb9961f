"""Property and mutation fuzzing of /classify: whatever is uploaded, the answer is a 2xx or a JSON
4xx within the deadline, and the memory it reserved is given back."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import DEADLINE_MS, FUZZ
from tests.fuzz.mutations import uploads

MARGIN_S = 1.0
CONTENT_TYPES = [
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/bmp",
    "image/tiff",
    "application/octet-stream",
    "text/plain",
    "",
    "multipart/form-data",
]
TOP_K = st.one_of(
    st.none(), st.sampled_from(["1", "10", "0", "11", "²", "①", "٣", "-1", "1e1", "9" * 5000]), st.text(max_size=12)
)


def check(response, started: float) -> None:
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE_MS / 1000 + MARGIN_S, f"answered after {elapsed:.2f} s"
    assert response.status_code < 500, (response.status_code, response.data[:300])
    body = response.get_json()
    assert body is not None, response.data[:200]
    if response.status_code >= 400:
        assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
    else:
        assert len(body["predictions"]) >= 1


@FUZZ
@given(data=uploads(), content_type=st.sampled_from(CONTENT_TYPES), top_k=TOP_K)
def test_raw_uploads(gateway_app, data, content_type, top_k):
    client = gateway_app.test_client()
    query = {} if top_k is None else {"top_k": top_k}
    started = time.monotonic()
    response = client.post("/classify", data=data, content_type=content_type or None, query_string=query)
    check(response, started)
    assert gateway_app.extensions["classifier"].memory.used == 0


@FUZZ
@given(
    data=uploads(),
    field=st.sampled_from(["file", "image", "other", ""]),
    boundary=st.one_of(st.just("b0undary"), st.text("abcXYZ0123-_'()+,./:=? ", min_size=1, max_size=300)),
    filename=st.text(max_size=40),
    extra=st.binary(max_size=64),
)
def test_multipart_uploads(gateway_app, data, field, boundary, filename, extra):
    disposition = f'form-data; name="{field}"; filename="{filename}"'.encode("utf-8", "replace")
    delimiter = b"--" + boundary.encode()
    body = (
        delimiter
        + b"\r\nContent-Disposition: "
        + disposition
        + b"\r\nContent-Type: image/jpeg\r\n\r\n"
        + data
        + b"\r\n"
        + delimiter
        + b"--\r\n"
        + extra
    )
    started = time.monotonic()
    response = gateway_app.test_client().post(
        "/classify", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    check(response, started)
    assert gateway_app.extensions["classifier"].memory.used == 0
