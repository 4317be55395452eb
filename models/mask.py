"""Mask / gender / age face classifier (18 classes) and its image preprocessing.

Classes follow the competition: ``class = mask * 6 + gender * 3 + age`` with mask 0 wear,
1 incorrect, 2 not worn; gender 0 male, 1 female; age 0 under 30, 1 30 to 59, 2 60 and
over. Preprocessing is the baseline's (torchvision ``Resize`` on a PIL image, ``ToTensor``,
``Normalize``) done with Pillow and numpy, in two steps so they can run in different
processes: :func:`resize` (decoded image -> uint8 [H, W, 3]) and :func:`normalise`
(uint8 batch -> float tensor [N, 3, H, W]). The constants live in the artifact's metadata.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from torch import nn

from models.images import load_rgb

MASK = ("wear", "incorrect", "not_worn")
GENDER = ("male", "female")
AGE = ("<30", "30-59", ">=60")
NUM_CLASSES = len(MASK) * len(GENDER) * len(AGE)


def class_parts(class_id: int) -> tuple[str, str, str]:
    """``class_id`` -> (mask, gender, age) labels."""
    return MASK[class_id // 6], GENDER[class_id // 3 % 2], AGE[class_id % 3]


def marginals(probabilities: np.ndarray) -> dict[str, dict[str, float]]:
    """Per-attribute probabilities from the 18 class probabilities of one image."""
    grid = probabilities.reshape(len(MASK), len(GENDER), len(AGE))
    return {
        "mask": dict(zip(MASK, grid.sum(axis=(1, 2)).tolist(), strict=True)),
        "gender": dict(zip(GENDER, grid.sum(axis=(0, 2)).tolist(), strict=True)),
        "age": dict(zip(AGE, grid.sum(axis=(0, 1)).tolist(), strict=True)),
    }


@dataclass(frozen=True)
class Preprocessing:
    """Input size and normalisation of a mask model (the baseline's values by default)."""

    height: int = 128
    width: int = 96
    mean: tuple[float, float, float] = (0.548, 0.504, 0.479)
    std: tuple[float, float, float] = (0.237, 0.247, 0.246)
    interpolation: str = "bilinear"

    def to_metadata(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_metadata(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(
            int(data["height"]),
            int(data["width"]),
            tuple(map(float, data["mean"])),  # type: ignore[arg-type]
            tuple(map(float, data["std"])),  # type: ignore[arg-type]
            str(data["interpolation"]),
        )


def resize(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    """RGB image -> uint8 [H, W, 3] with PIL's own bilinear resize (as torchvision on PIL)."""
    if prep.interpolation != "bilinear":
        raise ValueError(f"unsupported interpolation {prep.interpolation!r}")
    resized = image.resize((prep.width, prep.height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def normalise(images: np.ndarray, prep: Preprocessing) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W]: scaled to [0, 1], then (x - mean) / std."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = self.dropout1(F.max_pool2d(F.relu(self.conv2(x)), 2))
        x = self.dropout2(F.max_pool2d(F.relu(self.conv3(x)), 2))
        return self.fc(self.avgpool(x).flatten(1))
