"""The model server's metrics: TF-Serving's names and exposition, the pool and load state."""

from __future__ import annotations

import subprocess

from prometheus_client.parser import text_string_to_metric_families

from models.server.metrics import MAX_UNKNOWN_NAMES, OTHER_NAMES, ServerMetrics
from tests.promtool import promtool_path


def families(metrics: ServerMetrics) -> dict:
    return {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}


def samples(metrics: ServerMetrics, name: str) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families(metrics).values()
        for s in family.samples
        if s.name.startswith(name)
    }


def test_request_count_keeps_tfserving_name_without_total():
    metrics = ServerMetrics("m")
    metrics.record_request("m", "Predict", "GRPC", "OK", 0.001)
    metrics.record_request("m", "Predict", "GRPC", "INVALID_ARGUMENT", 0.001)
    text = metrics.exposition().decode()
    assert "# TYPE :tensorflow:serving:request_count counter\n" in text
    assert ':tensorflow:serving:request_count{model_name="m",status="OK"} 1\n' in text
    assert ':tensorflow:serving:request_count{model_name="m",status="INVALID_ARGUMENT"} 1\n' in text


def test_client_chosen_model_names_cannot_break_or_bloat_the_exposition():
    metrics = ServerMetrics("m")
    metrics.record_request('a"b\\c\nd', "Predict", "GRPC", "NOT_FOUND", 0.001)
    for number in range(MAX_UNKNOWN_NAMES + 10):
        metrics.record_request(f"unknown{number}", "Predict", "GRPC", "NOT_FOUND", 0.001)
    metrics.record_request("m", "Predict", "GRPC", "OK", 0.001)
    text = metrics.exposition().decode()
    assert ':tensorflow:serving:request_count{model_name="a\\"b\\\\c\\nd",status="NOT_FOUND"} 1\n' in text
    names = {s.labels["model_name"] for s in families(metrics)[":tensorflow:serving:request_count"].samples}
    assert len(names) == MAX_UNKNOWN_NAMES + 2 and {"m", OTHER_NAMES, 'a"b\\c\nd'} <= names
    assert f':tensorflow:serving:request_count{{model_name="{OTHER_NAMES}",status="NOT_FOUND"}} 11\n' in text


def test_request_latency_is_microseconds_in_tfserving_buckets_and_only_for_ok():
    metrics = ServerMetrics("m")
    metrics.record_request("m", "predict", "REST", "OK", 18e-6)  # exactly a limit: the next bucket (upper_bound)
    metrics.record_request("m", "predict", "REST", "NOT_FOUND", 5.0)
    text = metrics.exposition().decode()
    labels = 'model_name="m",API="predict",entrypoint="REST"'
    assert f':tensorflow:serving:request_latency_bucket{{{labels},le="18"}} 0\n' in text
    assert f':tensorflow:serving:request_latency_bucket{{{labels},le="32.4"}} 1\n' in text
    assert f':tensorflow:serving:request_latency_bucket{{{labels},le="+Inf"}} 1\n' in text
    assert f":tensorflow:serving:request_latency_count{{{labels}}} 1\n" in text
    limits = [
        line.split('le="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith(":tensorflow:serving:request_latency_bucket")
    ]
    # Exponential(10, 1.8, 33): 10, 18, 32.4, ... 10 * 1.8**32, then +Inf.
    assert limits[:4] == ["10", "18", "32.4", "58.32"] and len(limits) == 34 and limits[-1] == "+Inf"


def test_invocations_record_runtime_batch_sizes_and_pool():
    metrics = ServerMetrics("m")
    metrics.watch(lambda: "AVAILABLE", interpreters=lambda: 3)
    with metrics.waiting_for_interpreter():
        pass
    metrics.record_input_batch(4)
    with metrics.invocation(batch_size=4):
        assert samples(metrics, "litert_interpreters_busy")[("litert_interpreters_busy", (("model_name", "m"),))] == 1
    got = samples(metrics, "")
    assert got[("litert_interpreters_busy", (("model_name", "m"),))] == 0
    assert got[("litert_interpreters", (("model_name", "m"),))] == 3
    assert got[("litert_interpreter_wait_seconds_count", (("model_name", "m"),))] == 1
    assert got[("litert_model_state", (("model_name", "m"), ("state", "AVAILABLE")))] == 1
    assert got[("litert_model_state", (("model_name", "m"), ("state", "LOADING")))] == 0
    runtime = (("API", "Predict"), ("model_name", "m"), ("runtime", "LiteRT"))
    assert got[(":tensorflow:serving:runtime_latency_count", runtime)] == 1
    for name in ("input_batch_size", "processed_batch_size"):
        family = f":tensorflow:serving:batching_session:{name}"
        assert got[(f"{family}_bucket", (("le", "4"),))] == 0  # 4 lands above the limit 4, as in TF
        assert got[(f"{family}_bucket", (("le", "8"),))] == 1
        assert got[(f"{family}_sum", ())] == 4


def test_promtool_flags_only_the_tfserving_names_it_cannot_change():
    """TF-Serving's counters have no _total and its histograms no unit suffix; everything else is clean."""
    metrics = ServerMetrics("m")
    metrics.watch(lambda: "LOADING", interpreters=lambda: 1)
    metrics.record_request("m", "Predict", "GRPC", "OK", 0.01)
    with metrics.waiting_for_interpreter(), metrics.invocation(1):
        pass
    result = subprocess.run(
        [promtool_path(), "check", "metrics"], input=metrics.exposition(), capture_output=True, timeout=30
    )
    flagged = [line for line in (result.stdout + result.stderr).decode().splitlines() if line.strip()]
    assert flagged and all(line.startswith(":tensorflow:serving:") for line in flagged), flagged
