"""A real gateway process under hostile uploads and malformed HTTP: it answers every one with JSON
(or closes a connection it cannot read), stays within its memory budget and does not grow."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests

from benchmarks.process_accounting import resident_bytes
from local_mode.processes import Gateway, free_port
from tests.hostile_images import corpus

BUDGET = 256 << 20
PASSES = 12
EARLY, LATE = slice(2, 6), slice(8, 12)  # after two warm-up passes: the windows whose lowest RSS is compared
ALLOWED = {413, 415, 422, 503}  # the backends are not listening: decodable uploads get 503 models_unavailable


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    process = Gateway(
        tmp_path_factory.mktemp("gateway") / "gateway.log",
        PRIMARY_URL=f"grpc://127.0.0.1:{free_port()}",
        PRIMARY_MODEL="m",
        FALLBACK_URL=f"grpc://127.0.0.1:{free_port()}",
        FALLBACK_MODEL="f",
        BREAKER_COOLDOWN_MS="600000",
        MEMORY_BUDGET_BYTES=str(BUDGET),
        HEADER_READ_TIMEOUT_S="1",
        REQUEST_READ_TIMEOUT_S="2",
    ).start()
    yield process
    process.stop()


def test_hostile_uploads_stay_within_the_budget_and_rss_stays_flat(gateway):
    """Before: one 2 KB WebP took the gateway to 1.3 GB, and three passes grew it 85 -> 942 MB."""
    process = psutil.Process(gateway.process.pid)
    idle = process.memory_info().rss
    uploads = corpus(60)
    session = requests.Session()

    def send(data: bytes) -> tuple[int, dict]:
        response = session.post(f"{gateway.url}/classify", data=data, headers={"Content-Type": "image/png"}, timeout=30)
        return response.status_code, response.json()

    after = []
    for number in range(PASSES):
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(send, uploads))
        assert all(status in ALLOWED and body["error"]["code"] for status, body in answers), answers[:5]
        after.append(process.memory_info().rss)
        if number == 2:
            peak = resident_bytes(process.pid)[1]
            assert peak < idle + BUDGET + (64 << 20), (idle >> 20, peak >> 20)
    # RSS after a pass swings by up to 35 MiB with how the four threads' frees fall in the arenas
    # (87-132 MiB over 40 passes, docs/reliability.md), and the first passes sit below the level it
    # settles at, so one pass against another proves nothing. The floor of a window of passes after
    # the warm-up is steady (within 10 MiB over 40 passes); a leak lifts it: 100 KiB an upload is
    # 6 MiB a pass, about 36 MiB between these windows.
    floors = (min(after[EARLY]) >> 20, min(after[LATE]) >> 20)
    assert floors[1] < floors[0] + 20, [rss >> 20 for rss in after]
    assert requests.get(f"{gateway.url}/healthz", timeout=2).ok


def raw(port: int, request: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return answer


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"POST /classify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n",
        b"POST /classify HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 10_000 + b"\r\n",
        b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\nshort",
        b"POST /classify?top_k=%FF%FE HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
def test_malformed_http_gets_json_or_a_closed_connection(gateway, request_bytes):
    answer = raw(gateway.port, request_bytes)
    if answer:
        head, _, body = answer.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        assert status < 500 and b"application/json" in head, answer[:300]
    assert requests.get(f"{gateway.url}/healthz", timeout=2).ok
