"""Where the mask network looked: Grad-CAM on its last convolution, as a PNG overlay.

Grad-CAM (Selvaraju et al., 2017): the last convolution's feature maps weighted by the mean
gradient of the predicted class's logit over each map, summed, ReLU'd, upsampled to the
image and scaled to [0, 1] (all zeros when nothing speaks for the class). Needs the
convolution by name, so it serves our architecture (a state_dict); a user's TorchScript or
torch.export program says it is not available (:func:`available`).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image

from models.mask.contract import Preprocessing
from models.mask.network import MaskBaseModel, normalise

UNAVAILABLE = "Grad-CAM needs our architecture's last convolution; this version is a program"


def available(network: torch.nn.Module) -> bool:
    return isinstance(network, MaskBaseModel)


def grad_cam(
    network: MaskBaseModel, image: np.ndarray, prep: Preprocessing
) -> tuple[int, np.ndarray]:
    """(predicted class, heat map float32 [H, W] in [0, 1]) for one resized image uint8
    [H, W, 3]."""
    captured: dict[str, torch.Tensor] = {}

    def keep(_module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> None:
        output.retain_grad()
        captured["maps"] = output

    hook = network.conv3.register_forward_hook(keep)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            logits = network(normalise(image[None], prep).clone())
            class_id = int(logits[0].argmax())
            logits[0, class_id].backward()
    finally:
        hook.remove()
    maps, grads = captured["maps"].detach()[0], captured["maps"].grad[0]
    weights = grads.mean(dim=(1, 2))
    cam = F.relu((weights[:, None, None] * maps).sum(dim=0))
    cam = F.interpolate(
        cam[None, None], size=image.shape[:2], mode="bilinear", align_corners=False
    )[0, 0]
    peak = float(cam.max())
    cam = cam / peak if peak > 0 else torch.zeros_like(cam)
    return class_id, cam.numpy().astype(np.float32)


def overlay_png(image: np.ndarray, heat: np.ndarray, opacity: float = 0.5) -> str:
    """The image with the heat map over it in red-to-yellow, PNG, base64."""
    colour = np.stack([np.ones_like(heat), heat, np.zeros_like(heat)], axis=-1) * 255
    alpha = (opacity * heat)[..., None]
    mixed = image.astype(np.float32) * (1 - alpha) + colour * alpha
    buffer = io.BytesIO()
    Image.fromarray(mixed.clip(0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()
