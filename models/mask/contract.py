"""Mask / gender / age classes and image resizing (torch-free: the front service uses it).

Classes follow the competition: ``class = mask * 6 + gender * 3 + age`` with mask 0 wear,
1 incorrect, 2 not worn; gender 0 male, 1 female; age 0 under 30, 1 30 to 59, 2 60 and
over. The baseline's preprocessing (torchvision ``Resize`` on a PIL image, ``ToTensor``,
``Normalize``) is split in two steps that may run in different processes:
:func:`resize` here (decoded image -> uint8 [H, W, 3]) and :func:`models.mask.network.normalise`
(uint8 batch -> float tensor). The constants live in the artifact's metadata.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

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
    return np.array(resized, dtype=np.uint8)  # a writable copy: torch refuses read-only views
