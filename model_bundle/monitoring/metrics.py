"""The monitoring gauges and counters of the contract, on the front's ``/metrics``
(lazily created, like model_bundle/versions/metrics.py)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def metrics() -> dict[str, Any]:
    import bentoml

    def gauge(name: str, documentation: str, labels: list[str]) -> Any:
        return bentoml.metrics.Gauge(
            name=name,
            documentation=documentation,
            labelnames=labels,
            multiprocess_mode="mostrecent",
        )

    return {
        "detected": gauge(
            "model_bundle_drift_detected",
            "1 when at least half the model's features drift",
            ["model"],
        ),
        "score": gauge(
            "model_bundle_drift_score", "A feature's drift test statistic", ["model", "feature"]
        ),
        "feature_detected": gauge(
            "model_bundle_drift_feature_detected", "1 when the feature drifts", ["model", "feature"]
        ),
        "shift": gauge(
            "model_bundle_prediction_shift",
            "Jensen-Shannon distance of live predicted labels from the reference's",
            ["model"],
        ),
        "accuracy": gauge(
            "model_bundle_live_accuracy", "Accuracy over the feedback window", ["model", "version"]
        ),
        "rmse": gauge(
            "model_bundle_live_rmse", "Rating RMSE over the feedback window", ["model", "version"]
        ),
        "filled": gauge(
            "model_bundle_drift_window_filled", "Live samples the drift window holds", ["model"]
        ),
        "feedback": bentoml.metrics.Counter(
            name="model_bundle_feedback",
            documentation="Feedback joined to a prediction",
            labelnames=["model", "version"],
        ),
        "logged": bentoml.metrics.Counter(
            name="model_bundle_payload_logged",
            documentation="Sampled payloads written",
            labelnames=["model"],
        ),
        "spent": bentoml.metrics.Counter(
            name="model_bundle_monitor_seconds",
            documentation="Seconds the monitor spent: recording answers on the request path "
            "(drift refreshes included), payload_writing off it (writer threads' CPU)",
            labelnames=["part"],
        ),
        "dropped": bentoml.metrics.Counter(
            name="model_bundle_payload_dropped",
            documentation="Sampled payloads dropped (queue_full, write_error)",
            labelnames=["model", "reason"],
        ),
    }
