"""A real Prometheus scrapes a local stack (two model servers, a gateway), evaluates the project's
rules (time-compressed, see conftest), and sees what an operator would when the primary dies:
the fallback-ratio alert goes pending, then firing; the no-model alert stays silent. Then every
query of the Grafana dashboard is evaluated by that Prometheus over the run."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
import requests
from PIL import Image

from local_mode.processes import Gateway, ModelServer, serve_tflite, wait_until
from observability import generate
from tests.conftest import REPO
from tests.observability.live_prometheus import Prometheus

PRIMARY, FALLBACK = "wide_resnet50_2", "mobilenet_v3_large"
MONITORING = {"MONITORING_CONFIG_FILE": str(REPO / "models" / "primary" / "monitoring.config"), "INTERPRETERS": "1"}
METRICS_PATH = "/monitoring/prometheus/metrics"
FIRING_WITHIN_S = 40
# Two scrapes of the primary apart in time, both after it served: its panels have a rate to show.
PRIMARY_SERVED = 'increase(:tensorflow:serving:request_latency_count{job="primary"}[10s]) > 0'


@dataclass
class Run:
    prometheus: Prometheus
    started: float
    killed: float = 0.0
    states: list[tuple[float, str, str]] = field(default_factory=list)  # (seconds after kill, alert, state)
    primary_circuit_opened: bool = False


def _photo() -> bytes:
    pixels = np.random.default_rng(3).integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def _traffic(url: str, stop: threading.Event, max_requests: int = 3000, max_seconds: float = 80) -> None:
    """About 20 requests a second, one in 20 a wrong Content-Type (415), bounded in count and time."""
    photo, session, began = _photo(), requests.Session(), time.monotonic()
    for count in range(max_requests):
        if stop.is_set() or time.monotonic() - began > max_seconds:
            return
        content_type = "text/plain" if count % 20 == 19 else "image/jpeg"
        with contextlib.suppress(requests.RequestException):
            session.post(f"{url}/classify", data=photo, headers={"Content-Type": content_type}, timeout=5)
        time.sleep(0.05)


@pytest.fixture(scope="module")
def run(exported_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("alerts")
    # The primary's role is played by the MobileNet file under the primary's name: the alert depends
    # on routing, not on which network answers, and this keeps the test quick on 2 cores.
    primary_base = serve_tflite(folder / "primary-models", PRIMARY, exported_models / FALLBACK / "1" / "model.tflite")
    with (
        ModelServer(primary_base, PRIMARY, folder / "primary.log", **MONITORING) as primary,
        ModelServer(exported_models, FALLBACK, folder / "fallback.log", **MONITORING) as fallback,
    ):
        primary.start()
        fallback.start()
        gateway = Gateway(
            folder / "gateway.log",
            PRIMARY_URL=f"grpc://{primary.grpc_target}",
            PRIMARY_MODEL=PRIMARY,
            FALLBACK_URL=f"grpc://{fallback.grpc_target}",
            FALLBACK_MODEL=FALLBACK,
            HEDGE="false",
        )
        with gateway:
            gateway.start()
            prometheus = Prometheus(
                folder,
                {
                    "gateway": (gateway.url.removeprefix("http://"), "/metrics"),
                    "primary": (primary.rest.removeprefix("http://"), METRICS_PATH),
                    "fallback": (fallback.rest.removeprefix("http://"), METRICS_PATH),
                },
            )
            stop = threading.Event()
            load = threading.Thread(target=_traffic, args=(gateway.url, stop), daemon=True)
            result = Run(prometheus, started=time.time())
            try:
                load.start()
                # Healthy first: every target up and the recorded fallback ratio evaluated (and zero).
                try:
                    wait_until(
                        lambda: (
                            len(prometheus.query("up == 1")) == 3
                            and prometheus.query("job:gateway_fallback_ratio:rate5m == 0") != []
                            and prometheus.query(PRIMARY_SERVED) != []
                        ),
                        30,
                        "three targets up, a zero fallback ratio recorded, the primary seen serving",
                    )
                except TimeoutError as exc:
                    targets = [
                        (t["labels"]["job"], t["health"], t["lastError"])
                        for t in prometheus.api("targets")["data"]["activeTargets"]
                    ]
                    raise AssertionError(f"{exc}; targets: {targets}") from None
                result.states += [(-1.0, name, state) for name, state in prometheus.alert_states()]
                primary.stop(signal.SIGKILL)
                result.killed = time.monotonic()
                deadline = result.killed + FIRING_WITHIN_S
                while time.monotonic() < deadline:
                    now = time.monotonic() - result.killed
                    result.states += [(now, name, state) for name, state in prometheus.alert_states()]
                    result.primary_circuit_opened |= bool(
                        prometheus.query('gateway_circuit_state{backend="primary"} == 2')
                    )
                    if ("ClassifierFallbackRatioHigh", "firing") in {(n, s) for _, n, s in result.states} and now > 8:
                        break  # firing, and the no-model rule (for: 2 s here) has had its chance to misfire
                    time.sleep(0.25)
                yield result
            finally:
                stop.set()
                load.join(10)
                prometheus.stop()


def _first(run: Run, alert: str, state: str) -> float | None:
    return next((t for t, name, s in run.states if name == alert and s == state), None)


def test_fallback_ratio_alert_goes_pending_then_firing(run):
    assert not [s for s in run.states if s[0] < 0 and s[1] == "ClassifierFallbackRatioHigh"], "fired while healthy"
    pending = _first(run, "ClassifierFallbackRatioHigh", "pending")
    firing = _first(run, "ClassifierFallbackRatioHigh", "firing")
    assert pending is not None and firing is not None, run.states
    assert pending < firing < FIRING_WITHIN_S


def test_no_model_alert_stays_silent_while_the_fallback_answers(run):
    assert run.primary_circuit_opened, "the primary's circuit opened: one backend down, not all"
    assert not [s for s in run.states if s[1] == "ClassifierNoModelAvailable"]


def _dashboard_queries() -> list[tuple[str, str]]:
    document = json.loads(generate.DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in document["panels"] for target in panel.get("targets", [])]


def test_every_dashboard_query_evaluates_with_data(run):
    """Grafana is not installable here: its queries go to the same Prometheus, $__rate_interval made concrete."""
    queries = _dashboard_queries()
    assert len(queries) >= 20
    empty = []
    for title, expr in queries:
        body = run.prometheus.api(
            "query_range",
            query=expr.replace("$__rate_interval", "10s"),
            start=str(run.started),
            end=str(time.time()),
            step="1",
        )
        assert not body.get("warnings"), (title, expr, body["warnings"])
        if not body["data"]["result"]:
            empty.append((title, expr))
    assert empty == []
