"""Models registered in a real local MLflow registry import exactly, with their lineage.

The registry is MLflow's file store under ``tmp_path`` (mlflow-skinny has no SQLAlchemy for a
``sqlite:///`` store). MLflow 3 refuses a file store unless ``MLFLOW_ALLOW_FILE_STORE`` is set.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from models.artifact import Artifact
from models.tabular.contract import CREDIT_TASK, IRIS_TASK
from models.tabular.network import build_network, load_classifier
from scripts.imports.mlflow import connect, import_version, resolve, stored_tag
from scripts.sample_data.requests import HEALTHY
from scripts.train.datasets import credit_sample, iris
from scripts.train.tabular import TrainingConfig, train_tabular
from tests.support.server import ROOT

mlflow = pytest.importorskip("mlflow")

NAME = "credit_mlflow_test"  # the store name of imports: keeps credit_health:latest untouched
# Trained under its own name too: a 1-epoch credit_health:latest would be served (and cached as
# a default model) by the rest of the session.
TRAIN_TASK = dataclasses.replace(CREDIT_TASK, name="credit_mlflow_train_test")
REGISTERED = "credit-risk"
IDENTITY_SCALER = {
    "data_min": [0.0] * 5,
    "data_max": [1.0] * 5,
    "scale": [1.0] * 5,
    "min": [0.0] * 5,
}


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    uri = f"file://{tmp_path}/mlruns"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("tests")  # the active experiment is process-wide: make it this store's
    yield uri


def register(run_id: str, artifact_path: str, name: str = REGISTERED) -> str:
    """Register a run's artifact directory as a new version of ``name``; return the version."""
    client = mlflow.MlflowClient()
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    source = f"{client.get_run(run_id).info.artifact_uri}/{artifact_path}"
    return str(client.create_model_version(name, source, run_id=run_id).version)


@pytest.fixture
def trained(registry: str) -> dict[str, Any]:
    """A credit model trained with MLflow logging on (the training hook logs the run)."""
    tag = train_tabular(
        TRAIN_TASK, credit_sample(rows=300), TrainingConfig(epochs=1), source="mlflow test"
    )
    (run,) = mlflow.search_runs(
        experiment_names=[TRAIN_TASK.name],
        filter_string=f"tags.bentoml_tag = '{tag}'",
        output_format="list",
    )
    version = register(run.info.run_id, "state_dict")
    mlflow.MlflowClient().set_registered_model_alias(REGISTERED, "champion", version)
    return {"tag": tag, "run": run, "version": version}


def inputs() -> np.ndarray:
    return np.random.default_rng(5).lognormal(size=(64, 5)).astype(np.float32)


def probabilities(tag: str) -> np.ndarray:
    return load_classifier(Artifact.load(tag), CREDIT_TASK).predict_proba(inputs())


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.imports.mlflow", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_training_logs_params_metrics_weights_and_scaler(trained: dict[str, Any]) -> None:
    run = trained["run"]
    assert run.data.params["epochs"] == "1"
    assert run.data.params["data_hash"].startswith("sha256:")
    assert 0.0 <= run.data.metrics["holdout_accuracy"] <= 1.0
    files = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"state_dict", "scaler.json"} <= files


def test_training_logs_nothing_without_the_variable(
    registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    train_tabular(TRAIN_TASK, credit_sample(rows=300), TrainingConfig(epochs=1), source="none")
    assert mlflow.search_experiments(filter_string=f"name = '{TRAIN_TASK.name}'") == []


@pytest.mark.parametrize("uri", [f"models:/{REGISTERED}/1", f"models:/{REGISTERED}@champion"])
def test_version_and_alias_import_the_same_probabilities_with_lineage(
    trained: dict[str, Any], registry: str, uri: str
) -> None:
    result = cli(uri, "--model", "credit_health", "--name", NAME)
    assert result.returncode == 0, result.stderr
    tag = result.stdout.split()[1].rstrip(";")
    np.testing.assert_allclose(probabilities(tag), probabilities(trained["tag"]), atol=1e-5)
    metadata = Artifact.load(tag).metadata
    lineage = metadata["mlflow"]
    assert lineage["registered_name"] == REGISTERED
    assert lineage["version"] == trained["version"]
    assert lineage["aliases"] == ["champion"]
    assert lineage["run_id"] == trained["run"].info.run_id
    assert lineage["params"]["epochs"] == "1"
    assert lineage["metrics"]["holdout_accuracy"] == trained["run"].data.metrics["holdout_accuracy"]
    assert metadata["data_hash"] == trained["run"].data.params["data_hash"]
    assert metadata["scaler"] == Artifact.load(trained["tag"]).metadata["scaler"]


def test_torchscript_logged_with_log_model_imports(registry: str, tmp_path: Path) -> None:
    torch.manual_seed(3)
    network = build_network(CREDIT_TASK).eval()
    scaler = {"data_min": [0.0] * 5, "data_max": [2.0] * 5, "scale": [0.5] * 5, "min": [0.0] * 5}
    with mlflow.start_run() as run:
        mlflow.pytorch.log_model(
            torch.jit.script(network), name="scripted", serialization_format="pickle"
        )
        mlflow.log_dict(scaler, "scaler.json")
    (logged,) = mlflow.search_logged_models(output_format="list")
    version = mlflow.register_model(logged.model_uri, "credit-scripted").version
    client = connect(registry)
    tag = import_version(
        client, resolve(client, f"models:/credit-scripted/{version}"), CREDIT_TASK, name=NAME
    )
    artifact = Artifact.load(tag)
    assert artifact.weights == "torchscript"
    assert artifact.metadata["mlflow"]["run_id"] == run.info.run_id
    with torch.inference_mode():
        expected = torch.softmax(network(torch.from_numpy(inputs() * 0.5)), dim=1).numpy()
    np.testing.assert_allclose(probabilities(tag), expected, atol=1e-5)


def test_torch_export_program_logged_with_log_model_imports(registry: str) -> None:
    torch.manual_seed(4)
    network = build_network(CREDIT_TASK).eval()
    with mlflow.start_run():
        mlflow.pytorch.log_model(
            network,
            name="exported",
            serialization_format="pt2",
            input_example=np.zeros((2, 5), np.float32),
        )
        mlflow.log_dict(IDENTITY_SCALER, "scaler.json")
    (logged,) = mlflow.search_logged_models(output_format="list")
    version = mlflow.register_model(logged.model_uri, "credit-exported").version
    result = cli(f"models:/credit-exported/{version}", "--model", "credit_health", "--name", NAME)
    assert result.returncode == 0, result.stderr
    tag = result.stdout.split()[1].rstrip(";")
    assert Artifact.load(tag).weights == "exported"
    with torch.inference_mode():
        expected = torch.softmax(network(torch.from_numpy(inputs())), dim=1).numpy()
    np.testing.assert_allclose(probabilities(tag), expected, atol=1e-5)


def test_pickled_whole_module_is_refused_with_exit_2(registry: str) -> None:
    with mlflow.start_run():
        mlflow.pytorch.log_model(
            build_network(CREDIT_TASK), name="pickled", serialization_format="pickle"
        )
        mlflow.log_dict(
            {"data_min": [0.0] * 5, "data_max": [1.0] * 5, "scale": [1.0] * 5, "min": [0.0] * 5},
            "scaler.json",
        )
    (logged,) = mlflow.search_logged_models(output_format="list")
    mlflow.register_model(logged.model_uri, "credit-pickled")
    result = cli("models:/credit-pickled/1", "--model", "credit_health", "--name", NAME)
    assert result.returncode == 2
    assert "pickled whole module" in result.stderr


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("runs:/abc/model", "is not models:/NAME/VERSION or models:/NAME@ALIAS"),
        (f"models:/{REGISTERED}/7", "is not in the registry"),
        (f"models:/{REGISTERED}@nobody", "is not in the registry"),
        ("models:/no-such-model/1", "is not in the registry"),
    ],
)
def test_bad_uris_are_clear_errors(trained: dict[str, Any], uri: str, message: str) -> None:
    result = cli(uri, "--model", "credit_health", "--name", NAME)
    assert result.returncode == 2
    assert message in result.stderr


def test_another_models_artifact_is_refused(trained: dict[str, Any]) -> None:
    result = cli(f"models:/{REGISTERED}/1", "--model", "iris", "--name", "iris_mlflow_test")
    assert result.returncode == 2
    assert "the scaler has 5 features; iris needs 4" in result.stderr
    with mlflow.start_run() as run:
        mlflow.pytorch.log_state_dict(build_network(IRIS_TASK).state_dict(), "state_dict")
        mlflow.log_dict(
            {"data_min": [0.0] * 5, "data_max": [1.0] * 5, "scale": [1.0] * 5, "min": [0.0] * 5},
            "scaler.json",
        )
    version = register(run.info.run_id, "state_dict")
    result = cli(f"models:/{REGISTERED}/{version}", "--model", "credit_health", "--name", NAME)
    assert result.returncode == 2
    assert "not a state_dict of our credit_health network" in result.stderr


def test_without_a_registry_the_error_says_where_to_point(
    registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.imports.mlflow",
            f"models:/{REGISTERED}/1",
            "--model",
            "credit_health",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 2
    assert "--tracking-uri or MLFLOW_TRACKING_URI" in result.stderr


def test_an_imported_version_is_found_again_by_its_lineage(trained: dict[str, Any]) -> None:
    client = connect(None)
    registered = resolve(client, f"models:/{REGISTERED}@champion")
    assert stored_tag(NAME + "_again", registered) is None
    tag = import_version(client, registered, CREDIT_TASK, name=NAME + "_again")
    assert stored_tag(NAME + "_again", registered) == tag


def test_sync_loads_the_alias_as_candidate_then_promotes_it_without_a_second_import(
    trained: dict[str, Any], registry: str, own_server: Any
) -> None:
    key = "admin-key-mlflow-3c1d"
    server = own_server({"MODEL_BUNDLE_ADMIN_KEYS": key})
    name = "credit_mlflow_sync_test"
    sync = ["sync", f"models:/{REGISTERED}@champion", "--model", "credit_health", "--name", name]
    target = ["--url", server.url, "--admin-key", key]

    wrong_key = cli(*sync, "--as", "primary", "--url", server.url, "--admin-key", "nope")
    assert wrong_key.returncode == 2
    assert "answered 401" in wrong_key.stderr
    assert not Path(os.environ["BENTOML_HOME"], "models", name).exists()  # nothing imported

    first = cli(*sync, "--as", "candidate", *target)
    assert first.returncode == 0, first.stderr
    assert "\nimported " in "\n" + first.stdout.splitlines()[-1]
    tag = first.stdout.splitlines()[-1].split()[1].rstrip(";")
    state = httpx.get(f"{server.url}/admin/models", headers={"X-API-Key": key}).json()
    (credit,) = [entry for entry in state["models"] if entry["model"] == "credit_health"]
    assert credit["candidate"] == tag
    assert Path(os.environ["BENTOML_HOME"], "models", name).is_dir()

    second = cli(*sync, "--as", "primary", *target)
    assert second.returncode == 0, second.stderr
    assert f"already in the store: {tag}" in second.stdout
    state = httpx.get(f"{server.url}/admin/models", headers={"X-API-Key": key}).json()
    (credit,) = [entry for entry in state["models"] if entry["model"] == "credit_health"]
    assert credit["primary"] == tag
    answer = httpx.post(f"{server.url}/predict_credit", json=HEALTHY, timeout=30)
    assert answer.json()["model"] == tag


def test_iris_trained_logged_and_imported_gives_the_same_probabilities(registry: str) -> None:
    task = dataclasses.replace(IRIS_TASK, name="iris_mlflow_train_test")
    tag = train_tabular(task, iris(), TrainingConfig(epochs=5), source="mlflow test")
    (run,) = mlflow.search_runs(experiment_names=[task.name], output_format="list")
    register(run.info.run_id, "state_dict", name="flowers")
    result = cli("models:/flowers/1", "--model", "iris", "--name", "iris_mlflow_test")
    assert result.returncode == 0, result.stderr
    imported = result.stdout.split()[1].rstrip(";")
    flowers = np.random.default_rng(2).uniform(0.1, 8.0, size=(32, 4)).astype(np.float32)
    original = load_classifier(Artifact.load(tag), IRIS_TASK).predict_proba(flowers)
    copy = load_classifier(Artifact.load(imported), IRIS_TASK).predict_proba(flowers)
    np.testing.assert_allclose(copy, original, atol=1e-5)
    assert Artifact.load(imported).metadata["mlflow"]["registered_name"] == "flowers"
