"""Integrated gradients of the tabular models: completeness to 1e-4 for our networks and for
TorchScript and torch.export programs of them; the baseline is the training range's middle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.artifact import Artifact
from models.tabular.attribution import (
    NotDifferentiableError,
    explain_row,
    integrated_gradients,
    range_midpoint,
)
from models.tabular.contract import TASKS
from models.tabular.network import TabularClassifier, load_classifier

ROWS = {
    "credit_health": [[0.5, 1.2, 0.1, 0.05, 3.0], [3.0, 0.2, -0.5, -0.3, -2.0]],
    "iris": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 2.8, 4.3, 1.3]],
}


def classifier(default_models: dict[str, str], name: str) -> TabularClassifier:
    return load_classifier(Artifact.load(default_models[name]), TASKS[name])


def program_of(model: TabularClassifier, kind: str, features: int) -> TabularClassifier:
    """The same classifier with its network as a TorchScript or torch.export program, as an
    import stores it."""
    if kind == "torchscript":
        network = torch.jit.script(model.network)
    else:
        batch = torch.export.Dim("batch", min=1, max=4096)
        example = (torch.zeros(2, features),)
        program = torch.export.export(model.network, example, dynamic_shapes=({0: batch},))
        network = program.module()
    return TabularClassifier(model.scaling, network)


@pytest.mark.parametrize("name", sorted(ROWS))
@pytest.mark.parametrize("kind", ["ours", "torchscript", "exported"])
def test_attributions_sum_to_the_logit_difference(
    default_models: dict[str, str], name: str, kind: str
) -> None:
    model = classifier(default_models, name)
    features = len(TASKS[name].features)
    if kind != "ours":
        model = program_of(model, kind, features)
    for row in ROWS[name]:
        result = integrated_gradients(model, np.array(row, np.float32))
        with torch.no_grad():
            logits = model(torch.tensor([row, range_midpoint(model).tolist()]))
        c = int(logits[0].argmax())
        assert result.class_id == c
        expected = float(logits[0, c] - logits[1, c])
        assert abs(result.attributions.sum() - expected) < 1e-4
        assert result.completeness_gap < 1e-4
        assert np.abs(result.attributions).max() > 1e-3  # something was attributed


def test_baseline_is_the_middle_of_the_training_range(default_models: dict[str, str]) -> None:
    artifact = Artifact.load(default_models["iris"])
    scaler = artifact.metadata["scaler"]
    model = load_classifier(artifact, TASKS["iris"])
    middle = (np.array(scaler["data_min"]) + np.array(scaler["data_max"])) / 2
    np.testing.assert_allclose(range_midpoint(model), middle, rtol=1e-5)


def test_a_feature_at_its_baseline_gets_nothing(default_models: dict[str, str]) -> None:
    model = classifier(default_models, "iris")
    row = range_midpoint(model).astype(np.float32)
    row[2] = 1.4  # only petal length moves
    result = integrated_gradients(model, row)
    assert np.abs(result.attributions[[0, 1, 3]]).max() < 1e-6
    assert abs(result.attributions[2]) > 1e-3


class Detached(torch.nn.Module):
    """A program whose output does not depend on its input through autograd."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[1.0, 0.0, 0.0]]).expand(x.shape[0], 3) + x.detach()[:, :3] * 0


def test_a_program_without_input_gradient_says_so(default_models: dict[str, str]) -> None:
    model = TabularClassifier(classifier(default_models, "iris").scaling, Detached())
    with pytest.raises(NotDifferentiableError):
        integrated_gradients(model, np.array(ROWS["iris"][0], np.float32))
    answer = explain_row(model, TASKS["iris"].features, np.array(ROWS["iris"][0], np.float32))
    assert answer["available"] is False and "gradient" in answer["reason"]


def test_a_program_of_a_fixed_batch_size_says_so(default_models: dict[str, str]) -> None:
    model = classifier(default_models, "iris")
    fixed = torch.export.export(model.network, (torch.zeros(2, 4),)).module()
    answer = explain_row(
        TabularClassifier(model.scaling, fixed),
        TASKS["iris"].features,
        np.array(ROWS["iris"][0], np.float32),
    )
    assert answer == {"available": False, "reason": answer["reason"]}
    assert "input gradient" in answer["reason"]
