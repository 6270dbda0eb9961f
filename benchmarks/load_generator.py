"""A bounded closed-loop HTTP load generator: ``concurrency`` clients, each on its own keep-alive
connection, send the next upload as soon as the previous answer is read, until ``requests`` answers
or ``time_cap_s`` (whichever comes first). It also measures its own CPU (the clients' thread CPU
time), so a table can say how much of the shared cores the generator took.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Upload:
    """One multipart/form-data body with the image in the ``file`` field, encoded once up front."""

    body: bytes
    content_type: str

    @classmethod
    def multipart(cls, data: bytes, filename: str, media_type: str = "image/jpeg") -> Upload:
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {media_type}\r\n\r\n"
        ).encode()
        return cls(head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}")


@dataclass
class LoadResult:
    concurrency: int
    wall_s: float
    client_cpu_s: float
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return len(self.latencies_s)

    @property
    def throughput(self) -> float:
        return self.answered / self.wall_s if self.wall_s else 0.0

    def latency_ms(self, q: float) -> float:
        return float(np.percentile(np.array(self.latencies_s) * 1000, q)) if self.latencies_s else float("nan")

    @property
    def client_cpu_ms_per_request(self) -> float:
        return self.client_cpu_s * 1000 / max(1, self.answered + len(self.errors))


def run(
    host: str, port: int, path: str, uploads: Sequence[Upload], concurrency: int, requests: int, time_cap_s: float
) -> LoadResult:
    """Closed loop at ``concurrency``; the n-th request sends ``uploads[n % len(uploads)]``. Only a
    200 counts as answered; any other status or a connection error is recorded in ``errors``."""
    if not uploads or concurrency < 1 or requests < 1 or time_cap_s <= 0:
        raise ValueError("need uploads, concurrency >= 1, requests >= 1 and time_cap_s > 0")
    tickets = itertools.count()  # next() on it is atomic under the GIL: one ticket per request
    deadline = time.monotonic() + time_cap_s
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    cpu = [0.0] * concurrency

    def client(slot: int) -> None:
        start_cpu = time.thread_time()
        connection = http.client.HTTPConnection(host, port, timeout=max(30.0, time_cap_s))
        mine: list[float] = []
        failed: list[str] = []
        try:
            while (ticket := next(tickets)) < requests and time.monotonic() < deadline:
                upload = uploads[ticket % len(uploads)]
                started = time.perf_counter()
                try:
                    connection.request("POST", path, upload.body, {"Content-Type": upload.content_type})
                    response = connection.getresponse()
                    payload = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    connection.close()  # the next request opens a new connection
                    failed.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status == 200:
                    mine.append(time.perf_counter() - started)
                else:
                    failed.append(f"HTTP {response.status}: {payload[:200]!r}")
        finally:
            connection.close()
            cpu[slot] = time.thread_time() - start_cpu
            with lock:
                latencies.extend(mine)
                errors.extend(failed)

    threads = [threading.Thread(target=client, args=(slot,), daemon=True) for slot in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(concurrency, time.perf_counter() - started, sum(cpu), latencies, errors)
