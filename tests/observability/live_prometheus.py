"""A real Prometheus (Debian's binary) on 127.0.0.1 against local-mode processes, with the project's
rules compressed in time so an alert's whole life fits in seconds."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import requests
import yaml

from local_mode.processes import free_port, wait_until
from tests.conftest import REPO
from tests.promtool import prometheus_path

RULES = REPO / "observability" / "prometheus" / "rules" / "classifier.rules.yml"
TIME_SCALE = 30  # 5m windows become 10 s, `for: 2m` 4 s
_DURATION = re.compile(r"^(\d+)([smh])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


def _scaled(duration: str) -> str:
    match = _DURATION.match(duration)
    assert match, f"unexpected duration {duration!r} in {RULES.name}"
    return f"{max(1, int(match[1]) * _SECONDS[match[2]] // TIME_SCALE)}s"


def compressed_rules() -> dict:
    """The committed rules with every range and `for` divided by TIME_SCALE; expressions otherwise unchanged."""
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[(\d+[smh])\]", lambda m: f"[{_scaled(m[1])}]", rule["expr"])
            if "for" in rule:
                rule["for"] = _scaled(rule["for"])
    return document


class Prometheus:
    def __init__(self, folder: Path, targets: dict[str, tuple[str, str]]):
        """``targets``: job name -> (host:port, metrics path)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (folder / "rules.yml").write_text(yaml.safe_dump(compressed_rules()))
        (folder / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
                    "rule_files": ["rules.yml"],
                    "scrape_configs": [
                        {"job_name": job, "metrics_path": path, "static_configs": [{"targets": [target]}]}
                        for job, (target, path) in targets.items()
                    ],
                }
            )
        )
        self.log = (folder / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                prometheus_path(),
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: requests.get(f"{self.url}/-/ready", timeout=1).ok, 30, "prometheus ready", self.process)

    def api(self, endpoint: str, **params: str) -> dict:
        body = requests.get(f"{self.url}/api/v1/{endpoint}", params=params, timeout=5).json()
        assert body["status"] == "success", body
        return body

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["data"]["result"]

    def alert_states(self) -> set[tuple[str, str]]:
        return {(a["labels"]["alertname"], a["state"]) for a in self.api("alerts")["data"]["alerts"]}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
