"""observability/screenshot.py without Grafana: its arguments, its bounded load, its kill step and its
waiting logic (the live run against the local stack is in test_alerts_live.py), and the CI job that
runs it against compose's Grafana."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from PIL import Image

from observability import screenshot
from observability.local_stack import scaled_rules
from tests.conftest import REPO

WORKFLOW = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
README = (REPO / "README.md").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "x.png"], "one of the arguments --local --prometheus is required"),
        (["--prometheus", "http://127.0.0.1:9", "--out", "x.png"], "--prometheus needs --gateway and --kill"),
        (["--local", ".", "--kill", "true", "--out", "x.png"], "no --gateway or --kill"),
        (["--local", "no/such/folder", "--out", "x.png"], "no such folder"),
        (["--local", ".", "--page", "http://a", "--out", "x.png"], "one --wait-text per --page"),
        (["--local", ".", "--size", "big", "--out", "x.png"], "WIDTHxHEIGHT"),
        (["--local", ".", "--size", "100x100", "--out", "x.png"], "width 320-4000"),
        (["--local", ".", "--time-scale", "0", "--out", "x.png"], "at least 1"),
        (["--local", ".", "--healthy-for", "-1", "--out", "x.png"], "must not be negative"),
    ],
)
def test_arguments_are_checked_before_anything_starts(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        screenshot.parse(argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err


class _Recorder(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.headers["Content-Type"].split(";")[0], body.count(b"filename=")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_the_load_is_bounded_and_mixes_uploads_batches_urls_and_refusals():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        traffic = screenshot.Traffic(f"http://127.0.0.1:{server.server_address[1]}", "http://x/a.jpg", 40, 30, 0.001)
        with traffic:
            traffic._thread.join(30)
    finally:
        server.shutdown()
        server.server_close()
    assert traffic.sent == len(server.seen) == 40
    kinds = {kind: sum(1 for k, _ in server.seen if k == kind) for kind, _ in server.seen}
    assert kinds == {"image/jpeg": 30, "multipart/form-data": 4, "application/json": 4, "text/plain": 2}
    assert {files for kind, files in server.seen if kind == "multipart/form-data"} == {3}


def test_the_kill_step_runs_the_given_command(tmp_path):
    victim = subprocess.Popen(["sleep", "60"])
    try:
        screenshot.run_kill(f"kill -KILL {victim.pid}")()
        assert victim.wait(10) == -9
    finally:
        victim.kill()


class _Alerts:
    """Answers alert states from a script, as Prometheus's /api/v1/alerts would over time."""

    def __init__(self, *answers: set[tuple[str, str]]):
        self.answers = list(answers)

    def alert_states(self) -> set[tuple[str, str]]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_waiting_for_the_alert_records_each_state_until_it_fires():
    alerts = _Alerts(set(), {(screenshot.ALERT, "pending")}, {(screenshot.ALERT, "firing")})
    seen = screenshot.watch_alerts(alerts, screenshot.firing(screenshot.ALERT), timeout=10)
    assert [state for _, _, state in seen] == ["pending", "firing"]
    assert seen[0][0] < seen[1][0]


def test_waiting_for_the_alert_gives_up_naming_what_it_saw():
    alerts = _Alerts({(screenshot.ALERT, "pending"), ("ClassifierTargetDown", "firing")})
    with pytest.raises(TimeoutError, match=r"within 0.6 s.*ClassifierTargetDown"):
        screenshot.watch_alerts(alerts, screenshot.firing(screenshot.ALERT), timeout=0.6)


def test_rules_compressed_in_time_keep_their_expressions():
    rules = {r.get("alert") or r["record"]: r for g in scaled_rules(30)["groups"] for r in g["rules"]}
    committed = {r.get("alert") or r["record"]: r for g in scaled_rules(1)["groups"] for r in g["rules"]}
    assert (
        rules["ClassifierFallbackRatioHigh"]["for"] == "4s"
        and committed["ClassifierFallbackRatioHigh"]["for"] == "120s"
    )
    assert "[10s]" in rules["job:gateway_fallback_ratio:rate5m"]["expr"]
    assert rules["job:gateway_fallback_ratio:rate5m"]["expr"].replace("[10s]", "[5m]") == committed[
        "job:gateway_fallback_ratio:rate5m"
    ]["expr"].replace("[300s]", "[5m]")


def _job_command() -> str:
    steps = WORKFLOW["jobs"]["observability"]["steps"]
    (command,) = [s["run"] for s in steps if "observability.screenshot" in s.get("run", "")]
    return command


def test_the_ci_job_photographs_the_provisioned_dashboard_with_valid_arguments():
    argv = shlex.split(_job_command())
    assert argv[:3] == [".venv/bin/python", "-m", "observability.screenshot"]
    args = screenshot.parse(argv[3:])
    dashboard = json.loads((REPO / "observability/grafana/dashboards/classifier.json").read_text())
    (page,) = args.page
    assert f"/d/{dashboard['uid']}/" in page and page.startswith("http://127.0.0.1:3000/")  # GRAFANA_PUBLISH
    assert args.wait_text[0] in {p["title"] for p in dashboard["panels"]}
    assert args.kill == "docker compose kill primary"
    # Grafana draws only the panels in view; a grid row is 30 px plus an 8 px margin (Grafana's
    # public/app/core/constants.ts, GRID_CELL_HEIGHT and GRID_CELL_VMARGIN).
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
    assert args.size[1] >= rows * (30 + 8), "the window is shorter than the dashboard"
    job = WORKFLOW["jobs"]["observability"]
    uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert uploads and uploads[0]["with"]["path"].rstrip("/") == str(args.out.parent)
    assert any("--profile observability up" in s.get("run", "") for s in job["steps"])


def test_the_readme_shows_the_command_of_the_ci_job():
    assert " ".join(_job_command().split()) in " ".join(README.split())


def test_the_readme_shows_a_small_screenshot_from_a_real_run():
    (path,) = re.findall(r"\]\((docs/observability-[a-z-]+\.png)\)", README)
    image = REPO / path
    assert image.stat().st_size < 200 << 10
    with Image.open(image) as shot:
        assert shot.format == "PNG" and shot.width >= 1000
    assert f"--out {path}" in README  # the caption names the command that wrote it
