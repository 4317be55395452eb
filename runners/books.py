"""Runner for the book-rating FFM: batched pair ratings and top-k recommendations."""

from __future__ import annotations

import bentoml

from model_bundle.catalogue import BOOK_RATING
from runners.config import (
    RUNNER_SERVICE_CONFIG,
    TORCH_THREADS,
    JsonDict,
    JsonList,
    configured_tag,
)
from runners.drain import DrainBeforeStop

# Pairs per forward pass; a rate_books request of up to 1,000 pairs is split by the batcher.
MAX_BATCH_PAIRS = 1000
MAX_LATENCY_MS = 1000


@bentoml.service(**RUNNER_SERVICE_CONFIG)
class BooksRunner:
    model = bentoml.models.BentoModel(configured_tag(BOOK_RATING))

    def __init__(self) -> None:
        import torch  # not at module level: the front service imports this module

        from models.artifact import Artifact
        from models.books.model import BookRatingModel

        torch.set_num_threads(TORCH_THREADS)
        self.artifact = Artifact.from_store(self.model)
        self.books = BookRatingModel.load(self.artifact)
        self.books.rate([(0, "")])  # warm-up

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_PAIRS, max_latency_ms=MAX_LATENCY_MS)
    def rate(self, pairs: list[tuple[int, str]]) -> JsonList:
        """Rating (1..10), cold-start flag and reason, and book details per (user_id, isbn)."""
        return self.books.rate(pairs)

    @bentoml.api
    def rate_unbatched(self, pairs: list[tuple[int, str]]) -> JsonList:
        """``rate`` past the batcher, for a call with nothing to merge with."""
        return self.books.rate(pairs)

    @bentoml.api
    def recommend(self, user_id: int, k: int) -> JsonDict:
        """The user's top-k unrated books (popular ones for an unknown user)."""
        return self.books.recommend(user_id, k)

    @bentoml.api
    def describe(self) -> JsonDict:
        return self.artifact.summary()


BooksRunner.add_asgi_middleware(DrainBeforeStop)
