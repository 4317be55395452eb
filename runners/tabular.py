"""The runner shape the tabular models share; each model's runner names its task and model."""

from __future__ import annotations

from typing import ClassVar

import bentoml
import numpy as np

from models.tabular.contract import TabularTask
from runners.config import TORCH_THREADS, JsonArray, JsonDict

# Rows per model call. One forward over 1,000 rows of a small MLP takes about a millisecond,
# so big batches cost nothing; requests larger than this are split by the dispatcher.
MAX_BATCH_ROWS = 1000
# Queueing budget before the batcher answers 503 rather than wait longer.
MAX_LATENCY_MS = 1000


class TabularRunner:
    """Serves one :class:`~models.tabular.network.TabularClassifier` from the model store."""

    task: ClassVar[TabularTask]
    model: ClassVar[bentoml.models.BentoModel]

    def __init__(self) -> None:
        # torch is imported here, not at module level: the front service imports this module
        # for `bentoml.depends` and must stay torch-free.
        import torch

        from models.artifact import Artifact
        from models.tabular.network import load_classifier

        torch.set_num_threads(TORCH_THREADS)
        self.artifact = Artifact.from_store(self.model)
        self.classifier = load_classifier(self.artifact, self.task)
        self.classifier.predict_proba(np.zeros((1, len(self.task.features)), np.float32))

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_ROWS, max_latency_ms=MAX_LATENCY_MS)
    def predict_proba(self, features: np.ndarray) -> JsonArray:
        """Class probabilities [N, classes] for raw features [N, F] in the task's feature order."""
        return self.classifier.predict_proba(features)

    @bentoml.api
    def predict_proba_unbatched(self, features: np.ndarray) -> JsonArray:
        """``predict_proba`` past the batcher, for a call with nothing to merge with."""
        return self.classifier.predict_proba(features)

    @bentoml.api
    def describe(self) -> JsonDict:
        """The served artifact: tag, creation time, weights kind, training metrics, data hash."""
        return self.artifact.summary()
