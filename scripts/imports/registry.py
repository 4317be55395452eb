"""Reading an MLflow model registry: which version a ``models:/`` URI names, its run's
lineage, and its files.

MLflow is imported lazily: it is an optional extra (``requirements-mlflow.txt``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.artifact import stored_versions

URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


class RefusedError(ValueError):
    """An input this command will not import (a clear message, exit 2)."""


@dataclass(frozen=True)
class Registered:
    """One registered model version and the run that produced it."""

    name: str
    version: str
    aliases: list[str]
    run_id: str | None
    source: str
    params: dict[str, str]
    metrics: dict[str, float]
    tracking_uri: str

    def describe(self) -> str:
        """The artifact's ``source``: where it came from."""
        return f"mlflow models:/{self.name}/{self.version} (run {self.run_id})"

    def lineage(self) -> dict[str, Any]:
        lineage = {
            "registered_name": self.name,
            "version": self.version,
            "aliases": self.aliases,
            "run_id": self.run_id,
            "source": self.source,
            "params": self.params,
            "metrics": self.metrics,
            "tracking_uri": self.tracking_uri,
        }
        return {key: value for key, value in lineage.items() if value is not None}


def connect(tracking_uri: str | None) -> Any:
    """An ``MlflowClient`` on the given registry (MLflow imported only here: it is optional)."""
    try:
        import mlflow
    except ImportError:
        raise RefusedError(
            "mlflow is not installed: pip install -r requirements-mlflow.txt"
        ) from None
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise RefusedError("say where the registry is: --tracking-uri or MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def resolve(client: Any, model_uri: str) -> Registered:
    """The registered version ``model_uri`` names, with its run's params and metrics."""
    from mlflow.exceptions import MlflowException

    match = URI.match(model_uri)
    if match is None:
        raise RefusedError(f"{model_uri!r} is not models:/NAME/VERSION or models:/NAME@ALIAS")
    name = match["name"]
    try:
        if match["alias"]:
            found = client.get_model_version_by_alias(name, match["alias"])
        else:
            found = client.get_model_version(name, match["version"])
    except MlflowException as error:
        raise RefusedError(f"{model_uri} is not in the registry: {error.message}") from None
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    if found.run_id:
        try:
            run = client.get_run(found.run_id)
            params, metrics = dict(run.data.params), dict(run.data.metrics)
        except MlflowException:
            pass  # a version registered from files outside any run keeps no run lineage
    return Registered(
        name=name,
        version=str(found.version),
        aliases=sorted(found.aliases or []),
        run_id=found.run_id or None,
        source=found.source,
        params=params,
        metrics=metrics,
        tracking_uri=client.tracking_uri,
    )


def weights_file(root: Path) -> Path:
    """The weights among a registered version's files; refuse a pickled whole module."""
    mlmodel = root / "MLmodel"
    if mlmodel.is_file():
        import yaml  # a dependency of mlflow

        flavours = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {})
        if "pytorch" not in flavours:
            raise RefusedError(f"the model has no pytorch flavour (flavours: {sorted(flavours)})")
        data = root / flavours["pytorch"].get("model_data", "data")
        if (data / "model.pt2").is_file():
            return data / "model.pt2"
        program = data / "model.pth"
        if program.is_file():
            try:
                torch.jit.load(program, map_location="cpu")
            except RuntimeError:
                raise RefusedError(
                    "the registered model is a pickled whole module (mlflow.pytorch.log_model "
                    "of an nn.Module): loading it would run arbitrary code. Register its "
                    "state_dict (mlflow.pytorch.log_state_dict), a TorchScript program "
                    "(torch.jit.script) or a torch.export program instead"
                ) from None
            return program
        raise RefusedError(f"no model.pth or model.pt2 under {data.relative_to(root)}")
    candidates = sorted(p for p in root.rglob("*") if p.suffix in (".pth", ".pt", ".pt2", ".ts"))
    if len(candidates) != 1:
        found = [str(p.relative_to(root)) for p in candidates]
        raise RefusedError(f"expected one weights file in the registered files, found {found}")
    return candidates[0]


def download_version(registered: Registered, directory: str) -> Path:
    """The registered version's files, downloaded into ``directory``."""
    import mlflow

    uri = f"models:/{registered.name}/{registered.version}"
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=directory))


def run_files(client: Any, registered: Registered, path: str, directory: str) -> Path | None:
    """A file or folder the version's run logged, downloaded into ``directory``; None when the
    version has no run or the run logged no such path."""
    if registered.run_id is None:
        return None
    try:
        return Path(client.download_artifacts(registered.run_id, path, directory))
    except Exception:  # MLflow raises several kinds for a missing artifact
        return None


def run_document(client: Any, registered: Registered, file: str) -> dict[str, Any] | None:
    """A JSON document the version's run logged (``mlflow.log_dict``), or None."""
    with tempfile.TemporaryDirectory() as directory:
        path = run_files(client, registered, file, directory)
        if path is None:
            return None
        try:
            document = json.loads(path.read_text())
        except ValueError as error:
            raise RefusedError(f"{file} of run {registered.run_id} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise RefusedError(f"{file} of run {registered.run_id} is not a JSON object")
    return document


def stored_tag(name: str, registered: Registered) -> str | None:
    """The store's tag of an earlier import of the same registered version, if any."""
    for model in stored_versions(name):
        lineage = model.info.metadata.get("mlflow") or {}
        if (
            lineage.get("registered_name") == registered.name
            and lineage.get("version") == registered.version
            and lineage.get("tracking_uri") == registered.tracking_uri
        ):
            return str(model.tag)
    return None
