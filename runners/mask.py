"""Runner for the mask / gender / age classifier: batched forward passes over resized images.

Decoding and resizing run in the front service (a different process, so the other core);
what crosses the hop is a compact uint8 [N, H, W, 3] array, normalised here.
"""

from __future__ import annotations

import bentoml
import numpy as np

from model_bundle.catalogue import MASK_CLASSIFIER
from runners.config import (
    RUNNER_SERVICE_CONFIG,
    TORCH_THREADS,
    JsonArray,
    JsonDict,
    configured_tag,
)
from runners.drain import DrainBeforeStop

# A small CNN on a CPU gains little from big batches; 16 keeps the queue short.
MAX_BATCH_IMAGES = 16
MAX_LATENCY_MS = 2000


@bentoml.service(**RUNNER_SERVICE_CONFIG)
class MaskRunner:
    model = bentoml.models.BentoModel(configured_tag(MASK_CLASSIFIER))

    def __init__(self) -> None:
        import torch  # not at module level: the front service imports this module

        from models.artifact import Artifact
        from models.mask.network import MaskClassifier

        torch.set_num_threads(TORCH_THREADS)
        self.artifact = Artifact.from_store(self.model)
        self.classifier = MaskClassifier(self.artifact)
        self.prep = self.classifier.prep
        self.classify(np.zeros((1, self.prep.height, self.prep.width, 3), np.uint8))  # warm-up

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_IMAGES, max_latency_ms=MAX_LATENCY_MS)
    def classify(self, images: np.ndarray) -> JsonArray:
        """Class probabilities float32 [N, 18] for resized RGB images uint8 [N, H, W, 3]."""
        return self.classifier.classify(images)

    @bentoml.api
    def classify_unbatched(self, images: np.ndarray) -> JsonArray:
        """``classify`` past the batcher, for a call with nothing to merge with."""
        return self.classifier.classify(images)

    @bentoml.api
    def describe(self) -> JsonDict:
        """The served artifact, and the input size the front must resize to."""
        return {**self.artifact.summary(), "preprocessing": self.prep.to_metadata()}


MaskRunner.add_asgi_middleware(DrainBeforeStop)
