"""The runner shape the tabular models share; each model's runner only names its entry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from model_bundle.schemas import MAX_BATCH_ITEMS
from runners.base import JsonArray, ModelRunner, batchable
from runners.explain import ExplainsTabular

if TYPE_CHECKING:
    from models.artifact import Artifact
    from models.tabular.network import TabularClassifier

# Queueing budget before the batcher answers 503 rather than wait longer.
MAX_LATENCY_MS = 1000


class TabularRunner(ExplainsTabular, ModelRunner):
    """Serves :class:`~models.tabular.network.TabularClassifier` versions from the model store."""

    def load(self, artifact: Artifact) -> TabularClassifier:
        from models.tabular.contract import TASKS
        from models.tabular.network import load_classifier

        return load_classifier(artifact, TASKS[self.entry.name])

    def warm_up(self, model: TabularClassifier) -> None:
        from models.tabular.contract import TASKS

        features = len(TASKS[self.entry.name].features)
        model.predict_proba(np.zeros((1, features), np.float32))

    # A whole batch request (up to MAX_BATCH_ITEMS rows) goes in one forward pass: one over
    # 1,000 rows of a small MLP takes about a millisecond, so big batches cost nothing.
    @batchable(max_batch_size=MAX_BATCH_ITEMS, max_latency_ms=MAX_LATENCY_MS)
    def predict_proba(self, model: TabularClassifier, features: np.ndarray) -> JsonArray:
        """Class probabilities [N, classes] for raw features [N, F] in the task's feature order."""
        return model.predict_proba(features)
