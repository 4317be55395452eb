"""Deterministic training of a tabular classifier, stored in the one artifact format."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from model_bundle.monitoring.reference import tabular_reference
from models.artifact import data_hash, save_artifact
from models.calibration import calibration
from models.tabular.contract import TabularTask
from models.tabular.network import MinMaxScaler, TabularClassifier, build_network, tabular_metadata
from scripts.train.threads import one_thread
from scripts.train.tracking import SCALER_FILE, log_training_run


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int
    batch_size: int = 64
    learning_rate: float = 1e-2
    holdout_fraction: float = 0.2
    seed: int = 0
    # Fit a temperature on the held-out rows and serve with it when it lowers their ECE
    # (models/calibration.py); off: the network's own softmax is served.
    temperature_scaling: bool = False


def split(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shuffle ``frame`` deterministically and hold out ``fraction`` of every label."""
    shuffled = frame.sample(frac=1.0, random_state=seed)
    held = (
        shuffled.groupby("label").cumcount()
        < shuffled["label"].map(shuffled["label"].value_counts() * fraction).round()
    )
    return shuffled[~held], shuffled[held]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.inference_mode():
        return float((model(x).argmax(dim=1) == y).float().mean())


@one_thread()
def train_tabular(
    task: TabularTask,
    frame: pd.DataFrame,
    config: TrainingConfig,
    source: str,
    *,
    holdout: pd.DataFrame | None = None,
    name: str | None = None,
    lineage: dict[str, Any] | None = None,
) -> str:
    """Train ``task``'s default network on ``frame`` (features + ``label``); return its tag.

    ``holdout``: the rows to evaluate on (default: ``config.holdout_fraction`` of ``frame``);
    ``name``: the store name (default: the task's); ``lineage``: stored as it is (a retrain's
    parent version, data and evaluation)."""
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    if holdout is None:
        train, holdout = split(frame, config.holdout_fraction, config.seed)
    else:
        train = frame

    def tensors(part: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.tensor(part[list(task.features)].to_numpy(np.float32))
        y = torch.tensor([task.labels.index(label) for label in part["label"]])
        return x, y

    (x_train, y_train), (x_held, y_held) = tensors(train), tensors(holdout)
    scaler = MinMaxScaler.fit(x_train.numpy())
    network = build_network(task)
    model = TabularClassifier(scaler.module(), network)
    optimiser = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(config.seed)

    print(f"{task.name}: {len(train)} training rows, {len(holdout)} held out")
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        model.eval()
        if epoch == 1 or epoch % max(1, config.epochs // 10) == 0 or epoch == config.epochs:
            print(
                f"  epoch {epoch:>3}/{config.epochs}  loss {total / len(x_train):.4f}"
                f"  train acc {accuracy(model, x_train, y_train):.3f}"
                f"  held-out acc {accuracy(model, x_held, y_held):.3f}",
                flush=True,
            )

    metrics = {
        "holdout_accuracy": round(accuracy(model, x_held, y_held), 4),
        "train_accuracy": round(accuracy(model, x_train, y_train), 4),
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "epochs": config.epochs,
        "seed": config.seed,
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    metadata = tabular_metadata(
        task, scaler, hidden=task.hidden, metrics=metrics, data_hash=data_hash(frame), source=source
    )
    if lineage is not None:
        metadata["lineage"] = lineage
    with torch.inference_mode():
        metadata["calibration"] = calibration(
            model(x_held).numpy(), y_held.numpy(), scaling=config.temperature_scaling
        )
    with torch.no_grad():
        predicted = model(x_held).argmax(dim=1).tolist()
    metadata["reference"] = tabular_reference(
        {name: train[name].to_numpy() for name in task.features},
        [task.labels[i] for i in predicted],
        task.labels,
    )
    tag = save_artifact(name or task.name, metadata, state_dict=network.state_dict())
    print(f"{task.name}: held-out accuracy {metrics['holdout_accuracy']:.3f}; saved {tag}")
    params = {**asdict(config), "hidden": list(task.hidden), "data_hash": metadata["data_hash"]}
    params["source"] = source
    log_training_run(
        name or task.name,
        params=params,
        metrics=metrics,
        state_dict=network.state_dict(),
        tag=tag,
        documents={SCALER_FILE: scaler.to_metadata()},
    )
    return tag
