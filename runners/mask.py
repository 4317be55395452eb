"""Runner for the mask / gender / age classifier: batched forward passes over resized images.

Decoding and resizing run in the front service (a different process, so the other core);
what crosses the hop is a compact uint8 [N, H, W, 3] array, normalised here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from model_bundle.catalogue import MASK_CLASSIFIER
from runners.base import JsonArray, ModelRunner, batchable, runner
from runners.explain import ExplainsMasks

if TYPE_CHECKING:
    from models.artifact import Artifact
    from models.mask.network import MaskClassifier

# A small CNN on a CPU gains little from big batches; 16 keeps the queue short.
MAX_BATCH_IMAGES = 16
MAX_LATENCY_MS = 2000


@runner(MASK_CLASSIFIER)
class MaskRunner(ExplainsMasks, ModelRunner):
    def load(self, artifact: Artifact) -> MaskClassifier:
        from models.mask.network import MaskClassifier

        return MaskClassifier(artifact)

    def warm_up(self, model: MaskClassifier) -> None:
        model.classify(np.zeros((1, model.prep.height, model.prep.width, 3), np.uint8))

    def description(self, model: MaskClassifier) -> dict[str, Any]:
        """The input size and normalisation the front must resize to."""
        return {"preprocessing": model.prep.to_metadata()}

    @batchable(max_batch_size=MAX_BATCH_IMAGES, max_latency_ms=MAX_LATENCY_MS)
    def classify(self, model: MaskClassifier, images: np.ndarray) -> JsonArray:
        """float32 [N, 18 + K] for resized RGB images uint8 [N, H, W, 3]: the class
        probabilities, then the embedding's K drift components (model_bundle/answers.py
        splits them)."""
        return model.classify_with_embedding(images)
