"""A few numbers per photo that the drift report watches in place of its pixels.

Torch-free and cheap (the model's small input, not the upload's full size, is averaged: a
few percent of the decode and resize it follows): the front computes them for every
answered upload, the trainer and the import for their reference photos, all from the same
decoded image and resize.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

STATISTICS = ("brightness", "contrast", "width", "height", "aspect")
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as PIL's "L" conversion


def image_statistics(image: Image.Image, pixels: np.ndarray) -> dict[str, float]:
    """``image``: the decoded upload (after EXIF rotation); ``pixels``: it resized to the
    model's input, uint8 [H, W, 3]. Brightness is the mean luma of the model's input in 0..1
    and contrast its standard deviation; width and height are the upload's in pixels, aspect
    width / height."""
    luma = pixels.reshape(-1, 3) @ LUMA / 255.0
    width, height = image.size
    return {
        "brightness": round(float(luma.mean()), 6),
        "contrast": round(float(luma.std()), 6),
        "width": float(width),
        "height": float(height),
        "aspect": round(width / height, 6),
    }
