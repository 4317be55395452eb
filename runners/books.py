"""Runner for the book-rating FFM: batched pair ratings and top-k recommendations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import bentoml

from model_bundle.catalogue import BOOK_RATING
from model_bundle.schemas import MAX_BATCH_ITEMS
from runners.base import JsonDict, JsonList, ModelRunner, batchable, runner
from runners.explain import ExplainsRatings

if TYPE_CHECKING:
    from models.artifact import Artifact
    from models.books.model import BookRatingModel

MAX_LATENCY_MS = 1000


@runner(BOOK_RATING)
class BooksRunner(ExplainsRatings, ModelRunner):
    def load(self, artifact: Artifact) -> BookRatingModel:
        from models.books.model import BookRatingModel

        return BookRatingModel.load(artifact)

    def warm_up(self, model: BookRatingModel) -> None:
        model.rate([(0, "")])

    # A rate_books request (up to MAX_BATCH_ITEMS pairs) goes in one forward pass.
    @batchable(max_batch_size=MAX_BATCH_ITEMS, max_latency_ms=MAX_LATENCY_MS)
    def rate(self, model: BookRatingModel, pairs: list[tuple[int, str]]) -> JsonList:
        """Rating (1..10), cold-start flag and reason, and book details per (user_id, isbn)."""
        return model.rate(pairs)

    @bentoml.api
    def recommend(self, version: str, user_id: int, k: int) -> JsonDict:
        """The user's top-k unrated books (popular ones for an unknown user), by ``version``."""
        return self.version(version).recommend(user_id, k)
