"""Show the fallback happen and photograph it: drive bounded load through a gateway, wait until
Prometheus has seen the primary serve, kill the primary, wait for the fallback-ratio alert to fire,
then screenshot pages (Grafana's dashboard, Prometheus's alerts and graphs) with headless Chromium.

    # against a running stack (the CI job: compose with --profile observability)
    python -m observability.screenshot --prometheus http://127.0.0.1:9090 --gateway http://127.0.0.1:8080 \\
        --kill "docker compose kill primary" --page "http://127.0.0.1:3000/d/classifier-overview?kiosk" \\
        --wait-text "Fallback ratio by reason" --out grafana.png
    # the stack started here, as processes on 127.0.0.1 with Debian's prometheus (observability/local_stack.py)
    python -m observability.screenshot --local build/models --out docs/observability-prometheus.png

Pages are stacked top to bottom into one PNG with a 256-colour palette, so it stays small.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import requests
from PIL import Image, ImageChops

from local_mode.processes import wait_until
from observability.local_stack import LocalStack, image_origin
from observability.prometheus_api import PrometheusApi
from tools.browser import headless_chromium

ALERT = "ClassifierFallbackRatioHigh"
# Prometheus has scraped the primary twice while it answered predictions (not only status checks,
# which a healthcheck makes too): its panels have a rate to show.
PRIMARY_SERVED = 'increase(:tensorflow:serving:request_latency_count{{job="primary",API=~"(?i)predict"}}[{window}]) > 0'
BY_MODEL = 'sum by (model) (rate(gateway_classify_requests_total{code="200"}[1m]))'


def photo(seed: int = 3) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


@dataclass
class Traffic:
    """Classify requests, one at a time with ``pause`` between, bounded in count and time: mostly
    uploads, every 10th a batch of three, every 10th a URL (when ``image_url``), every 20th a wrong
    Content-Type (415)."""

    gateway: str
    image_url: str | None = None
    max_requests: int = 5000
    max_seconds: float = 600
    pause: float = 0.05

    def __post_init__(self) -> None:
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def request(self, session: requests.Session, count: int, image: bytes) -> None:
        url = f"{self.gateway}/classify"
        if count % 20 == 19:
            session.post(url, data=image, headers={"Content-Type": "text/plain"}, timeout=5)
        elif count % 10 == 3:
            session.post(url, files=[("file", (f"{n}.jpg", image, "image/jpeg")) for n in range(3)], timeout=5)
        elif count % 10 == 6 and self.image_url:
            session.post(url, json={"url": self.image_url}, timeout=5)
        else:
            session.post(url, data=image, headers={"Content-Type": "image/jpeg"}, timeout=5)

    def _run(self) -> None:
        image, session, began = photo(), requests.Session(), time.monotonic()
        while self.sent < self.max_requests and time.monotonic() - began < self.max_seconds:
            if self._stop.wait(self.pause):
                return
            # A refused or timed-out request is part of what the panels show.
            with contextlib.suppress(requests.RequestException):
                self.request(session, self.sent, image)
            self.sent += 1

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def wait_healthy(prometheus: PrometheusApi, jobs: Sequence[str], window: str, timeout: float) -> None:
    """Every job's targets up, a zero fallback ratio recorded, and the primary seen serving."""

    def healthy() -> bool:
        up = {series["metric"]["job"] for series in prometheus.query("up == 1")}
        return (
            set(jobs) <= up
            and prometheus.query("job:gateway_fallback_ratio:rate5m == 0") != []
            and prometheus.query(PRIMARY_SERVED.format(window=window)) != []
        )

    try:
        wait_until(healthy, timeout, "every target up, a zero fallback ratio recorded, the primary seen serving")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; targets: {prometheus.targets()}") from None


def watch_alerts(
    prometheus: PrometheusApi, until: Callable[[set[tuple[str, str]]], bool], timeout: float
) -> list[tuple[float, str, str]]:
    """(seconds since the call, alert, state) seen every quarter second until ``until(states)`` or ``timeout``."""
    seen: list[tuple[float, str, str]] = []
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        states = prometheus.alert_states()
        now = time.monotonic() - began
        seen += [(now, name, state) for name, state in sorted(states)]
        if until(states):
            return seen
        time.sleep(0.25)
    raise TimeoutError(f"alerts not as awaited within {timeout} s; seen: {sorted({(n, s) for _, n, s in seen})}")


def firing(alert: str) -> Callable[[set[tuple[str, str]]], bool]:
    return lambda states: (alert, "firing") in states


def _settled(session, text: str, timeout: float, quiet: float) -> None:
    """Until the page shows ``text`` and its DOM has not changed for ``quiet`` seconds (queries and
    drawing done), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = "", time.monotonic()
    while time.monotonic() < deadline:
        dom = session.execute_script("return document.body ? document.body.innerHTML : ''")
        if dom != last:
            last, since = dom, time.monotonic()
        elif text in session.execute_script("return document.body.innerText") and time.monotonic() - since >= quiet:
            return
        time.sleep(0.25)
    raise TimeoutError(
        f"{session.current_url}: {text!r} shown and the page still for {quiet} s: not within {timeout} s"
    )


def _trimmed(shot: Image.Image, margin: int = 16) -> Image.Image:
    """``shot`` without the blank (white) rows below its content."""
    box = ImageChops.difference(shot, Image.new("RGB", shot.size, "white")).getbbox()
    return shot if box is None else shot.crop((0, 0, shot.width, min(shot.height, box[3] + margin)))


def capture(pages: Sequence[tuple[str, str]], out: Path, size: tuple[int, int], timeout: float = 60) -> Path:
    """Screenshot each (url, text to wait for) page at ``size``, stack them, write a palette PNG."""
    session = headless_chromium(size, page_load_timeout=60)
    shots = []
    try:
        for url, text in pages:
            session.get(url)
            _settled(session, text, timeout, quiet=2.0)
            shots.append(Image.open(io.BytesIO(session.get_screenshot_as_png())).convert("RGB"))
    finally:
        session.quit()
    shots = [_trimmed(shot) for shot in shots]
    sheet = Image.new("RGB", (max(s.width for s in shots), sum(s.height for s in shots)), "white")
    top = 0
    for shot in shots:
        sheet.paste(shot, (0, top))
        top += shot.height
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256).save(out, optimize=True)
    return out


def prometheus_pages(url: str, minutes: int = 10) -> list[tuple[str, str]]:
    """Prometheus's alerts page and a graph of answers by model over the last ``minutes``. Debian's
    package ships only the classic UI (under /classic/); upstream's images the current one."""
    base = f"{url}/classic" if requests.get(f"{url}/classic/alerts", timeout=5).ok else url
    graph = f"{base}/graph?g0.expr={quote(BY_MODEL)}&g0.tab=0&g0.range_input={minutes}m&g0.stacked=0"
    return [(f"{base}/alerts", ALERT), (graph, "mobilenet_v3_large")]


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give WIDTHxHEIGHT, e.g. 1400x900") from None
    if not (320 <= width <= 4000 and 240 <= height <= 8000):
        raise argparse.ArgumentTypeError(f"{text!r}: width 320-4000, height 240-8000")
    return width, height


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m observability.screenshot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", type=Path, metavar="MODELS", help="start the stack here from these exports")
    where.add_argument("--prometheus", help="Prometheus of a running stack, e.g. http://127.0.0.1:9090")
    parser.add_argument("--gateway", help="the running stack's gateway, e.g. http://127.0.0.1:8080")
    parser.add_argument(
        "--kill", help="command that kills the running stack's primary, e.g. 'docker compose kill primary'"
    )
    parser.add_argument("--image-url", help="an image URL the gateway can fetch (adds URL requests to the load)")
    parser.add_argument(
        "--page", action="append", default=[], help="a page to screenshot (repeatable; default: Prometheus's)"
    )
    parser.add_argument("--wait-text", action="append", default=[], help="text each --page shows once drawn")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--size", type=_size, default=(1400, 900), help="browser window, WIDTHxHEIGHT")
    parser.add_argument("--time-scale", type=int, default=1, help="--local: divide the rules' windows by this")
    parser.add_argument("--healthy-timeout", type=float, default=300, help="seconds to wait for a healthy stack")
    parser.add_argument(
        "--healthy-for", type=float, default=60, help="seconds of healthy load before the kill (the graph's 'before')"
    )
    parser.add_argument("--alert-timeout", type=float, default=600, help="seconds to wait for the alert to fire")
    parser.add_argument("--max-requests", type=int, default=20000, help="bound on the load's requests")
    args = parser.parse_args(argv)
    if args.prometheus and not (args.gateway and args.kill):
        parser.error("--prometheus needs --gateway and --kill")
    if args.local and (args.gateway or args.kill):
        parser.error("--local starts its own gateway and kills its own primary: no --gateway or --kill")
    if args.local and not args.local.is_dir():
        parser.error(f"--local {args.local}: no such folder (export with .venv/bin/python -m models.export)")
    if args.page and len(args.wait_text) != len(args.page):
        parser.error("give one --wait-text per --page")
    if args.healthy_for < 0:
        parser.error("--healthy-for must not be negative")
    if args.time_scale < 1:
        parser.error("--time-scale must be at least 1")
    return args


def run_kill(command: str) -> Callable[[], None]:
    argv = shlex.split(command)

    def kill() -> None:
        subprocess.run(argv, check=True, timeout=60)

    return kill


def observe(
    prometheus: PrometheusApi,
    traffic: Traffic,
    kill: Callable[[], None],
    window: str,
    healthy_timeout: float,
    alert_timeout: float,
    healthy_for: float,
) -> int:
    """Load on; healthy first, then for ``healthy_for`` seconds more; kill the primary; wait for the
    fallback-ratio alert to fire. The minutes that took, rounded up, plus one."""
    began = time.monotonic()
    with traffic:
        wait_healthy(prometheus, ("gateway", "primary", "fallback"), window, healthy_timeout)
        time.sleep(healthy_for)
        kill()
        watch_alerts(prometheus, firing(ALERT), alert_timeout)
    return int((time.monotonic() - began) // 60) + 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    pages = list(zip(args.page, args.wait_text, strict=True))
    if args.local:
        with tempfile.TemporaryDirectory(prefix="observability-") as folder:
            interval = 1.0 if args.time_scale > 1 else 5.0
            with LocalStack(args.local, Path(folder), args.time_scale, interval) as stack, image_origin(photo()) as url:
                assert stack.prometheus is not None
                prometheus = PrometheusApi(stack.prometheus.url)
                traffic = Traffic(
                    stack.gateway.url,
                    url,
                    args.max_requests,
                    args.healthy_timeout + args.healthy_for + args.alert_timeout,
                )
                window = f"{max(2 * interval, 60 / args.time_scale):g}s"
                minutes = observe(
                    prometheus,
                    traffic,
                    stack.kill_primary,
                    window,
                    args.healthy_timeout,
                    args.alert_timeout,
                    args.healthy_for,
                )
                capture(pages or prometheus_pages(stack.prometheus.url, minutes), args.out, args.size)
    else:
        prometheus = PrometheusApi(args.prometheus)
        traffic = Traffic(
            args.gateway,
            args.image_url,
            args.max_requests,
            args.healthy_timeout + args.healthy_for + args.alert_timeout,
        )
        minutes = observe(
            prometheus, traffic, run_kill(args.kill), "1m", args.healthy_timeout, args.alert_timeout, args.healthy_for
        )
        capture(pages or prometheus_pages(prometheus.url, minutes), args.out, args.size)
    print(f"wrote {args.out} ({args.out.stat().st_size >> 10} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
