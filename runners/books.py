"""Runner for the book-rating FFM: batched pair ratings and top-k recommendations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import bentoml

from model_bundle.catalogue import BOOK_RATING
from model_bundle.schemas import MAX_BATCH_ITEMS
from runners.base import JsonDict, JsonList, ModelRunner, runner

if TYPE_CHECKING:
    from models.artifact import Artifact

MAX_LATENCY_MS = 1000


@runner(BOOK_RATING)
class BooksRunner(ModelRunner):
    def load(self, artifact: Artifact) -> None:
        from models.books.model import BookRatingModel

        self.books = BookRatingModel.load(artifact)

    def warm_up(self) -> None:
        self.books.rate([(0, "")])

    # A rate_books request (up to MAX_BATCH_ITEMS pairs) goes in one forward pass.
    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_ITEMS, max_latency_ms=MAX_LATENCY_MS)
    def rate(self, pairs: list[tuple[int, str]]) -> JsonList:
        """Rating (1..10), cold-start flag and reason, and book details per (user_id, isbn)."""
        return self.books.rate(pairs)

    @bentoml.api
    def recommend(self, user_id: int, k: int) -> JsonDict:
        """The user's top-k unrated books (popular ones for an unknown user)."""
        return self.books.recommend(user_id, k)
