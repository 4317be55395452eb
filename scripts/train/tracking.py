"""Logging a training run to MLflow, when the user asked for it with ``MLFLOW_TRACKING_URI``.

MLflow is an optional extra (``requirements-mlflow.txt``): training and serving work without
it, so it is imported here, lazily, and a missing package or an unset variable means no logging
rather than an error. What is logged is what ``scripts.imports.mlflow`` reads back: the params,
the numeric metrics, the network's ``state_dict`` (``log_state_dict``, artifact path
``state_dict``) and the scaler as a plain ``scaler.json`` (no pickle on either side).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

STATE_DICT_PATH = "state_dict"  # the run's artifact path of the logged state_dict
SCALER_FILE = "scaler.json"  # data_min, data_max, scale, min: MinMaxScaler.to_metadata()


def log_training_run(
    name: str,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    scaler: Mapping[str, list[float]] | None,
    tag: str,
) -> str | None:
    """Log one run (its id returned); None, doing nothing, without the variable or mlflow."""
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
        if scaler is not None:
            mlflow.log_dict(dict(scaler), SCALER_FILE)
    print(f"{name}: logged MLflow run {run.info.run_id}")
    return run.info.run_id
