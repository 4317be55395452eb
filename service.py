"""model_bundle: the one service users call, composing one runner service per model."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import bentoml
import numpy as np

from models.credit import CREDIT
from models.iris import IRIS
from models.task import TabularTask
from runners.books import BooksRunner
from runners.credit import CreditRunner
from runners.iris import IrisRunner
from schemas import (
    BookPair,
    BookPairs,
    BookRating,
    BookRatings,
    CreditBatch,
    CreditBatchPrediction,
    CreditFeatures,
    CreditPrediction,
    IrisMeasurements,
    IrisPrediction,
    RecommendationRequest,
    Recommendations,
    ServedModels,
)


def feature_matrix(rows: Sequence[Mapping[str, float]], task: TabularTask) -> np.ndarray:
    """Validated request rows -> float32 [N, F] in the task's feature order."""
    return np.array([[row[name] for name in task.features] for row in rows], dtype=np.float32)


def labelled(probabilities: np.ndarray, task: TabularTask, tag: str) -> list[dict[str, Any]]:
    """Rows of class probabilities -> prediction dicts (label key added by the caller)."""
    predictions = []
    for row in probabilities.tolist():
        class_id = max(range(len(row)), key=row.__getitem__)
        predictions.append(
            {
                "class_id": class_id,
                "label": task.labels[class_id],
                "probability": row[class_id],
                "probabilities": dict(zip(task.labels, row, strict=True)),
                "model": tag,
            }
        )
    return predictions


@bentoml.service(name="model_bundle", workers=1, traffic={"timeout": 60})
class ModelBundle:
    credit = bentoml.depends(CreditRunner)
    iris = bentoml.depends(IrisRunner)
    books = bentoml.depends(BooksRunner)

    def __init__(self) -> None:
        self._tags: dict[str, str] = {}

    async def _predict(
        self, runner: Any, task: TabularTask, rows: Sequence[Mapping[str, float]]
    ) -> list[dict[str, Any]]:
        probabilities, tag = await asyncio.gather(
            runner.to_async.predict_proba(feature_matrix(rows, task)), self._tag(runner, task.name)
        )
        return labelled(probabilities, task, tag)

    async def _tag(self, runner: Any, name: str) -> str:
        """The tag a runner serves, asked once: a runner's model is fixed for its lifetime."""
        if name not in self._tags:
            self._tags[name] = (await runner.to_async.describe())["tag"]
        return self._tags[name]

    async def _rate(self, pairs: list[tuple[int, str]]) -> list[BookRating]:
        ratings, tag = await asyncio.gather(
            self.books.to_async.rate(pairs), self._tag(self.books, "books")
        )
        return [BookRating(**rating, model=tag) for rating in ratings]

    @bentoml.api(input_spec=CreditFeatures)
    async def predict_credit(self, **features: float) -> CreditPrediction:
        """Is a company healthy (0) or unhealthy (1), from five financial ratios."""
        [prediction] = await self._predict(self.credit, CREDIT, [features])
        return CreditPrediction(**prediction)

    @bentoml.api(input_spec=CreditBatch)
    async def predict_credit_batch(self, items: list[CreditFeatures]) -> CreditBatchPrediction:
        """``predict_credit`` for 1 to 1000 companies at once, answers in request order."""
        predictions = await self._predict(
            self.credit, CREDIT, [item.model_dump() for item in items]
        )
        return CreditBatchPrediction(predictions=[CreditPrediction(**p) for p in predictions])

    @bentoml.api(input_spec=IrisMeasurements)
    async def classify_iris(self, **measurements: float) -> IrisPrediction:
        """Iris species from sepal and petal length and width in cm."""
        [prediction] = await self._predict(self.iris, IRIS, [measurements])
        return IrisPrediction(species=prediction.pop("label"), **prediction)

    @bentoml.api(input_spec=BookPair)
    async def rate_book(self, user_id: int, isbn: str) -> BookRating:
        """Predicted rating (1..10) of a book by a user; a cold start answers a fallback."""
        [rating] = await self._rate([(user_id, isbn)])
        return rating

    @bentoml.api(input_spec=BookPairs)
    async def rate_books(self, items: list[BookPair]) -> BookRatings:
        """``rate_book`` for 1 to 1000 (user_id, isbn) pairs, answers in request order."""
        return BookRatings(predictions=await self._rate([(i.user_id, i.isbn) for i in items]))

    @bentoml.api(input_spec=RecommendationRequest)
    async def recommend_books(self, user_id: int, k: int) -> Recommendations:
        """The user's top-k books they have not rated; popular books for an unknown user."""
        answer, tag = await asyncio.gather(
            self.books.to_async.recommend(user_id=user_id, k=k), self._tag(self.books, "books")
        )
        return Recommendations(**answer, model=tag)

    @bentoml.api
    async def models(self) -> ServedModels:
        """Every served model: store tag, creation time, training metrics, training data hash."""
        described = await asyncio.gather(
            *(runner.to_async.describe() for runner in (self.credit, self.iris, self.books))
        )
        return ServedModels(models=described)
