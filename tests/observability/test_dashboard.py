"""The Grafana dashboard: generated, current, and valid against grafana-foundation-sdk's model."""

from __future__ import annotations

import json

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from observability import generate
from tests.conftest import REPO

PROVISIONING = REPO / "observability" / "grafana" / "provisioning"


def committed() -> dict:
    return json.loads(generate.DASHBOARD.read_text(encoding="utf-8"))


def test_committed_dashboard_is_what_the_generator_writes():
    assert generate.main(["--check"]) == 0, "run: python -m observability.generate"


def test_dashboard_round_trips_through_the_librarys_model():
    """Dashboard.from_json drops what the model does not know; a round trip that changes nothing is valid."""
    document = committed()
    again = json.loads(json.dumps(Dashboard.from_json(document), cls=JSONEncoder))
    assert again == document


def test_panels_have_unique_ids_known_types_and_the_provisioned_datasource():
    panels = committed()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert {p["type"] for p in panels} <= {"row", "timeseries", "stat", "state-timeline", "heatmap"}
    datasource = (PROVISIONING / "datasources" / "prometheus.yaml").read_text()
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
            assert panel["targets"], panel["title"]
    assert "uid: prometheus" in datasource


def test_dashboard_covers_what_operators_asked_for():
    titles = " | ".join(p["title"] for p in committed()["panels"]).lower()
    for wanted in (
        "by model",
        "fallback ratio by reason",
        "circuit state",
        "gateway stage",
        "call to the primary",
        "in flight and shed",
        "batch sizes",
        "pool saturation",
        "load state",
        "images per classify request",
        "url fetches by outcome",
        "url fetch duration",
    ):
        assert wanted in titles, wanted
