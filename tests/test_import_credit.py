"""Users' own credit models (TorchScript or our state_dict) and joblib scalers import exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.preprocessing import MinMaxScaler as SklearnMinMaxScaler
from torch import nn

from models.artifact import Artifact
from models.tabular.contract import CREDIT_TASK, IRIS_TASK
from models.tabular.network import build_network, load_classifier
from scripts.imports.credit import import_model
from scripts.train.datasets import iris
from tests.support.commands import run_module
from tests.support.monitors import quiet_monitor

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


def reference_file(tmp_path: Path, labelled: bool = True, rows: int = 300) -> Path:
    """A CSV of credit features like the users' (and labels when asked)."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        rng.lognormal(size=(rows, 5)) * [1, 2, 0.1, 0.1, 10], columns=list(CREDIT_TASK.features)
    )
    if labelled:
        frame["label"] = np.where(frame["debt_ratio"] > 1.0, "unhealthy", "healthy")
    path = tmp_path / "reference.csv"
    frame.to_csv(path, index=False)
    return path


def drift_status(tag: str, rows: list[dict[str, float]], tmp_path: Path) -> dict[str, Any]:
    """The monitor's report (the store's reference, as served) after ``rows`` of traffic."""
    monitor = quiet_monitor(tmp_path, window=500)
    outputs = [{"label": "healthy", "probability": 0.9}] * len(rows)
    monitor.record(NAME, tag, rows, outputs, ["healthy"] * len(rows))
    return monitor.model_report(NAME)


def test_a_reference_file_gives_drift_calibration_and_the_models_predicted_shares(
    tmp_path: Path, users_scaler: tuple[SklearnMinMaxScaler, Path]
) -> None:
    torch.manual_seed(3)
    model = build_network(CREDIT_TASK, hidden=(8,)).eval()
    path = tmp_path / "credit.pt"
    torch.save(model.state_dict(), path)
    reference = reference_file(tmp_path)

    tag = import_model(path, users_scaler[1], name=NAME, reference=reference)

    metadata = Artifact.load(tag).metadata
    frame = pd.read_csv(reference)
    predicted = served_probabilities_of(tag, frame).argmax(axis=1)
    assert metadata["reference"]["predictions"]["unhealthy"] == pytest.approx(predicted.mean())
    assert metadata["reference"]["features"]["debt_ratio"]["rows"] == len(frame)
    assert metadata["calibration"]["holdout_rows"] == len(frame)
    assert metadata["calibration"]["temperature"] == 1.0  # asked for no scaling
    accuracy = (predicted == (frame["label"] == "unhealthy")).mean()
    assert metadata["metrics"]["reference_accuracy"] == pytest.approx(accuracy, abs=1e-4)

    same = frame[list(CREDIT_TASK.features)].iloc[:150].to_dict("records")
    report = drift_status(tag, same, tmp_path)
    assert report["status"] == "ok" and len(report["features"]) == 5
    shifted = [{**row, "debt_ratio": row["debt_ratio"] * 100} for row in same]
    drifted = {f["feature"]: f["drifted"] for f in drift_status(tag, shifted, tmp_path)["features"]}
    assert drifted["debt_ratio"] and not drifted["current_ratio"]


def served_probabilities_of(tag: str, frame: pd.DataFrame) -> np.ndarray:
    x = frame[list(CREDIT_TASK.features)].to_numpy(np.float32)
    return load_classifier(Artifact.load(tag), CREDIT_TASK).predict_proba(x)


def test_without_a_reference_drift_reports_no_reference(
    tmp_path: Path, users_scaler: tuple[SklearnMinMaxScaler, Path]
) -> None:
    path = tmp_path / "credit.pt"
    torch.save(build_network(CREDIT_TASK).state_dict(), path)
    tag = import_model(path, users_scaler[1], name=NAME)
    assert "reference" not in Artifact.load(tag).metadata
    report = drift_status(tag, [dict.fromkeys(CREDIT_TASK.features, 1.0)] * 100, tmp_path)
    assert report["status"] == "no_reference" and report["features"] == []


def test_temperature_scaling_serves_the_fitted_temperature_when_it_helps(
    tmp_path: Path, users_scaler: tuple[SklearnMinMaxScaler, Path]
) -> None:
    model = build_network(CREDIT_TASK, hidden=(8,)).eval()
    with torch.no_grad():
        model[-1].weight.mul_(40)  # wildly over-confident logits
    path = tmp_path / "credit.pt"
    torch.save(model.state_dict(), path)
    reference = reference_file(tmp_path)

    tag = import_model(
        path, users_scaler[1], name=NAME, reference=reference, temperature_scaling=True
    )

    calibration = Artifact.load(tag).metadata["calibration"]
    assert calibration["temperature_applied"] is True
    assert calibration["temperature"] == calibration["fitted_temperature"] > 1
    assert calibration["ece"] < calibration["ece_unscaled"]
    assert load_classifier(Artifact.load(tag), CREDIT_TASK).temperature > 1


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns="current_ratio"), "has no column 'current_ratio'"),
        (
            lambda f: f.assign(debt_ratio=["n/a", *f["debt_ratio"][1:]]),
            "column 'debt_ratio' row 1 is 'n/a', not a finite number",
        ),
        (lambda f: f.assign(label=["sick"] * len(f)), "column 'label' row 1 is 'sick'"),
    ],
)
def test_a_bad_reference_file_exits_2_naming_the_column(
    tmp_path: Path, users_scaler: tuple[SklearnMinMaxScaler, Path], edit: Any, message: str
) -> None:
    model_path = tmp_path / "credit.pt"
    torch.save(build_network(CREDIT_TASK).state_dict(), model_path)
    reference = reference_file(tmp_path)
    edit(pd.read_csv(reference)).to_csv(reference, index=False)
    args = ["--model", str(model_path), "--scaler", str(users_scaler[1]), "--name", NAME]
    result = run_module("scripts.imports.credit", *args, "--reference", str(reference))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_temperature_scaling_without_labels_is_refused(
    tmp_path: Path, users_scaler: tuple[SklearnMinMaxScaler, Path]
) -> None:
    path = tmp_path / "credit.pt"
    torch.save(build_network(CREDIT_TASK).state_dict(), path)
    with pytest.raises(ValueError, match="has no 'label' column"):
        import_model(
            path,
            users_scaler[1],
            name=NAME,
            reference=reference_file(tmp_path, labelled=False),
            temperature_scaling=True,
        )


def test_an_iris_model_imports_with_task_iris(tmp_path: Path) -> None:
    flowers = iris()
    scaler_path = tmp_path / "iris.pkl"
    joblib.dump(SklearnMinMaxScaler().fit(flowers[list(IRIS_TASK.features)]), scaler_path)
    model_path = tmp_path / "iris.pt"
    torch.save(build_network(IRIS_TASK).state_dict(), model_path)
    reference = tmp_path / "flowers.csv"
    flowers.to_csv(reference, index=False)
    args = ["--model", str(model_path), "--scaler", str(scaler_path), "--task", "iris"]
    result = run_module(
        "scripts.imports.credit", *args, "--name", NAME + "_iris", "--reference", str(reference)
    )
    assert result.returncode == 0, result.stderr
    tag = result.stdout.split()[1].rstrip(";")
    metadata = Artifact.load(tag).metadata
    assert metadata["labels"] == list(IRIS_TASK.labels)
    assert set(metadata["reference"]["features"]) == set(IRIS_TASK.features)
    assert "MODEL_BUNDLE_IRIS_MODEL" in result.stdout
