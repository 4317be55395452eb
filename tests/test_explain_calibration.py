"""Calibration: ECE and reliability bins are right on known data, the temperature fit
recovers a planted one, and training records both (scaling off by default)."""

from __future__ import annotations

import numpy as np
import pytest

from models.artifact import Artifact
from models.calibration import calibration, fit_temperature, reliability, softmax


def test_ece_and_bins_on_known_data() -> None:
    # Four predictions at confidence 0.9 of which two are right; two at 0.6, both right.
    probabilities = np.array([[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 2)
    labels = np.array([0, 0, 1, 1, 1, 1])
    result = reliability(probabilities, labels)
    high = next(b for b in result["bins"] if b["lower"] == pytest.approx(0.8))
    assert high == {
        "lower": pytest.approx(0.8),
        "upper": pytest.approx(0.9),
        "count": 4,
        "confidence": 0.9,
        "accuracy": 0.5,
    }
    assert sum(b["count"] for b in result["bins"]) == 6
    assert result["ece"] == pytest.approx(4 / 6 * 0.4 + 2 / 6 * 0.4, abs=1e-4)


def test_temperature_fit_recovers_a_planted_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 3))
    labels = np.array([rng.choice(3, p=p) for p in softmax(logits, 2.0)])
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.15)
    off = calibration(logits, labels)
    assert off["temperature"] == 1.0 and off["temperature_applied"] is False
    on = calibration(logits, labels, scaling=True)
    assert on["temperature_applied"] is True
    assert on["ece"] < off["ece"] == off["ece_unscaled"]


@pytest.mark.parametrize("name", ["credit_health", "iris", "mask_classifier"])
def test_training_records_held_out_calibration(default_models: dict[str, str], name: str) -> None:
    artifact = Artifact.load(default_models[name])
    recorded = artifact.metadata["calibration"]
    assert recorded["holdout_rows"] == sum(b["count"] for b in recorded["bins"]) > 0
    assert 0 <= recorded["ece"] <= 1
    assert recorded["temperature"] == 1.0 and recorded["temperature_applied"] is False
    assert recorded["fitted_temperature"] > 0
    assert artifact.summary()["calibration"] == recorded
