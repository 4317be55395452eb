"""How far to trust a classifier's confidence: expected calibration error on held-out data,
the reliability diagram's bins, and temperature scaling.

ECE (Guo et al., 2017): predictions binned by confidence (the top class's probability) into
BINS equal-width bins; the count-weighted mean of |accuracy - mean confidence| per bin.
Temperature scaling divides the logits by one T > 0 fitted on held-out data (least negative
log-likelihood over a log-spaced grid: one parameter, no optimiser to tune). It is OFF by
default (served probabilities stay the network's own softmax, so answers do not change under
a retrain's feet); the fitted T and the ECE it would give are always recorded. Asked for
(``scaling=True``), it is applied only when it lowers the held-out ECE
(``temperature_applied``); otherwise T = 1.
Note: T is fitted and judged on the same held-out rows, so the gain is optimistic on small
held-out sets; the un-scaled ECE is always reported beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BINS = 10
TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(20.0), 241))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """ECE and the reliability diagram's bins (empty bins have count 0 and no figures)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        row: dict[str, Any] = {"lower": float(edges[b]), "upper": float(edges[b + 1])}
        row["count"] = count
        if count:
            row["confidence"] = round(float(confidence[members].mean()), 4)
            row["accuracy"] = round(float(correct[members].mean()), 4)
            ece += count / len(labels) * abs(row["accuracy"] - row["confidence"])
        table.append(row)
    return {"ece": round(ece, 4), "bins": table}


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The grid temperature of least negative log-likelihood on (logits, labels)."""
    labels = np.asarray(labels)

    def nll(t: float) -> float:
        p = softmax(logits, t)[np.arange(len(labels)), labels]
        return float(-np.log(np.maximum(p, 1e-12)).mean())

    return float(min(TEMPERATURES, key=nll))


def served_temperature(metadata: dict[str, Any]) -> float:
    """The temperature an artifact's logits are divided by at serving: its recorded
    ``calibration.temperature`` (1 when it records none). The one reading every classifier
    (tabular, mask) uses, so the plain and the explained answers agree."""
    recorded = metadata.get("calibration") or {}
    return float(recorded.get("temperature", 1.0))


def calibration(logits: np.ndarray, labels: np.ndarray, scaling: bool = False) -> dict[str, Any]:
    """What an artifact records: held-out ECE and bins as served, and the temperature (used
    only when ``scaling`` is asked for and it lowers the held-out ECE)."""
    plain = reliability(softmax(logits), labels)
    t = fit_temperature(logits, labels)
    scaled = reliability(softmax(logits, t), labels)
    applied = scaling and scaled["ece"] < plain["ece"]
    served = scaled if applied else plain
    return {
        "holdout_rows": len(labels),
        "ece": served["ece"],
        "bins": served["bins"],
        "ece_unscaled": plain["ece"],
        "ece_at_fitted_temperature": scaled["ece"],
        "fitted_temperature": round(t, 4),
        "temperature": round(t, 4) if applied else 1.0,
        "temperature_applied": applied,
    }
