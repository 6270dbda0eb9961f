"""What the model server's metrics cost per request, and what one scrape costs. Prints a Markdown table.

    .venv/bin/python -m benchmarks.server_metrics

Per request the server records: the request (count, latency), the wait for an interpreter and the
invocation (runtime latency, batch sizes, busy gauge). Measured on ServerMetrics directly, in one
thread; compare with the inference itself (milliseconds, docs/benchmarks.md "Model server").
"""

from __future__ import annotations

import argparse

from benchmarks.timing import ms, timed
from models.server.metrics import ServerMetrics


def per_request(metrics: ServerMetrics) -> None:
    with metrics.waiting_for_interpreter():
        pass
    with metrics.invocation(1):
        pass
    metrics.record_request("m", "Predict", "GRPC", "OK", 0.004)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    args = parser.parse_args(argv)
    metrics = ServerMetrics("m")
    metrics.watch(lambda: "AVAILABLE", interpreters=lambda: 2)
    record = timed(lambda: per_request(metrics), args.count, warmup=1000)
    for status in ("INVALID_ARGUMENT", "NOT_FOUND", "UNAVAILABLE"):
        metrics.record_request("m", "Predict", "GRPC", status, 0.001)
    metrics.record_request("m", "predict", "REST", "OK", 0.004)
    scrape = timed(metrics.exposition, 500, warmup=20)
    size = len(metrics.exposition())
    print("| what | p50 | p99 |")
    print("|---|---|---|")
    print(f"| metrics recorded per request | {ms(record, 50) * 1000:.1f} µs | {ms(record, 99) * 1000:.1f} µs |")
    print(f"| one scrape ({size} bytes) | {ms(scrape, 50):.2f} ms | {ms(scrape, 99):.2f} ms |")


if __name__ == "__main__":
    main()
