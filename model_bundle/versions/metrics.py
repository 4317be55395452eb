"""The front's Prometheus metrics of versions, served on BentoML's ``/metrics``.

``bentoml.metrics`` is prometheus_client behind BentoML's multiprocess set-up (its metrics
must be created once the server configured the metrics directory, so lazily, here)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger("model_bundle")


@functools.cache
def metrics() -> dict[str, Any]:
    import bentoml

    labels = ["model", "version", "role"]
    return {
        "answers": bentoml.metrics.Counter(
            name="model_bundle_version_answers",
            documentation="Requests answered, by model, version and role (primary, canary, "
            "shadow: a shadow's answers are compared, never returned)",
            labelnames=labels,
        ),
        "share": bentoml.metrics.Gauge(
            name="model_bundle_canary_share_percent",
            documentation="The canary's share of live traffic (0 for a shadow or no candidate)",
            labelnames=["model", "version"],
            multiprocess_mode="mostrecent",
        ),
        "agreement": bentoml.metrics.Gauge(
            name="model_bundle_shadow_agreement",
            documentation="A shadow's agreement with the primary since it was loaded: "
            "same_class_rate (classifiers), mean_abs_rating_diff (ratings), top_k_overlap "
            "(recommendations)",
            labelnames=["model", "version", "measure"],
            multiprocess_mode="mostrecent",
        ),
        "dropped": bentoml.metrics.Counter(
            name="model_bundle_shadow_dropped",
            documentation="Copies not sent to a shadow because as many were in flight as allowed, "
            "or failed",
            labelnames=["model", "version", "reason"],
        ),
        "decisions": bentoml.metrics.Counter(
            name="model_bundle_rollout_decisions",
            documentation="Automatic rollout decisions: canary (a shadow that held), promote "
            "(a canary that held), drop (a candidate whose live figures worsened)",
            labelnames=["model", "version", "decision"],
        ),
    }


def decided(model: str, version: str, decision: str, reasons: Sequence[str]) -> None:
    """Count an automatic rollout decision and log it with its reasons."""
    metrics()["decisions"].labels(model=model, version=version, decision=decision).inc()
    logger.warning("rollout of %s: %s %s (%s)", model, decision, version, "; ".join(reasons))
