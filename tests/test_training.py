"""Default training: deterministic, learns the planted rule, records its metrics and data."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from models.artifact import Artifact, data_hash
from models.tabular.contract import CREDIT_TASK
from scripts.train.datasets import credit_sample, iris
from scripts.train.tabular import TrainingConfig, train_tabular


def test_credit_sample_is_deterministic_by_seed() -> None:
    assert credit_sample(rows=500, seed=1).equals(credit_sample(rows=500, seed=1))
    assert not credit_sample(rows=500, seed=1).equals(credit_sample(rows=500, seed=2))


def test_credit_sample_has_both_classes_and_the_features() -> None:
    frame = credit_sample()
    assert tuple(frame.columns[:-1]) == CREDIT_TASK.features
    share = (frame["label"] == "unhealthy").mean()
    assert 0.2 < share < 0.8


def test_iris_is_the_classic_150_rows() -> None:
    frame = iris()
    assert len(frame) == 150
    assert frame["label"].value_counts().to_dict() == {
        "setosa": 50,
        "versicolor": 50,
        "virginica": 50,
    }


def test_same_seed_same_weights() -> None:
    task = dataclasses.replace(CREDIT_TASK, name="credit_determinism_test")
    frame = credit_sample(rows=400, seed=3)
    config = TrainingConfig(epochs=3, seed=3)
    first, second = (Artifact.load(train_tabular(task, frame, config, "test")) for _ in range(2))
    for key, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[key]), key
    assert (
        first.metadata["metrics"]["holdout_accuracy"]
        == (second.metadata["metrics"]["holdout_accuracy"])
    )


def test_default_models_learn_and_record_metrics_and_data_hash(
    default_models: dict[str, str],
) -> None:
    credit = Artifact.load(default_models["credit_health"])
    # 3% of the labels are flipped on purpose: about 0.97 is the ceiling, 0.5 is chance.
    assert credit.metadata["metrics"]["holdout_accuracy"] > 0.9
    assert credit.metadata["data_hash"] == data_hash(credit_sample())

    flowers = Artifact.load(default_models["iris"])
    assert flowers.metadata["metrics"]["holdout_accuracy"] > 0.9
    assert flowers.metadata["data_hash"] == data_hash(iris())
    assert np.isclose(
        sum(flowers.metadata["metrics"][k] for k in ("holdout_rows", "train_rows")), 150
    )


def test_default_book_model_beats_both_baselines(default_models: dict[str, str]) -> None:
    metrics = Artifact.load(default_models["book_rating"]).metadata["metrics"]
    assert metrics["valid_rmse"] < metrics["bias_rmse"] < metrics["global_mean_rmse"]
    assert metrics["best_epoch"] <= metrics["epochs"]
