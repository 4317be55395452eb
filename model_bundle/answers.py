"""Model outputs -> response bodies, shared by the service and the baseline server (no torch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from model_bundle.schemas import MaskPrediction
from models.mask.contract import NUM_CLASSES, class_parts, marginals
from models.tabular.contract import TabularTask


def feature_matrix(rows: Sequence[Mapping[str, float]], task: TabularTask) -> np.ndarray:
    """Validated request rows -> float32 [N, F] in the task's feature order."""
    return np.array([[row[name] for name in task.features] for row in rows], dtype=np.float32)


def labelled(probabilities: np.ndarray, task: TabularTask, tag: str) -> list[dict[str, Any]]:
    """Rows of class probabilities -> prediction dicts (label key added by the caller)."""
    predictions = []
    for row in probabilities.tolist():
        class_id = max(range(len(row)), key=row.__getitem__)
        predictions.append(
            {
                "class_id": class_id,
                "label": task.labels[class_id],
                "probability": row[class_id],
                "probabilities": dict(zip(task.labels, row, strict=True)),
                "model": tag,
            }
        )
    return predictions


def split_embedding(output: Any) -> tuple[np.ndarray, np.ndarray]:
    """The mask runner's [N, 18 + K] answer: class probabilities [N, 18] and the embedding's
    K drift components [N, K] (runners/mask.py)."""
    array = np.asarray(output, dtype=np.float32)
    return array[:, :NUM_CLASSES], array[:, NUM_CLASSES:]


def mask_prediction(probabilities: np.ndarray, tag: str) -> MaskPrediction:
    class_id = int(probabilities.argmax())
    mask, gender, age = class_parts(class_id)
    return MaskPrediction(
        class_id=class_id,
        mask=mask,
        gender=gender,
        age=age,
        confidence=float(probabilities[class_id]),
        probabilities=probabilities.tolist(),
        marginals=marginals(probabilities),
        model=tag,
    )
