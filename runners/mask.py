"""Runner for the mask / gender / age classifier: batched forward passes over resized images.

Decoding and resizing run in the front service (a different process, so the other core);
what crosses the hop is a compact uint8 [N, H, W, 3] array, normalised here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bentoml
import numpy as np

from model_bundle.catalogue import MASK_CLASSIFIER
from runners.base import JsonArray, ModelRunner, runner

if TYPE_CHECKING:
    from models.artifact import Artifact

# A small CNN on a CPU gains little from big batches; 16 keeps the queue short.
MAX_BATCH_IMAGES = 16
MAX_LATENCY_MS = 2000


@runner(MASK_CLASSIFIER)
class MaskRunner(ModelRunner):
    def load(self, artifact: Artifact) -> None:
        from models.mask.network import MaskClassifier

        self.classifier = MaskClassifier(artifact)
        self.prep = self.classifier.prep

    def warm_up(self) -> None:
        self.classifier.classify(np.zeros((1, self.prep.height, self.prep.width, 3), np.uint8))

    def description(self) -> dict[str, Any]:
        """The input size and normalisation the front must resize to."""
        return {"preprocessing": self.prep.to_metadata()}

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_IMAGES, max_latency_ms=MAX_LATENCY_MS)
    def classify(self, images: np.ndarray) -> JsonArray:
        """Class probabilities float32 [N, 18] for resized RGB images uint8 [N, H, W, 3]."""
        return self.classifier.classify(images)
