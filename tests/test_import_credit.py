"""Users' own credit models (TorchScript or our state_dict) and joblib scalers import exactly."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.preprocessing import MinMaxScaler as SklearnMinMaxScaler
from torch import nn

from models.artifact import Artifact
from models.tabular.contract import CREDIT_TASK
from models.tabular.network import build_network, load_classifier
from scripts.imports.credit import import_model
from tests.support.commands import run_module

NAME = "credit_import_test"  # keeps the served credit_health:latest untouched


class UsersNet(nn.Module):
    """An architecture of the user's own, unknown to the bundle."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(5, 12)
        self.skip = nn.Linear(5, 2)
        self.fc2 = nn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x))) + self.skip(x)


@pytest.fixture
def users_scaler(tmp_path: Path) -> tuple[SklearnMinMaxScaler, Path]:
    rng = np.random.default_rng(0)
    training = rng.lognormal(size=(300, 5)) * [1, 2, 0.1, 0.1, 10]
    scaler = SklearnMinMaxScaler().fit(training)
    path = tmp_path / "Normalization.pkl"
    joblib.dump(scaler, path)
    return scaler, path


def inputs() -> np.ndarray:
    return np.random.default_rng(9).lognormal(size=(64, 5)).astype(np.float32)


def original_probabilities(model: nn.Module, scaler: SklearnMinMaxScaler) -> np.ndarray:
    scaled = torch.from_numpy(scaler.transform(inputs()).astype(np.float32))
    with torch.inference_mode():
        return torch.softmax(model(scaled), dim=1).numpy()


def served_probabilities(tag: str) -> np.ndarray:
    return load_classifier(Artifact.load(tag), CREDIT_TASK).predict_proba(inputs())


@pytest.mark.parametrize("kind", ["torchscript", "exported"])
def test_programs_and_joblib_scaler_give_the_original_probabilities(
    tmp_path: Path, users_scaler: tuple[SklearnMinMaxScaler, Path], kind: str
) -> None:
    scaler, scaler_path = users_scaler
    torch.manual_seed(1)
    model = UsersNet().eval()
    path = tmp_path / f"credit.{kind}"
    if kind == "torchscript":
        torch.jit.save(torch.jit.script(model), path)
    else:
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.export.export(model, (torch.zeros(2, 5),), dynamic_shapes=({0: batch},))
        torch.export.save(program, path)

    tag = import_model(path, scaler_path, name=NAME)

    artifact = Artifact.load(tag)
    assert artifact.weights == kind
    assert "hidden" not in artifact.metadata
    np.testing.assert_allclose(
        served_probabilities(tag), original_probabilities(model, scaler), atol=1e-6
    )


@pytest.mark.parametrize("wrap", [None, "state_dict", "state"])
def test_state_dict_of_our_network_imports_with_its_own_widths(
    tmp_path: Path, users_scaler: tuple[SklearnMinMaxScaler, Path], wrap: str | None
) -> None:
    scaler, scaler_path = users_scaler
    torch.manual_seed(2)
    model = build_network(CREDIT_TASK, hidden=(8, 4)).eval()
    path = tmp_path / "credit.pt"
    state = model.state_dict()
    torch.save(state if wrap is None else {wrap: state, "epoch": 3}, path)

    tag = import_model(path, scaler_path, name=NAME)

    assert Artifact.load(tag).metadata["hidden"] == [8, 4]
    np.testing.assert_allclose(
        served_probabilities(tag), original_probabilities(model, scaler), atol=1e-6
    )


def test_wrong_output_shape_is_refused(
    tmp_path: Path, users_scaler: tuple[SklearnMinMaxScaler, Path]
) -> None:
    path = tmp_path / "three_classes.ts"
    torch.jit.save(torch.jit.script(nn.Linear(5, 3)), path)
    with pytest.raises(ValueError, match=r"shape \[N, 2\]; got \(3, 3\)"):
        import_model(path, users_scaler[1], name=NAME)


def test_scaler_with_the_wrong_number_of_features_is_refused(tmp_path: Path) -> None:
    scaler_path = tmp_path / "four.pkl"
    joblib.dump(SklearnMinMaxScaler().fit(np.eye(4)), scaler_path)
    model_path = tmp_path / "credit.pt"
    torch.save(build_network(CREDIT_TASK).state_dict(), model_path)
    with pytest.raises(ValueError, match="the scaler has 4 features; credit_health needs 5"):
        import_model(model_path, scaler_path, name=NAME)


def test_foreign_state_dict_is_refused_with_the_expected_keys(
    tmp_path: Path, users_scaler: tuple[SklearnMinMaxScaler, Path]
) -> None:
    path = tmp_path / "foreign.pt"
    torch.save(UsersNet().state_dict(), path)
    with pytest.raises(ValueError, match=r"not a state_dict of our credit_health network"):
        import_model(path, users_scaler[1], name=NAME)


def test_command_line_reports_a_bad_file_and_exits_2(
    tmp_path: Path, users_scaler: tuple[SklearnMinMaxScaler, Path]
) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model")
    result = run_module(
        "scripts.imports.credit",
        "--model",
        str(junk),
        "--scaler",
        str(users_scaler[1]),
        "--name",
        NAME,
    )
    assert result.returncode == 2
    assert "is neither TorchScript, a torch.export program nor a state_dict" in result.stderr
