"""Tabular classifiers: min-max scaling, then a network that returns logits.

Shared by the credit-health and iris models, whose features, labels and default architecture
are named in :mod:`models.tabular.contract`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from models.artifact import Artifact
from models.calibration import served_temperature
from models.layers import MLP, MinMaxScaling
from models.tabular.contract import TabularTask
from models.tensors import tensor_of


def build_network(task: TabularTask, hidden: Sequence[int] | None = None) -> MLP:
    """Our MLP for ``task`` (default widths unless ``hidden`` is given)."""
    widths = task.hidden if hidden is None else hidden
    return MLP(len(task.features), widths, len(task.labels))


@dataclass(frozen=True)
class MinMaxScaler:
    """The arrays of a fitted scikit-learn ``MinMaxScaler`` (feature range 0..1), as plain data."""

    data_min: tuple[float, ...]
    data_max: tuple[float, ...]
    scale: tuple[float, ...]
    min: tuple[float, ...]

    @classmethod
    def fit(cls, x: np.ndarray) -> MinMaxScaler:
        """Fit like scikit-learn: ``scale = 1 / (max - min)``, a constant column keeps scale 1."""
        data_min, data_max = x.min(axis=0), x.max(axis=0)
        span = data_max - data_min
        scale = 1.0 / np.where(span == 0, 1.0, span)
        return cls.from_arrays(data_min, data_max, scale, -data_min * scale)

    @classmethod
    def from_arrays(cls, *arrays: np.ndarray) -> MinMaxScaler:
        return cls(*(tuple(float(v) for v in np.asarray(a).ravel()) for a in arrays))

    @classmethod
    def from_sklearn(cls, scaler: Any) -> MinMaxScaler:
        """Convert a fitted scikit-learn ``MinMaxScaler`` (duck-typed: no sklearn import)."""
        if getattr(scaler, "clip", False):
            raise ValueError(
                "a MinMaxScaler with clip=True is not supported: refit it with clip=False"
            )
        try:
            arrays = (scaler.data_min_, scaler.data_max_, scaler.scale_, scaler.min_)
        except AttributeError as missing:
            raise ValueError(f"not a fitted MinMaxScaler: {missing}") from None
        return cls.from_arrays(*arrays)

    @classmethod
    def from_metadata(cls, data: dict[str, Sequence[float]]) -> MinMaxScaler:
        return cls(**{key: tuple(map(float, data[key])) for key in cls.__dataclass_fields__})

    def to_metadata(self) -> dict[str, list[float]]:
        return {key: list(getattr(self, key)) for key in self.__dataclass_fields__}

    def transform(self, x: np.ndarray) -> np.ndarray:
        return x * np.asarray(self.scale) + np.asarray(self.min)

    def module(self) -> MinMaxScaling:
        return MinMaxScaling(self.scale, self.min)


class TabularClassifier(nn.Module):
    """Scaling followed by a network (ours or a user's TorchScript) returning logits."""

    def __init__(
        self, scaling: MinMaxScaling, network: nn.Module, temperature: float = 1.0
    ) -> None:
        super().__init__()
        self.scaling = scaling
        self.network = network
        self.temperature = temperature  # models/calibration.py: 1 unless the artifact says

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(self.scaling(x))

    @torch.inference_mode()
    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, float32 [N, classes], for raw (unscaled) features [N, F]."""
        logits = self(tensor_of(features, np.float32))
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return torch.softmax(logits, dim=1).numpy()


def tabular_metadata(
    task: TabularTask,
    scaler: MinMaxScaler,
    *,
    hidden: Sequence[int] | None,
    metrics: dict[str, Any],
    data_hash: str | None,
    source: str,
) -> dict[str, Any]:
    """Metadata of a tabular artifact; ``hidden=None`` for a program (TorchScript, export)."""
    return {
        "task": task.name,
        "features": list(task.features),
        "labels": list(task.labels),
        "hidden": None if hidden is None else list(hidden),
        "scaler": scaler.to_metadata(),
        "metrics": metrics,
        "data_hash": data_hash,
        "source": source,
    }


def load_classifier(artifact: Artifact, task: TabularTask) -> TabularClassifier:
    """Rebuild the classifier stored in ``artifact``, checked against ``task``, in eval mode."""
    meta = artifact.metadata
    if tuple(meta["features"]) != task.features or tuple(meta["labels"]) != task.labels:
        raise ValueError(f"{artifact.tag} is not a model for {task.name}: other features/labels")
    if artifact.weights != "state_dict":
        network: nn.Module = artifact.network()  # in inference mode already
    else:
        network = build_network(task, meta["hidden"])
        network.load_state_dict(artifact.state_dict())
        network.eval()
    scaling = MinMaxScaler.from_metadata(meta["scaler"]).module()
    classifier = TabularClassifier(scaling, network, served_temperature(meta))
    # Not classifier.eval(): a torch.export module refuses train()/eval(), and the network is
    # in inference mode already (scaling behaves the same in both modes).
    classifier.training = False
    return classifier
