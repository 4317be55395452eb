"""Calibration: ECE and reliability bins are right on known data, the temperature fit
recovers a planted one, and training records both (scaling off by default). Trained with
temperature scaling, a classifier serves softmax(logits / T), plain and explained alike;
trained without, its probabilities are the network's own softmax."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from models.artifact import Artifact
from models.calibration import calibration, fit_temperature, reliability, softmax
from models.mask.network import MaskClassifier, normalise
from models.tabular.contract import IRIS_TASK
from models.tabular.network import load_classifier
from runners.explain import ExplainsMasks, ExplainsTabular
from scripts.train import mask as mask_training
from scripts.train.datasets import iris
from scripts.train.tabular import TrainingConfig, train_tabular


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


# Small trainings under names of their own (the session's defaults stay the latest versions):
# 20 iris epochs leave the network under-confident, 2 mask epochs over-confident, so the
# fitted temperature lowers the held-out ECE and is applied (T != 1) in both.
IRIS_SCALING_TASK = dataclasses.replace(IRIS_TASK, name="iris_temperature_test")
FLOWERS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 2.8, 4.3, 1.3]], np.float32)


def train_iris(scaling: bool) -> Artifact:
    config = TrainingConfig(
        epochs=20, batch_size=16, holdout_fraction=0.3, temperature_scaling=scaling
    )
    return Artifact.load(train_tabular(IRIS_SCALING_TASK, iris(), config, "test"))


def train_mask(scaling: bool) -> Artifact:
    tag = mask_training.train(
        per_class=4, epochs=3, name="mask_temperature_test", temperature_scaling=scaling
    )
    return Artifact.load(tag)


def faces(model: MaskClassifier) -> np.ndarray:
    shape = (3, model.prep.height, model.prep.width, 3)
    return np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)


def runner_of(model: Any) -> SimpleNamespace:
    """What the explain APIs need of their runner: the version by tag, and its entry."""
    return SimpleNamespace(version=lambda tag: model, entry=SimpleNamespace(name="iris"))


@pytest.fixture(scope="module")
def trained_iris(default_models: dict[str, str]) -> dict[bool, Artifact]:
    return {scaling: train_iris(scaling) for scaling in (True, False)}


@pytest.fixture(scope="module")
def trained_mask(default_models: dict[str, str]) -> dict[bool, Artifact]:
    return {scaling: train_mask(scaling) for scaling in (True, False)}


def test_tabular_trained_with_scaling_serves_the_tempered_softmax(
    trained_iris: dict[bool, Artifact],
) -> None:
    artifact = trained_iris[True]
    recorded = artifact.summary()["calibration"]  # what `models` reports
    assert recorded["temperature_applied"] is True
    temperature = recorded["temperature"]
    assert temperature != 1.0 and temperature == recorded["fitted_temperature"]
    assert recorded["ece"] == recorded["ece_at_fitted_temperature"] < recorded["ece_unscaled"]
    model = load_classifier(artifact, IRIS_TASK)
    with torch.inference_mode():
        logits = model(torch.from_numpy(FLOWERS)).numpy()
    served = model.predict_proba(FLOWERS)
    np.testing.assert_allclose(served, softmax(logits, temperature), atol=1e-6)
    assert not np.allclose(served, softmax(logits), atol=1e-3)  # the temperature matters
    for row, probabilities in zip(FLOWERS, served, strict=True):
        explained = ExplainsTabular.explain.func(runner_of(model), "v", row.tolist())
        np.testing.assert_allclose(explained["probabilities"], probabilities, atol=1e-6)


def test_tabular_trained_without_scaling_serves_the_plain_softmax(
    trained_iris: dict[bool, Artifact],
) -> None:
    plain, scaled = trained_iris[False], trained_iris[True]
    recorded = plain.summary()["calibration"]
    assert recorded["temperature"] == 1.0 and recorded["temperature_applied"] is False
    for key, tensor in plain.state_dict().items():  # the flag changes serving, not training
        assert torch.equal(tensor, scaled.state_dict()[key]), key
    model = load_classifier(plain, IRIS_TASK)
    with torch.inference_mode():
        logits = model(torch.from_numpy(FLOWERS)).numpy()
    np.testing.assert_allclose(model.predict_proba(FLOWERS), softmax(logits), atol=1e-6)


def test_mask_trained_with_scaling_serves_the_tempered_softmax(
    trained_mask: dict[bool, Artifact],
) -> None:
    artifact = trained_mask[True]
    recorded = artifact.summary()["calibration"]
    assert recorded["temperature_applied"] is True
    temperature = recorded["temperature"]
    assert temperature != 1.0
    model = MaskClassifier(artifact)
    images = faces(model)
    with torch.inference_mode():
        logits = model.network(normalise(images, model.prep)).numpy()
    served = model.classify(images)
    np.testing.assert_allclose(served, softmax(logits, temperature), atol=1e-6)
    assert not np.allclose(served, softmax(logits), atol=1e-3)
    for image, probabilities in zip(images, served, strict=True):
        explained = ExplainsMasks.explain.func(runner_of(model), "v", image)
        np.testing.assert_allclose(explained["probabilities"], probabilities, atol=1e-6)
        assert explained["explanation"]["available"] is True


def test_mask_trained_without_scaling_serves_the_plain_softmax(
    trained_mask: dict[bool, Artifact],
) -> None:
    recorded = trained_mask[False].summary()["calibration"]
    assert recorded["temperature"] == 1.0 and recorded["temperature_applied"] is False
    model = MaskClassifier(trained_mask[False])
    images = faces(model)
    with torch.inference_mode():
        logits = model.network(normalise(images, model.prep)).numpy()
    np.testing.assert_allclose(model.classify(images), softmax(logits), atol=1e-6)
