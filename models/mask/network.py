"""The mask / gender / age classifier: the baseline's network, normalisation and artifact.

Labels, class ids and resizing are in :mod:`models.mask.contract` (torch-free).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from model_bundle.catalogue import MASK_CLASSIFIER
from model_bundle.monitoring.reference import project
from models.artifact import Artifact
from models.calibration import served_temperature
from models.mask.contract import AGE, GENDER, MASK, NUM_CLASSES, Preprocessing, resize
from models.mask.images import load_rgb
from models.tensors import tensor_of


def normalise(images: np.ndarray, prep: Preprocessing) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W]: scaled to [0, 1], then (x - mean) / std."""
    x = tensor_of(images, np.uint8).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(prep.mean).view(1, 3, 1, 1)
    std = torch.tensor(prep.std).view(1, 3, 1, 1)
    return (x - mean) / std


def preprocess(data: bytes, prep: Preprocessing) -> torch.Tensor:
    """Encoded image -> the model's input [1, 3, H, W]: both steps, in one process."""
    return normalise(resize(load_rgb(data), prep)[None], prep)


class MaskBaseModel(nn.Module):
    """The baseline's ``BaseModel(num_classes=18)``: three convolutions, pooling, a linear
    layer; parameters conv1, conv2, conv3 and fc as in its ``best.pth``. Returns logits."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=7)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.conv3 = nn.Conv2d(64, 128, kernel_size=3)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.25)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(128, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate embedding [N, 128] (what the drift report summarises)."""
        x = F.relu(self.conv1(x))
        x = self.dropout1(F.max_pool2d(F.relu(self.conv2(x)), 2))
        x = self.dropout2(F.max_pool2d(F.relu(self.conv3(x)), 2))
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(x))


def mask_metadata(
    prep: Preprocessing, *, metrics: dict[str, Any], data_hash: str | None, source: str
) -> dict[str, Any]:
    """Metadata of a mask artifact."""
    return {
        "task": MASK_CLASSIFIER.name,
        "labels": {"mask": list(MASK), "gender": list(GENDER), "age": list(AGE)},
        "num_classes": NUM_CLASSES,
        "preprocessing": prep.to_metadata(),
        "metrics": metrics,
        "data_hash": data_hash,
        "source": source,
    }


class MaskClassifier:
    """The stored network and its preprocessing: resized images in, class probabilities out.
    What the runner serves, its explanations and batch prediction run (one implementation).
    The logits are divided by the artifact's recorded temperature (models/calibration.py: 1
    unless it was trained or imported with temperature scaling), as the tabular classifier's."""

    def __init__(self, artifact: Artifact) -> None:
        self.network, self.prep = load_network(artifact)
        self.temperature = served_temperature(artifact.metadata)
        summary = artifact.metadata.get("reference", {}).get("embedding")
        # A program's penultimate layer is unknown: only our network's embedding is watched.
        self.projection = summary if isinstance(self.network, MaskBaseModel) else None

    @torch.inference_mode()
    def classify(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities float32 [N, 18] for resized RGB images uint8 [N, H, W, 3]."""
        return self.probabilities(self.network(normalise(images, self.prep)))

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        """Softmax of the logits at the served temperature."""
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return torch.softmax(logits, dim=1).numpy()

    @torch.inference_mode()
    def classify_with_embedding(self, images: np.ndarray) -> np.ndarray:
        """float32 [N, 18 + K]: the class probabilities, then the penultimate embedding
        projected on the reference's K principal components (K = 0 without a summary).
        One array, so that the runner's adaptive batching splits it by rows as it is."""
        if self.projection is None:
            return self.classify(images)
        assert isinstance(self.network, MaskBaseModel)
        embedding = self.network.embed(normalise(images, self.prep))
        probabilities = self.probabilities(self.network.fc(embedding))
        projected = project(embedding.numpy(), self.projection)
        return np.concatenate([probabilities, projected], axis=1).astype(np.float32)


def load_network(artifact: Artifact) -> tuple[nn.Module, Preprocessing]:
    """The stored network in eval mode, and the preprocessing it expects."""
    prep = Preprocessing.from_metadata(artifact.metadata["preprocessing"])
    if artifact.weights != "state_dict":
        return artifact.network(), prep
    network = MaskBaseModel()
    network.load_state_dict(artifact.state_dict())
    return network.eval(), prep
