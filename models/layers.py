"""Small, plain layers shared by the tabular models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn


class MinMaxScaling(nn.Module):
    """scikit-learn's ``MinMaxScaler.transform``: ``x * scale + min``, no clipping."""

    scale: torch.Tensor
    min: torch.Tensor

    def __init__(self, scale: Sequence[float], min: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.register_buffer("min", torch.tensor(min, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.min


class MLP(nn.Sequential):
    """Linear -> ReLU blocks ending in a linear layer that returns logits.

    State-dict keys are ``0.weight``, ``0.bias``, ``2.weight`` ...: the hidden widths can be
    read back from a state_dict alone (:meth:`hidden_widths`), so an import needs no config.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int) -> None:
        layers: list[nn.Module] = []
        width_in = in_features
        for width in hidden:
            layers += [nn.Linear(width_in, width), nn.ReLU()]
            width_in = width
        layers.append(nn.Linear(width_in, out_features))
        super().__init__(*layers)

    @staticmethod
    def hidden_widths(state_dict: Mapping[str, torch.Tensor]) -> tuple[int, ...]:
        """The hidden widths of the MLP that produced ``state_dict``."""
        weights = sorted(
            (int(key.split(".")[0]), tensor)
            for key, tensor in state_dict.items()
            if key.endswith(".weight")
        )
        return tuple(tensor.shape[0] for _, tensor in weights[:-1])
