"""The stored book-rating model: an FFM, its featuriser and the book catalogue, together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model_bundle.catalogue import BOOK_RATING
from models.artifact import Artifact, save_artifact
from models.books.contract import COLD_REASONS
from models.books.featurizer import BookCatalogue, BookFeaturizer
from models.books.network import CatalogueRanker, FieldAwareFactorizationMachine, Output, to_rating


@dataclass(frozen=True)
class RatedPairs:
    """Ratings [N] (float64, 1..10) and which users and books the model knows [N]."""

    ratings: np.ndarray
    user_known: np.ndarray
    book_known: np.ndarray

    @property
    def cold_start(self) -> np.ndarray:
        return ~(self.user_known & self.book_known)

    def reasons(self) -> list[str | None]:
        """Why each pair is a cold start (None when it is not)."""
        return [
            None if user and book else COLD_REASONS[(user, book)]
            for user, book in zip(self.user_known.tolist(), self.book_known.tolist(), strict=True)
        ]


@dataclass
class BookRatingModel:
    model: FieldAwareFactorizationMachine
    featurizer: BookFeaturizer
    catalogue: BookCatalogue
    output: Output

    def __post_init__(self) -> None:
        self.model.eval()
        self.ranker = CatalogueRanker(
            self.model,
            self.featurizer.user_fields,
            self.featurizer.book_fields,
            torch.from_numpy(self.featurizer.book_rows),
        )

    def save(self, metadata: dict[str, Any], name: str = BOOK_RATING.name) -> str:
        """Store as one artifact: state_dict + featuriser arrays + catalogue; return the tag."""
        full = {
            "task": BOOK_RATING.name,
            "layout": self.featurizer.layout,
            "fields": list(self.featurizer.fields),
            "field_dims": list(self.featurizer.field_dims),
            "embed_dim": int(self.model.ffm.embeddings[0].embedding_dim),
            "output": self.output,
            "global_mean": self.catalogue.global_mean,
            **metadata,
        }
        return save_artifact(
            name, full, state_dict=self.model.state_dict(), write_files=self.write_tables
        )

    def write_tables(self, directory: Path) -> None:
        """The plain files beside the weights: the featuriser's index arrays, the catalogue."""
        self.featurizer.save(directory)
        self.catalogue.save(directory)

    @classmethod
    def from_tables(
        cls, state_dict: dict[str, torch.Tensor], directory: Path, output: Output
    ) -> BookRatingModel:
        """The model from weights and a directory ``write_tables`` wrote."""
        featurizer = BookFeaturizer.load(directory)
        model = FieldAwareFactorizationMachine.from_state_dict(state_dict, featurizer.field_dims)
        return cls(model, featurizer, BookCatalogue.load(directory), output)

    @classmethod
    def load(cls, artifact: Artifact) -> BookRatingModel:
        return cls.from_tables(artifact.state_dict(), artifact.path, artifact.metadata["output"])

    @torch.inference_mode()
    def ratings(self, x: np.ndarray) -> np.ndarray:
        """Ratings in [1, 10] for per-field indices [N, F]."""
        return to_rating(self.model(torch.from_numpy(x)), self.output).numpy()

    def rate_arrays(self, user_ids: Sequence[int], isbns: Sequence[str]) -> RatedPairs:
        """Ratings of (user_id, isbn) pairs as arrays: the model's where it knows both, else
        the fallback (the book's mean training rating, or the global mean)."""
        encoded = self.featurizer.encode(user_ids, isbns)
        known = encoded.user_known & encoded.book_known
        isbn_field = self.featurizer.fields.index("isbn")  # its value is the book's index
        books = np.where(encoded.book_known, encoded.x[:, isbn_field], -1)
        rated = self.catalogue.fallbacks(books)
        if known.any():
            rated[known] = self.ratings(encoded.x[known])
        return RatedPairs(rated, encoded.user_known, encoded.book_known)

    def rate(self, pairs: list[tuple[int, str]]) -> list[dict[str, Any]]:
        """Rating, cold-start flag and reason, and book information for (user_id, isbn) pairs."""
        if not pairs:
            return []
        user_ids, isbns = zip(*pairs, strict=True)
        rated = self.rate_arrays(user_ids, isbns)
        reasons = rated.reasons()
        return [
            {
                "user_id": user_id,
                "isbn": isbn,
                "rating": rating,
                "cold_start": reason is not None,
                "reason": reason,
                "book": self.catalogue.info(isbn),
            }
            for user_id, isbn, rating, reason in zip(
                user_ids, isbns, rated.ratings.tolist(), reasons, strict=True
            )
        ]

    @torch.inference_mode()
    def recommend(self, user_id: int, k: int) -> dict[str, Any]:
        """Top-k books for a user, excluding books they rated; popular books for a cold start."""
        encoded = self.featurizer.encode([user_id], [""])
        if not encoded.user_known[0]:
            top = self.catalogue.popular()[:k]
            ratings = [self.catalogue.fallback(int(b)) for b in top]
            return {"user_id": user_id, "cold_start": True, "books": self._books(top, ratings)}
        user = torch.from_numpy(encoded.x[0])
        scores = self.ranker.scores(user)
        user_index = self.featurizer.user_index[user_id]
        scores[torch.from_numpy(self.catalogue.rated_by(user_index))] = -torch.inf
        scores[torch.from_numpy(~(self.featurizer.book_rows >= 0).all(axis=1))] = -torch.inf
        top = torch.topk(scores, min(k, int(torch.isfinite(scores).sum()))).indices.numpy()
        x = np.repeat(encoded.x, len(top), axis=0)
        x[:, self.featurizer.book_fields] = self.featurizer.book_rows[top]
        return {
            "user_id": user_id,
            "cold_start": False,
            "books": self._books(top, self.ratings(x).tolist()),
        }

    def _books(self, books: np.ndarray, ratings: list[float]) -> list[dict[str, Any]]:
        answers = []
        for book, rating in zip(books.tolist(), ratings, strict=True):
            isbn = str(self.featurizer.isbns[book])
            info = self.catalogue.info(isbn) or {}
            answers.append(
                {
                    "isbn": isbn,
                    "title": info.get("title"),
                    "author": info.get("author"),
                    "image_url": info.get("image_url"),
                    "predicted_rating": float(rating),
                }
            )
        return answers
