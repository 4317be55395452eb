"""Logging a training run to MLflow, when the user asked for it with ``MLFLOW_TRACKING_URI``.

MLflow is an optional extra (``requirements-mlflow.txt``): training and serving work without
it, so it is imported here, lazily, and a missing package or an unset variable means no logging
rather than an error. What is logged is what ``scripts.imports.mlflow`` reads back, with no
pickle on either side:

* the params and the numeric metrics;
* the network's ``state_dict`` (``log_state_dict``, artifact path ``state_dict``);
* what the network needs beside its weights, as plain files: the tabular scaler as
  ``scaler.json``, the mask model's ``preprocessing.json``, the book model's index tables
  and catalogue under ``tables/`` (the files its artifact holds).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

STATE_DICT_PATH = "state_dict"  # the run's artifact path of the logged state_dict
SCALER_FILE = "scaler.json"  # data_min, data_max, scale, min: MinMaxScaler.to_metadata()
PREPROCESSING_FILE = "preprocessing.json"  # models.mask.contract.Preprocessing.to_metadata()
TABLES_PATH = "tables"  # the book model's featuriser and catalogue files


def log_training_run(
    name: str,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    tag: str,
    documents: Mapping[str, Mapping[str, Any]] | None = None,
    write_tables: Callable[[Path], None] | None = None,
) -> str | None:
    """Log one run (its id returned); None, doing nothing, without the variable or mlflow.

    ``documents`` are JSON files by name (``scaler.json``, ``preprocessing.json``);
    ``write_tables(directory)`` writes plain files logged under ``tables/``."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    try:
        import mlflow
        import mlflow.pytorch
    except ImportError:
        print("MLFLOW_TRACKING_URI is set but mlflow is not installed: run not logged")
        return None
    mlflow.set_experiment(name)
    with mlflow.start_run(run_name=tag.replace(":", "-")) as run:
        mlflow.log_params(dict(params))
        mlflow.log_metrics(
            {key: float(value) for key, value in metrics.items() if isinstance(value, int | float)}
        )
        mlflow.set_tags({"bentoml_tag": tag, "model": name})
        mlflow.pytorch.log_state_dict(dict(state_dict), STATE_DICT_PATH)
        for file, document in (documents or {}).items():
            mlflow.log_dict(dict(document), file)
        if write_tables is not None:
            with tempfile.TemporaryDirectory() as directory:
                write_tables(Path(directory))
                mlflow.log_artifacts(directory, TABLES_PATH)
    print(f"{name}: logged MLflow run {run.info.run_id}")
    return run.info.run_id
