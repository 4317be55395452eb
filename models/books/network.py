"""Field-aware factorization machine with pytorch-fm's parameter names and shapes.

``linear.fc.weight`` [N, 1], ``linear.bias`` [1], ``ffm.embeddings.{f}.weight`` [N, E] for
N = sum(field_dims): a state_dict saved from pytorch-fm's ``FieldAwareFactorizationMachineModel``
or from the Boostcamp baseline loads as it is. ``forward`` returns the raw score; how it
becomes a rating (``output`` in the artifact) is :func:`to_rating`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import nn

from models.layers import FeaturesLinear, FieldAwareInteraction

Output = Literal["raw", "sigmoid"]
RATING_MIN, RATING_MAX = 1.0, 10.0


class FieldAwareFactorizationMachine(nn.Module):
    def __init__(self, field_dims: Sequence[int], embed_dim: int) -> None:
        super().__init__()
        self.field_dims = tuple(int(d) for d in field_dims)
        self.linear = FeaturesLinear(self.field_dims)
        self.ffm = FieldAwareInteraction(self.field_dims, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-field indices, long [B, F] -> raw scores [B]."""
        return (self.linear(x) + self.ffm(x)).squeeze(1)

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, torch.Tensor], field_dims: Sequence[int]
    ) -> FieldAwareFactorizationMachine:
        """Build the model ``state`` belongs to, checking every shape against ``field_dims``."""
        rows, fields = sum(field_dims), len(field_dims)
        tables = sorted(k for k in state if k.startswith("ffm.embeddings."))
        if "ffm.embeddings.0.weight" not in state:
            raise ValueError(f"not an FFM state_dict: no ffm.embeddings.0.weight in {list(state)}")
        embed_dim = state["ffm.embeddings.0.weight"].shape[1]
        expected = {
            "linear.fc.weight": (rows, 1),
            "linear.bias": (1,),
            **{f"ffm.embeddings.{f}.weight": (rows, embed_dim) for f in range(fields)},
        }
        problems = [
            f"{key}: expected {list(shape)}, got "
            + (list(state[key].shape).__str__() if key in state else "nothing")
            for key, shape in expected.items()
            if key not in state or tuple(state[key].shape) != shape
        ]
        problems += [f"{key}: unexpected" for key in set(state) - set(expected)]
        if problems or len(tables) != fields:
            raise ValueError(
                f"the checkpoint does not fit {fields} fields of sizes {list(field_dims)} "
                f"(sum {rows}): " + "; ".join(sorted(problems))
            )
        model = cls(field_dims, embed_dim)
        model.load_state_dict(state)
        return model.eval()


def to_rating(raw: torch.Tensor, output: Output) -> torch.Tensor:
    """Raw scores -> ratings in [1, 10]: the score itself (``raw``, the Boostcamp baseline) or
    ``1 + 9 * sigmoid(score)`` (``sigmoid``, pytorch-fm's probability), then clipped."""
    rating = raw if output == "raw" else RATING_MIN + (RATING_MAX - RATING_MIN) * raw.sigmoid()
    return rating.clamp(RATING_MIN, RATING_MAX)


class CatalogueRanker:
    """Ranks every book of a catalogue for one user without the generic forward.

    With the user's fields U fixed, an FFM score splits into a user-only part (the same for
    every book, irrelevant to ranking), a book-only part (precomputed here) and the cross
    terms sum_{i in U, j in B} <v(x_i, j), v(x_j, i)>. For each book field j the cross terms
    are one matrix-vector product over that field's distinct values (a contiguous slice of
    the embedding table), then a gather per book: memory stays at the model's own size.
    """

    def __init__(
        self,
        model: FieldAwareFactorizationMachine,
        user_fields: Sequence[int],
        book_fields: Sequence[int],
        books: torch.Tensor,
    ) -> None:
        """``books``: long [N_books, len(book_fields)], each book's per-field indices."""
        self.model = model
        self.user_fields = list(user_fields)
        self.book_fields = list(book_fields)
        offsets = model.linear.offsets
        self.book_values = books  # per-field value indices, offsets not added
        with torch.inference_mode():
            self.book_part = self._book_only(books + offsets[self.book_fields])

    def _book_only(self, rows: torch.Tensor) -> torch.Tensor:
        """Linear terms of the book fields plus interactions among them: [N_books]."""
        tables = self.model.ffm.embeddings
        score = self.model.linear.fc(rows).sum(dim=(1, 2))
        for a, field_a in enumerate(self.book_fields):
            for b in range(a + 1, len(self.book_fields)):
                field_b = self.book_fields[b]
                left = tables[field_b](rows[:, a])
                right = tables[field_a](rows[:, b])
                score += (left * right).sum(dim=1)
        return score

    @torch.inference_mode()
    def scores(self, user: torch.Tensor) -> torch.Tensor:
        """Ranking scores of every book for one user's per-field indices (long [F]): [N_books]."""
        tables = self.model.ffm.embeddings
        offsets = self.model.linear.offsets
        dims = self.model.field_dims
        score = self.book_part.clone()
        for position, field_j in enumerate(self.book_fields):
            start = int(offsets[field_j])
            cross = torch.zeros(dims[field_j])
            for field_i in self.user_fields:
                user_vector = tables[field_j].weight[int(user[field_i]) + int(offsets[field_i])]
                cross += tables[field_i].weight[start : start + dims[field_j]] @ user_vector
            score += cross[self.book_values[:, position]]
        return score
