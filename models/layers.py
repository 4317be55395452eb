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


def field_offsets(field_dims: Sequence[int]) -> torch.Tensor:
    """Where each field's rows start in the shared embedding tables: 0, cumsum(dims)[:-1]."""
    dims = torch.tensor([0, *field_dims[:-1]], dtype=torch.long)
    return torch.cumsum(dims, dim=0)


class FeaturesLinear(nn.Module):
    """Per-feature weights summed over fields, plus a bias (pytorch-fm's ``FeaturesLinear``)."""

    offsets: torch.Tensor

    def __init__(self, field_dims: Sequence[int]) -> None:
        super().__init__()
        self.fc = nn.Embedding(sum(field_dims), 1)
        self.bias = nn.Parameter(torch.zeros(1))
        self.register_buffer("offsets", field_offsets(field_dims), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-field indices, long [B, F] -> [B, 1]."""
        return self.fc(x + self.offsets).sum(dim=1) + self.bias


class FieldAwareInteraction(nn.Module):
    """Sum over field pairs i < j of <v(x_i, field j), v(x_j, field i)>.

    One embedding table per *target* field, as pytorch-fm's ``FieldAwareFactorizationMachine``
    (parameters ``embeddings.{f}.weight``), computed for all pairs at once.
    """

    offsets: torch.Tensor
    upper: torch.Tensor

    def __init__(self, field_dims: Sequence[int], embed_dim: int) -> None:
        super().__init__()
        fields = len(field_dims)
        self.embeddings = nn.ModuleList(
            nn.Embedding(sum(field_dims), embed_dim) for _ in range(fields)
        )
        for embedding in self.embeddings:
            nn.init.xavier_uniform_(embedding.weight)
        self.register_buffer("offsets", field_offsets(field_dims), persistent=False)
        self.register_buffer("upper", torch.ones(fields, fields).triu(1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-field indices, long [B, F] -> [B, 1]."""
        rows = x + self.offsets
        # v[b, i, j] = embedding of feature x_i as seen by field j: [B, F, F, E]
        v = torch.stack([embedding(rows) for embedding in self.embeddings], dim=2)
        pairs = (v * v.transpose(1, 2)).sum(dim=-1)  # <v[b,i,j], v[b,j,i]>: [B, F, F]
        return (pairs * self.upper).sum(dim=(1, 2)).unsqueeze(1)
