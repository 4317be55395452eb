"""Test images: synthetic faces encoded in every accepted format and mode, and bad uploads."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from scripts.sample_data.mask import draw_face


def face(class_id: int = 0, seed: int = 0) -> Image.Image:
    return draw_face(class_id, np.random.default_rng(seed))


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def decompression_bomb() -> bytes:
    """A small PNG that claims 100 million pixels."""
    return encode(Image.new("1", (10_000, 10_000)), "PNG", optimize=True)


def truncated_jpeg() -> bytes:
    data = encode(face(), "JPEG")
    return data[: len(data) // 2]
