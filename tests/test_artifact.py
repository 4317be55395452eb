"""The one artifact format: what is saved is what is loaded, and nothing else is accepted."""

from __future__ import annotations

import dataclasses

import bentoml
import numpy as np
import pytest
import torch

from models.artifact import STATE_DICT_FILE, Artifact, save_artifact
from models.tabular.contract import CREDIT_TASK, IRIS_TASK
from models.tabular.network import MinMaxScaler, build_network, load_classifier, tabular_metadata

TASK = dataclasses.replace(CREDIT_TASK, name="artifact_test")


def saved_model(seed: int = 0) -> tuple[str, torch.nn.Module, MinMaxScaler]:
    torch.manual_seed(seed)
    network = build_network(TASK)
    rng = np.random.default_rng(seed)
    scaler = MinMaxScaler.fit(rng.normal(size=(50, len(TASK.features))))
    metadata = tabular_metadata(
        TASK,
        scaler,
        hidden=TASK.hidden,
        metrics={"holdout_accuracy": 0.5},
        data_hash="sha256:abc",
        source="test",
    )
    return save_artifact(TASK.name, metadata, state_dict=network.state_dict()), network, scaler


def test_round_trip_gives_the_same_predictions_and_metadata() -> None:
    tag, network, scaler = saved_model()
    artifact = Artifact.load(tag)
    classifier = load_classifier(artifact, TASK)

    x = np.random.default_rng(1).normal(size=(8, len(TASK.features))).astype(np.float32)
    expected = torch.softmax(network(torch.from_numpy(scaler.transform(x)).float()), dim=1)
    np.testing.assert_allclose(classifier.predict_proba(x), expected.detach().numpy(), atol=1e-6)

    assert artifact.weights == "state_dict"
    assert artifact.metadata["format_version"] == 1
    assert tuple(artifact.metadata["features"]) == TASK.features
    assert MinMaxScaler.from_metadata(artifact.metadata["scaler"]) == scaler
    assert artifact.summary()["metrics"] == {"holdout_accuracy": 0.5}
    assert artifact.summary()["tag"] == tag


def test_weights_are_a_plain_state_dict_loadable_without_pickled_objects() -> None:
    tag, network, _ = saved_model()
    state = torch.load(Artifact.load(tag).path / STATE_DICT_FILE, weights_only=True)
    assert set(state) == set(network.state_dict())
    assert all(isinstance(tensor, torch.Tensor) for tensor in state.values())


def test_another_format_version_is_refused() -> None:
    with bentoml.models.create(TASK.name, metadata={"format_version": 99}) as ref:
        pass
    with pytest.raises(ValueError, match="artifact format 99"):
        Artifact.load(str(ref.tag))


def test_a_model_of_another_task_is_refused() -> None:
    tag, _, _ = saved_model()
    with pytest.raises(ValueError, match="is not a model for iris"):
        load_classifier(Artifact.load(tag), IRIS_TASK)


def test_exactly_one_kind_of_weights() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        save_artifact(TASK.name, {})
