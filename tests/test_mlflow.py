"""Models registered in a real local MLflow registry import exactly, with their lineage.

The registry is MLflow's file store under ``tmp_path`` (mlflow-skinny has no SQLAlchemy for a
``sqlite:///`` store). MLflow 3 refuses a file store unless ``MLFLOW_ALLOW_FILE_STORE`` is set.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from models.artifact import Artifact
from models.books.model import BookRatingModel
from models.books.network import FieldAwareFactorizationMachine
from models.mask.contract import Preprocessing
from models.mask.network import MaskClassifier
from models.tabular.contract import CREDIT_TASK, IRIS_TASK
from models.tabular.network import build_network, load_classifier
from scripts.imports.mlflow import connect, import_tabular, resolve, stored_tag
from scripts.sample_data import books as book_sample
from scripts.sample_data.requests import HEALTHY
from scripts.train.book_data import load_boostcamp
from scripts.train.books import FFMConfig, train_on
from scripts.train.datasets import credit_sample, iris
from scripts.train.mask import train as train_mask
from scripts.train.tabular import TrainingConfig, train_tabular
from tests.support.commands import run_module
from tests.support.monitors import quiet_monitor

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


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_module("scripts.imports.mlflow", *args)


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


def test_a_reference_file_gives_the_import_its_drift_reference_and_calibration(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    reference = tmp_path / "reference.csv"
    frame = credit_sample(rows=200)
    frame.to_csv(reference, index=False)
    uri = f"models:/{REGISTERED}@champion"
    result = cli(uri, "--model", "credit_health", "--name", NAME, "--reference", str(reference))
    assert result.returncode == 0, result.stderr
    tag = result.stdout.split()[1].rstrip(";")
    metadata = Artifact.load(tag).metadata
    assert metadata["reference"]["features"]["debt_ratio"]["rows"] == 200
    assert metadata["calibration"]["holdout_rows"] == 200
    monitor = quiet_monitor(tmp_path)
    rows = frame[list(CREDIT_TASK.features)].to_dict("records")
    monitor.record(NAME, tag, rows, [{"label": "healthy"}] * 200, ["healthy"] * 200)
    report = monitor.model_report(NAME)
    assert report["status"] == "ok" and len(report["features"]) == 5

    frame.drop(columns="interest_coverage").to_csv(reference, index=False)
    refused = cli(uri, "--model", "credit_health", "--name", NAME, "--reference", str(reference))
    assert refused.returncode == 2
    assert "has no column 'interest_coverage'" in refused.stderr


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
    tag = import_tabular(
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
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    result = cli(f"models:/{REGISTERED}/1", "--model", "credit_health")
    assert result.returncode == 2
    assert "--tracking-uri or MLFLOW_TRACKING_URI" in result.stderr


def test_an_imported_version_is_found_again_by_its_lineage(trained: dict[str, Any]) -> None:
    client = connect(None)
    registered = resolve(client, f"models:/{REGISTERED}@champion")
    assert stored_tag(NAME + "_again", registered) is None
    tag = import_tabular(client, registered, CREDIT_TASK, name=NAME + "_again")
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

    def credit_state() -> dict[str, Any]:
        state = httpx.get(f"{server.url}/admin/models", headers={"X-API-Key": key}).json()
        (credit,) = [entry for entry in state["models"] if entry["model"] == "credit_health"]
        return credit

    first = cli(*sync, "--as", "candidate", *target)
    assert first.returncode == 0, first.stderr
    assert "\nimported " in "\n" + first.stdout.splitlines()[-1]
    tag = first.stdout.splitlines()[-1].split()[1].rstrip(";")
    assert credit_state()["candidate"] == tag
    assert Path(os.environ["BENTOML_HOME"], "models", name).is_dir()

    # The alias moves on to a new registered version while the old one is the candidate:
    # the sync drops that candidate and loads the new one.
    newer = register(trained["run"].info.run_id, "state_dict")
    mlflow.MlflowClient().set_registered_model_alias(REGISTERED, "champion", newer)
    moved = cli(*sync, "--as", "candidate", *target)
    assert moved.returncode == 0, moved.stderr
    newer_tag = moved.stdout.splitlines()[-1].split()[1].rstrip(";")
    assert newer_tag != tag
    assert credit_state()["candidate"] == newer_tag

    second = cli(*sync, "--as", "primary", *target)
    assert second.returncode == 0, second.stderr
    assert f"already in the store: {newer_tag}" in second.stdout
    assert credit_state()["primary"] == newer_tag
    answer = httpx.post(f"{server.url}/predict_credit", json=HEALTHY, timeout=30)
    assert answer.json()["model"] == newer_tag


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


def test_books_trained_logged_and_imported_rate_the_same_from_the_runs_tables(
    registry: str,
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        data = load_boostcamp(book_sample.write(Path(directory), "small", 0))
    config = FFMConfig(max_epochs=2)
    tag = train_on(data, "boostcamp", config, source="mlflow test", name="books_mlflow_train_test")
    (run,) = mlflow.search_runs(experiment_names=["books_mlflow_train_test"], output_format="list")
    files = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "tables")}
    assert files, "the run logged no book tables"
    register(run.info.run_id, "state_dict", name="books")
    result = cli("models:/books/1", "--model", "book_rating", "--name", "books_mlflow_test")
    assert result.returncode == 0, result.stderr
    imported = result.stdout.split()[1].rstrip(";")
    original = BookRatingModel.load(Artifact.load(tag))
    copy = BookRatingModel.load(Artifact.load(imported))
    users = original.featurizer.user_ids[:20].tolist()
    isbns = list(original.featurizer.isbns[:20])
    pairs = [(int(u), str(i)) for u, i in zip(users, isbns, strict=True)] + [(-1, "unknown")]
    assert copy.rate(pairs) == original.rate(pairs)
    metadata = Artifact.load(imported).metadata
    assert metadata["mlflow"]["registered_name"] == "books"
    assert metadata["data_hash"] == Artifact.load(tag).metadata["data_hash"]


def test_a_book_version_without_tables_says_to_pass_the_data_dir(registry: str) -> None:
    network = FieldAwareFactorizationMachine([3, 4], embed_dim=2)
    with mlflow.start_run() as run:
        mlflow.pytorch.log_state_dict(network.state_dict(), "state_dict")
    register(run.info.run_id, "state_dict", name="books-bare")
    result = cli("models:/books-bare/1", "--model", "book_rating", "--name", "books_bare")
    assert result.returncode == 2
    assert "pass --data-dir" in result.stderr


def test_mask_trained_logged_and_imported_classifies_the_same(registry: str) -> None:
    tag = train_mask(per_class=2, epochs=1, name="mask_mlflow_train_test")
    (run,) = mlflow.search_runs(experiment_names=["mask_mlflow_train_test"], output_format="list")
    register(run.info.run_id, "state_dict", name="faces")
    result = cli("models:/faces/1", "--model", "mask_classifier", "--name", "mask_mlflow_test")
    assert result.returncode == 0, result.stderr
    imported = result.stdout.split()[1].rstrip(";")
    original, copy = Artifact.load(tag), Artifact.load(imported)
    assert copy.metadata["preprocessing"] == original.metadata["preprocessing"]
    prep = Preprocessing.from_metadata(original.metadata["preprocessing"])
    images = np.random.default_rng(4).integers(0, 256, (6, prep.height, prep.width, 3), np.uint8)
    np.testing.assert_allclose(
        MaskClassifier(copy).classify(images), MaskClassifier(original).classify(images), atol=1e-6
    )
    assert copy.metadata["mlflow"]["run_id"] == run.info.run_id
