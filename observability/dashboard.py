"""The Grafana dashboard, built with grafana-foundation-sdk (Grafana's dashboards-as-code library);
`python -m observability.generate` writes it to grafana/dashboards/classifier.json.

Queries read the gateway's gateway_* metrics and the model servers' TF-Serving metrics, so the
same panels serve TF-Serving (GPU primary) and our LiteRT server; litert_* panels stay empty for
TF-Serving, which has no pool or load-state metric.
"""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import heatmap as heatmap_model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="prometheus")  # grafana/provisioning/datasources
UID = "classifier-overview"
STAGES = ("total", "decode", "preprocess", "infer")
BACKENDS = ("primary", "fallback")
CIRCUIT = {"0": ("closed", "green"), "1": ("half-open", "yellow"), "2": ("open", "red")}


def query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref)


def bucket_query(expr: str) -> prometheus.Dataquery:
    return query(expr, "{{le}}").format(PromQueryFormat.HEATMAP)


def thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def legend() -> common_b.VizLegendOptions:
    return (
        common_b.VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
    )


def tooltip() -> common_b.VizTooltipOptions:
    return common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)


def state_timeline(title: str, width: int) -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .height(6)
        .span(width)
        .legend(legend())
        .tooltip(tooltip())
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
    )


def series(title: str, unit: str, *targets: prometheus.Dataquery, stacked: bool = False) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .fill_opacity(10)
        .height(8)
        .span(12)
        .legend(legend())
        .tooltip(tooltip())
    )
    if stacked:
        panel = panel.stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL))
    for target in targets:
        panel = panel.with_target(target)
    return panel


def latency_heatmap(title: str, expr: str, unit: str, width: int = 6) -> heatmap.Panel:
    return (
        heatmap.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .height(8)
        .span(width)
        .with_target(bucket_query(expr))
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit(unit))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_model.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .fill("dark-orange")
            .exponent(0.5)
            .steps(64)
        )
        .cell_values(heatmap.CellValues().unit("short"))
    )


def build() -> model.Dashboard:
    rate = "$__rate_interval"
    ok = 'gateway_classify_requests_total{code="200"}'
    circuit_mappings: list[model.ValueMapping] = [
        model.ValueMap(
            options={
                value: model.ValueMappingResult(text=text, color=color, index=i)
                for i, (value, (text, color)) in enumerate(CIRCUIT.items())
            }
        )
    ]
    board = (
        dash.Dashboard("Classifier: which model answers")
        .uid(UID)
        .tags(["classifier"])
        .refresh("30s")
        .time("now-1h", "now")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .description("Gateway routing, fallback and circuits; model server latency, batches and pool.")
    )

    board = (
        board.with_row(dash.Row("Who answers"))
        .with_panel(
            series(
                "Answers by model (200) and errors by status",
                "reqps",
                query(f"sum by (model) (rate({ok}[{rate}]))", "{{model}}"),
                query(
                    f'sum by (code) (rate(gateway_classify_requests_total{{code!="200"}}[{rate}]))',
                    "HTTP {{code}}",
                    "B",
                ),
            )
        )
        .with_panel(
            series(
                "Fallback ratio by reason",
                "percentunit",
                query(
                    f"sum by (reason) (rate(gateway_fallback_answers_total[{rate}])) / scalar(sum(rate({ok}[{rate}])))",
                    "{{reason}}",
                ),
                stacked=True,
            ).max(1)
        )
        .with_panel(
            stat.Panel()
            .title("Fallback ratio, 5 min (alert over 25%)")
            .datasource(DATASOURCE)
            .unit("percentunit")
            .height(6)
            .span(6)
            .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .graph_mode(common.BigValueGraphMode.AREA)
            .with_target(query("max(job:gateway_fallback_ratio:rate5m)", "fallback ratio"))
            .thresholds(thresholds((None, "green"), (0.1, "yellow"), (0.25, "red")))
        )
        .with_panel(
            state_timeline("Circuit state per gateway and backend", 18)
            .mappings(circuit_mappings)
            .thresholds(thresholds((None, "green"), (1, "yellow"), (2, "red")))
            .with_target(query("max by (instance, backend) (gateway_circuit_state)", "{{instance}} {{backend}}"))
        )
    )

    board = board.with_row(dash.Row("Latency"))
    for stage in STAGES:
        board = board.with_panel(
            latency_heatmap(
                f"Gateway stage: {stage}",
                f'sum by (le) (increase(gateway_stage_duration_seconds_bucket{{stage="{stage}"}}[{rate}]))',
                "s",
            )
        )
    for backend in BACKENDS:
        board = board.with_panel(
            latency_heatmap(
                f"Gateway call to the {backend}",
                f'sum by (le) (increase(gateway_backend_request_duration_seconds_bucket{{backend="{backend}"}}[{rate}]))',
                "s",
                width=12,
            )
        )
    for job in BACKENDS:
        board = board.with_panel(
            latency_heatmap(
                f"Model server ({job}): request latency",
                f'sum by (le) (increase(:tensorflow:serving:request_latency_bucket{{job="{job}"}}[{rate}]))',
                "µs",
                width=12,
            )
        )

    board = (
        board.with_row(dash.Row("Load"))
        .with_panel(
            series(
                "In flight and shed",
                "short",
                query("sum(gateway_requests_in_flight)", "in flight"),
                query("sum(gateway_requests_in_flight_limit)", "limit (MAX_IN_FLIGHT)", "B"),
                query(f"sum(rate(gateway_shed_requests_total[{rate}]))", "shed per second", "C"),
            )
        )
        .with_panel(
            series(
                "Model server requests by status",
                "reqps",
                query(f"sum by (job, status) (rate(:tensorflow:serving:request_count[{rate}]))", "{{job}} {{status}}"),
            )
        )
        .with_panel(
            latency_heatmap(
                "Model server batch sizes",
                f"sum by (le) (increase(:tensorflow:serving:batching_session:processed_batch_size_bucket[{rate}]))",
                "short",
                width=12,
            )
        )
        .with_panel(
            series(
                "Interpreter pool saturation (LiteRT)",
                "percentunit",
                query("sum by (job) (litert_interpreters_busy) / sum by (job) (litert_interpreters)", "{{job}} busy"),
                query("sum by (job) (litert_interpreter_waiting_requests)", "{{job}} waiting", "B"),
            ).max(1)
        )
        .with_panel(
            state_timeline("Model load state (LiteRT) and scrape targets up", 24)
            .with_target(query("max by (job, state) (litert_model_state == 1)", "{{job}} {{state}}"))
            .with_target(query("min by (job) (up)", "{{job}} up", "B"))
            .thresholds(thresholds((None, "red"), (1, "green")))
        )
    )

    board = (
        board.with_row(dash.Row("Inputs: batches and URL fetches"))
        .with_panel(
            latency_heatmap(
                "Images per classify request (gateway)",
                f"sum by (le) (increase(gateway_classify_request_images_bucket[{rate}]))",
                "short",
                width=8,
            )
        )
        .with_panel(
            series(
                "URL fetches by outcome",
                "reqps",
                query(
                    f"sum by (outcome) (rate(gateway_url_fetch_duration_seconds_count[{rate}]))",
                    "{{outcome}}",
                ),
                stacked=True,
            ).span(8)
        )
        .with_panel(
            latency_heatmap(
                "URL fetch duration",
                f"sum by (le) (increase(gateway_url_fetch_duration_seconds_bucket[{rate}]))",
                "s",
                width=8,
            )
        )
    )
    built = board.build()
    for number, panel in enumerate(built.panels or [], start=1):
        panel.id_val = number  # Grafana needs unique ids; the builders leave them unset
    return built


def render() -> str:
    return json.dumps(build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
