"""The few calls of Prometheus's HTTP API (/api/v1) that the screenshot and the live tests make."""

from __future__ import annotations

import requests


class PrometheusApi:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def api(self, endpoint: str, **params: str) -> dict:
        body = requests.get(f"{self.url}/api/v1/{endpoint}", params=params, timeout=5).json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {endpoint}: {body}")
        return body

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["data"]["result"]

    def alert_states(self) -> set[tuple[str, str]]:
        return {(a["labels"]["alertname"], a["state"]) for a in self.api("alerts")["data"]["alerts"]}

    def targets(self) -> list[tuple[str, str, str]]:
        return [(t["labels"]["job"], t["health"], t["lastError"]) for t in self.api("targets")["data"]["activeTargets"]]
