"""The Grafana dashboard in deploy/monitoring/grafana-dashboard.json: valid JSON with the
dashboard schema's essentials, and every metric its queries (and the alert rules) use is one
the bundle exports, so renaming a metric breaks this test. The exported names are the
monitoring contract's, model_bundle/versions/metrics.py's and BentoML's request metrics."""

from __future__ import annotations

import json
import re

import yaml

from tests.support.server import ROOT

DASHBOARD = ROOT / "deploy" / "monitoring" / "grafana-dashboard.json"
RULES = ROOT / "deploy" / "monitoring" / "alerts.yaml"
# The names /metrics serves (a Counter `x` is exposed as `x_total`; a Histogram as x_bucket..).
EXPORTED = {
    "model_bundle_drift_detected",
    "model_bundle_drift_score",
    "model_bundle_drift_feature_detected",
    "model_bundle_prediction_shift",
    "model_bundle_live_accuracy",
    "model_bundle_live_rmse",
    "model_bundle_feedback_total",
    "model_bundle_payload_logged_total",
    "model_bundle_payload_dropped_total",
    "model_bundle_drift_window_filled",
    "bentoml_service_request_total",
    "bentoml_service_request_duration_seconds_bucket",
}
METRIC = re.compile(r"\b((?:model_bundle|bentoml)_[a-z0-9_]+)")


def source_metrics() -> set[str]:
    """The names the bundle's metric modules create, read from their source (no server):
    model_bundle/versions/metrics.py and model_bundle/monitoring/metrics.py."""
    names = set()
    for module in ("versions", "monitoring"):
        source = (ROOT / "model_bundle" / module / "metrics.py").read_text()
        created = re.findall(r"(Counter|Gauge)\(\s*name=\"([a-z_]+)\"", source)
        created += [("Gauge", name) for name in re.findall(r"gauge\(\s*\"([a-z_]+)\"", source)]
        names |= {f"{name}_total" if kind == "Counter" else name for kind, name in created}
    return names


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    found += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return found


def test_dashboard_has_the_schema_essentials() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        assert panel["type"] in {"stat", "timeseries", "table", "gauge"}
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"])


def test_every_queried_metric_is_exported() -> None:
    exported = source_metrics() | {n for n in EXPORTED if n.startswith("bentoml_")}
    # The contract's names are the ones the code creates (a rename on either side fails here).
    assert {n for n in EXPORTED if n.startswith("model_bundle_")} <= exported
    assert "model_bundle_canary_share_percent" in exported
    rules = yaml.safe_load(RULES.read_text())["groups"]
    exprs = queries() + [r["expr"] for g in rules for r in g["rules"]]
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used, "no metric found in the queries"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    # The dashboard shows each monitoring metric of the contract somewhere.
    shown = {name for expr in queries() for name in METRIC.findall(expr)}
    assert shown >= EXPORTED, f"not on the dashboard: {sorted(EXPORTED - shown)}"


def test_the_real_servers_metrics_include_the_dashboards(own_server) -> None:
    """After answers, feedback and a drift report, the real /metrics serves the metrics the
    dashboard reads (those that exist without book feedback or dropped payloads)."""
    import httpx

    from scripts.sample_data.requests import HEALTHY

    server = own_server(
        {
            "MODEL_BUNDLE_PAYLOAD_SAMPLE_RATE": "1.0",
            "MODEL_BUNDLE_DRIFT_WINDOW": "100",
            "MODEL_BUNDLE_DRIFT_MIN_SAMPLES": "50",
        }
    )
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/predict_credit", json=HEALTHY).json()
        feedback = {"prediction_id": answer["prediction_id"], "label": answer["label"]}
        assert http.post("/feedback", json=feedback).status_code == 200
        items = [HEALTHY] * 60
        assert http.post("/predict_credit_batch", json={"items": items}).status_code == 200
        assert http.post("/drift", json={"model": "credit_health"}).status_code == 200
        served = set(re.findall(r"^([a-z_]+)\{", http.get("/metrics").text, re.M))
    expected = {
        "model_bundle_drift_detected",
        "model_bundle_drift_score",
        "model_bundle_drift_feature_detected",
        "model_bundle_prediction_shift",
        "model_bundle_live_accuracy",
        "model_bundle_feedback_total",
        "model_bundle_payload_logged_total",
        "model_bundle_monitor_seconds_total",
        "model_bundle_drift_window_filled",
        "bentoml_service_request_total",
        "bentoml_service_request_duration_seconds_bucket",
    }
    shown = {name for expr in queries() for name in METRIC.findall(expr)}
    assert expected <= shown
    assert expected <= served, f"not served: {sorted(expected - served)}"
