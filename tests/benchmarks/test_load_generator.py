from __future__ import annotations

import time
from email.parser import BytesParser
from email.policy import HTTP

import pytest

from benchmarks import load_generator
from benchmarks.load_generator import LoadResult, Upload


def ok(_number: int) -> tuple[int, bool, float]:
    return 200, False, 0.0


def uploads(count: int = 3) -> list[Upload]:
    return [Upload.multipart(bytes([i]) * (100 + i), f"p{i}.jpg") for i in range(count)]


def test_multipart_body_carries_the_image_in_the_file_field():
    data = b"\xff\xd8\xff" + bytes(range(256)) * 4 + b"\r\n--x"
    upload = Upload.multipart(data, "cat.jpg")
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {upload.content_type}\r\n\r\n".encode() + upload.body)
    [part] = message.iter_parts()
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename() == "cat.jpg"
    assert part.get_content_type() == "image/jpeg"
    assert part.get_payload(decode=True) == data


def test_sends_exactly_the_requested_count_round_robin(http_server):
    port, seen = http_server(ok)
    sent = uploads()
    result = load_generator.run("127.0.0.1", port, "/classify", sent, 4, 50, 30)
    assert result.answered == 50 and result.errors == []
    assert len(seen.bodies) == 50
    assert sorted(seen.bodies) == sorted(sent[n % 3].body for n in range(50))
    assert set(seen.content_types) == {u.content_type for u in sent}


def test_keeps_exactly_concurrency_requests_in_flight(http_server):
    port, seen = http_server(lambda _n: (200, False, 0.02))
    result = load_generator.run("127.0.0.1", port, "/classify", uploads(), 4, 40, 30)
    assert result.answered == 40
    assert seen.most_in_flight == 4


def test_stops_at_the_time_cap(http_server):
    port, seen = http_server(lambda _n: (200, False, 0.05))
    started = time.perf_counter()
    result = load_generator.run("127.0.0.1", port, "/classify", uploads(), 2, 1_000_000, 0.5)
    assert time.perf_counter() - started < 1.5
    assert 2 <= result.answered <= 24  # at most 2 clients x 0.5 s / 0.05 s, plus the one each had in flight
    assert result.throughput == pytest.approx(result.answered / result.wall_s)


def test_non_200_answers_are_errors_not_latencies(http_server):
    port, _seen = http_server(lambda n: (500 if n % 3 == 0 else 200, False, 0.0))
    result = load_generator.run("127.0.0.1", port, "/classify", uploads(), 1, 30, 30)
    assert result.answered == 20
    assert len(result.errors) == 10 and all(e.startswith("HTTP 500") for e in result.errors)


def test_reconnects_when_the_server_closes_the_connection(http_server):
    port, seen = http_server(lambda n: (200, n % 2 == 0, 0.0))
    result = load_generator.run("127.0.0.1", port, "/classify", uploads(), 2, 20, 30)
    assert result.answered == 20 and result.errors == []


def test_a_dead_server_is_reported_as_errors_within_the_bounds():
    result = load_generator.run("127.0.0.1", 9, "/classify", uploads(), 2, 10, 5)  # port 9: discard, closed
    assert result.answered == 0
    assert len(result.errors) == 10 and "ConnectionRefusedError" in result.errors[0]


def test_measures_its_own_cpu(http_server):
    port, _seen = http_server(ok)
    big = [Upload.multipart(b"x" * (4 << 20), "big.jpg")]
    result = load_generator.run("127.0.0.1", port, "/classify", big, 1, 20, 30)
    assert result.client_cpu_s > 0
    assert result.client_cpu_ms_per_request == pytest.approx(result.client_cpu_s * 1000 / 20)


def test_percentiles_in_milliseconds():
    result = LoadResult(1, 1.0, 0.0, latencies_s=[0.001 * i for i in range(1, 101)])
    assert result.latency_ms(50) == pytest.approx(50.5)
    assert result.latency_ms(99) == pytest.approx(99.01)


@pytest.mark.parametrize("concurrency, requests, cap", [(0, 1, 1), (1, 0, 1), (1, 1, 0)])
def test_refuses_an_unbounded_or_empty_run(concurrency, requests, cap):
    with pytest.raises(ValueError):
        load_generator.run("127.0.0.1", 9, "/", uploads(), concurrency, requests, cap)
    with pytest.raises(ValueError):
        load_generator.run("127.0.0.1", 9, "/", [], 1, 1, 1)
