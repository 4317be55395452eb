"""The stored book-rating model: an FFM, its featuriser and the book catalogue, together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models.artifact import Artifact, save_artifact
from models.books import BookCatalogue, BookFeaturizer
from models.ffm import CatalogueRanker, FieldAwareFactorizationMachine, Output, to_rating
from models.names import BOOK_RATING

COLD_REASONS = {
    (False, True): "unknown_user",
    (True, False): "unknown_book",
    (False, False): "unknown_user_and_book",
}


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

    def save(self, metadata: dict[str, Any], name: str = BOOK_RATING) -> str:
        """Store as one artifact: state_dict + featuriser arrays + catalogue; return the tag."""

        def write_files(directory: Any) -> None:
            self.featurizer.save(directory)
            self.catalogue.save(directory)

        full = {
            "task": BOOK_RATING,
            "layout": self.featurizer.layout,
            "fields": list(self.featurizer.fields),
            "field_dims": list(self.featurizer.field_dims),
            "embed_dim": int(self.model.ffm.embeddings[0].embedding_dim),
            "output": self.output,
            "global_mean": self.catalogue.global_mean,
            **metadata,
        }
        return save_artifact(
            name, full, state_dict=self.model.state_dict(), write_files=write_files
        )

    @classmethod
    def load(cls, artifact: Artifact) -> BookRatingModel:
        featurizer = BookFeaturizer.load(artifact.path)
        model = FieldAwareFactorizationMachine.from_state_dict(
            artifact.state_dict(), featurizer.field_dims
        )
        return cls(
            model, featurizer, BookCatalogue.load(artifact.path), artifact.metadata["output"]
        )

    @torch.inference_mode()
    def ratings(self, x: np.ndarray) -> np.ndarray:
        """Ratings in [1, 10] for per-field indices [N, F]."""
        return to_rating(self.model(torch.from_numpy(x)), self.output).numpy()

    def rate(self, pairs: list[tuple[int, str]]) -> list[dict[str, Any]]:
        """Rating, cold-start flag and reason, and book information for (user_id, isbn) pairs."""
        if not pairs:
            return []
        user_ids, isbns = zip(*pairs, strict=True)
        encoded = self.featurizer.encode(user_ids, isbns)
        known = encoded.user_known & encoded.book_known
        rated = np.zeros(len(pairs))
        if known.any():
            rated[known] = self.ratings(encoded.x[known])
        answers = []
        for i, (user_id, isbn) in enumerate(pairs):
            reason = (
                None if known[i] else COLD_REASONS[(encoded.user_known[i], encoded.book_known[i])]
            )
            book = self.featurizer.isbn_index.get(isbn, -1) if encoded.book_known[i] else -1
            rating = float(rated[i]) if known[i] else self.catalogue.fallback(book)
            answers.append(
                {
                    "user_id": user_id,
                    "isbn": isbn,
                    "rating": rating,
                    "cold_start": not known[i],
                    "reason": reason,
                    "book": self.catalogue.info(isbn),
                }
            )
        return answers

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
