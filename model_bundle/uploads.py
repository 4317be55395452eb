"""Uploaded photos -> the array the mask runner takes, decoded in the front process.

Decoding and resizing here (not in the runner) keeps the hop small (uint8 at the model's
input size) and puts the work on the front's core while the runner computes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from model_bundle.schemas import invalid_input
from model_bundle.settings import settings
from models.mask.contract import Preprocessing, resize
from models.mask.images import InvalidImageError, load_rgb
from models.mask.statistics import image_statistics


def invalid_upload(loc: tuple[str | int, ...], reason: str) -> ValidationError:
    """A 400 shaped like every other validation error: the field, the problem."""
    return invalid_input("image upload", loc, "invalid_image", reason)


@dataclass(frozen=True)
class Uploads:
    pixels: np.ndarray  # uint8 [N, H, W, 3]: what the runner takes
    statistics: list[dict[str, float]]  # per photo: what the monitor records, never pixels


def resized_uploads(uploads: Sequence[Path], prep: Preprocessing, field: str) -> Uploads:
    """Decode and resize uploaded files, with each photo's statistics; or a 400 naming the
    bad one."""
    images, statistics = [], []
    for index, upload in enumerate(uploads):
        try:
            image = load_rgb(upload.read_bytes(), settings.max_image_pixels)
        except InvalidImageError as error:
            loc = (field,) if field == "image" else (field, index)
            raise invalid_upload(loc, str(error)) from None
        images.append(resize(image, prep))
        statistics.append(image_statistics(image, images[-1]))
    return Uploads(np.stack(images), statistics)
