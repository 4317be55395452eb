"""Grad-CAM on the mask network: the image's shape, normalised to [0, 1], changes with the
image, a valid PNG overlay; a program says it is not available."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from models.artifact import Artifact
from models.mask.heatmap import available, grad_cam, overlay_png
from models.mask.network import MaskClassifier


@pytest.fixture(scope="module")
def model(default_models: dict[str, str]) -> MaskClassifier:
    return MaskClassifier(Artifact.load(default_models["mask_classifier"]))


def images(model: MaskClassifier) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    shape = (model.prep.height, model.prep.width, 3)
    left = np.zeros(shape, np.uint8)
    left[:, : shape[1] // 2] = 255
    return [rng.integers(0, 256, shape, dtype=np.uint8), left, left[:, ::-1].copy()]


def test_heat_map_has_the_image_shape_and_is_normalised(model: MaskClassifier) -> None:
    for image in images(model):
        class_id, heat = grad_cam(model.network, image, model.prep)
        assert heat.shape == image.shape[:2]
        assert heat.dtype == np.float32
        assert heat.min() >= 0 and heat.max() <= 1 + 1e-6
        assert heat.max() == pytest.approx(1.0) or heat.max() == 0
        assert class_id == int(model.classify(image[None])[0].argmax())


def test_heat_map_changes_with_the_image(model: MaskClassifier) -> None:
    heats = [grad_cam(model.network, image, model.prep)[1] for image in images(model)]
    assert np.abs(heats[1] - heats[2]).max() > 0.05
    assert np.abs(heats[0] - heats[1]).max() > 0.05


def test_overlay_is_a_png_of_the_image_size(model: MaskClassifier) -> None:
    image = images(model)[0]
    png = base64.b64decode(overlay_png(image, grad_cam(model.network, image, model.prep)[1]))
    decoded = Image.open(io.BytesIO(png))
    assert decoded.format == "PNG"
    assert decoded.size == (image.shape[1], image.shape[0])


def test_a_program_is_not_available(model: MaskClassifier) -> None:
    assert available(model.network)
    assert not available(torch.jit.script(model.network))
