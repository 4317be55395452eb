"""The runner shape the tabular models share; each model's runner only names its entry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import bentoml
import numpy as np

from model_bundle.schemas import MAX_BATCH_ITEMS
from runners.base import JsonArray, ModelRunner

if TYPE_CHECKING:
    from models.artifact import Artifact

# Queueing budget before the batcher answers 503 rather than wait longer.
MAX_LATENCY_MS = 1000


class TabularRunner(ModelRunner):
    """Serves one :class:`~models.tabular.network.TabularClassifier` from the model store."""

    def load(self, artifact: Artifact) -> None:
        from models.tabular.contract import TASKS
        from models.tabular.network import load_classifier

        self.task = TASKS[self.entry.name]
        self.classifier = load_classifier(artifact, self.task)

    def warm_up(self) -> None:
        self.classifier.predict_proba(np.zeros((1, len(self.task.features)), np.float32))

    # A whole batch request (up to MAX_BATCH_ITEMS rows) goes in one forward pass: one over
    # 1,000 rows of a small MLP takes about a millisecond, so big batches cost nothing.
    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_ITEMS, max_latency_ms=MAX_LATENCY_MS)
    def predict_proba(self, features: np.ndarray) -> JsonArray:
        """Class probabilities [N, classes] for raw features [N, F] in the task's feature order."""
        return self.classifier.predict_proba(features)
