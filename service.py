"""model_bundle: the one service users call, composing one runner service per model."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import bentoml
import numpy as np
from pydantic import Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from starlette.middleware.cors import CORSMiddleware

from model_bundle.answers import feature_matrix, labelled, mask_prediction
from model_bundle.catalogue import BOOK_RATING, MASK_CLASSIFIER
from model_bundle.http.access import ApiKeyAuth, cors_options
from model_bundle.http.guards import (
    MAX_IMAGE_PIXELS,
    BodySizeLimit,
    ConciseClientErrors,
    UploadGuard,
)
from model_bundle.http.openapi import CorrectedOpenApi
from model_bundle.http.overload import LoadShedding
from model_bundle.http.web_page import WebPage
from model_bundle.runner_client import BatchingGate, batching_enabled, call_runner
from model_bundle.schemas import (
    MAX_IMAGES,
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
    MaskPrediction,
    MaskPredictions,
    RecommendationRequest,
    Recommendations,
    ServedModels,
)
from models.mask.contract import Preprocessing, resize
from models.mask.images import InvalidImageError, load_rgb
from models.tabular.contract import CREDIT, IRIS, TabularTask
from runners.books import BooksRunner
from runners.config import tracing
from runners.credit import CreditRunner
from runners.iris import IrisRunner
from runners.mask import MaskRunner


def invalid_upload(loc: tuple[str | int, ...], reason: str) -> ValidationError:
    """A 400 shaped like every other validation error: the field, the problem."""
    error = PydanticCustomError("invalid_image", "{reason}", {"reason": reason})
    return ValidationError.from_exception_data(
        "image upload", [InitErrorDetails(type=error, loc=loc, input="<upload>")]
    )


def resized_uploads(uploads: Sequence[Path], prep: Preprocessing, field: str) -> np.ndarray:
    """Decode and resize uploaded files: uint8 [N, H, W, 3], or a 400 naming the bad one."""
    images = []
    for index, upload in enumerate(uploads):
        try:
            images.append(resize(load_rgb(upload.read_bytes(), MAX_IMAGE_PIXELS), prep))
        except InvalidImageError as error:
            loc = (field,) if field == "image" else (field, index)
            raise invalid_upload(loc, str(error)) from None
    return np.stack(images)


@bentoml.asgi_app(WebPage(), path="/ui", name="web_page")
@bentoml.service(name="model_bundle", workers=1, traffic={"timeout": 30}, tracing=tracing())
class ModelBundle:
    credit = bentoml.depends(CreditRunner)
    iris = bentoml.depends(IrisRunner)
    books = bentoml.depends(BooksRunner)
    mask = bentoml.depends(MaskRunner)

    def __init__(self) -> None:
        self._described: dict[str, dict[str, Any]] = {}
        self._batching = BatchingGate(enabled=batching_enabled())
        ConciseClientErrors.install()  # here: BentoML configures logging before it builds us

    async def __is_ready__(self) -> bool:
        """Ready when every runner answers its readiness probe. BentoML asks them too, after
        this, but turns a refused connection (a runner being restarted) into a 500; here it is
        a plain "not ready" (503)."""

        async def ready(runner: Any) -> bool:
            try:
                return await runner.is_ready(timeout=5)
            except (aiohttp.ClientError, OSError):
                return False

        runners = (self.credit, self.iris, self.books, self.mask)
        return all(await asyncio.gather(*(ready(runner) for runner in runners)))

    async def _predict(
        self, runner: Any, task: TabularTask, rows: Sequence[Mapping[str, float]]
    ) -> list[dict[str, Any]]:
        probabilities, tag = await asyncio.gather(
            self._batching.call(runner, "predict_proba", feature_matrix(rows, task)),
            self._tag(runner, task.name),
        )
        return labelled(probabilities, task, tag)

    async def _describe(self, runner: Any, name: str) -> dict[str, Any]:
        """What a runner serves, asked once: a runner's model is fixed for its lifetime."""
        if name not in self._described:
            self._described[name] = await call_runner(runner.to_async.describe)
        return self._described[name]

    async def _tag(self, runner: Any, name: str) -> str:
        return (await self._describe(runner, name))["tag"]

    async def _classify(self, uploads: Sequence[Path], field: str) -> list[MaskPrediction]:
        served = await self._describe(self.mask, MASK_CLASSIFIER)
        prep = Preprocessing.from_metadata(served["preprocessing"])
        images = await asyncio.to_thread(resized_uploads, uploads, prep, field)
        probabilities = await self._batching.call(self.mask, "classify", images)
        return [mask_prediction(p, served["tag"]) for p in probabilities]

    async def _rate(self, pairs: list[tuple[int, str]]) -> list[BookRating]:
        ratings, tag = await asyncio.gather(
            self._batching.call(self.books, "rate", pairs), self._tag(self.books, BOOK_RATING)
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
            call_runner(self.books.to_async.recommend, user_id=user_id, k=k),
            self._tag(self.books, BOOK_RATING),
        )
        return Recommendations(**answer, model=tag)

    @bentoml.api
    async def classify_mask(self, image: Path) -> MaskPrediction:
        """Mask, gender and age from a face photo (multipart field ``image``: JPEG, PNG, WebP,
        BMP)."""
        [prediction] = await self._classify([image], "image")
        return prediction

    @bentoml.api
    async def classify_masks(
        self, images: Annotated[list[Path], Field(min_length=1, max_length=MAX_IMAGES)]
    ) -> MaskPredictions:
        """``classify_mask`` for 1 to 32 photos (repeated field ``images``), answers in order."""
        return MaskPredictions(predictions=await self._classify(images, "images"))

    @bentoml.api
    async def models(self) -> ServedModels:
        """Every served model: store tag, creation time, training metrics, training data hash."""
        described = await asyncio.gather(
            *(
                call_runner(runner.to_async.describe)
                for runner in (self.credit, self.iris, self.books, self.mask)
            )
        )
        return ServedModels(models=described)


# Outermost first: CORS (answers browsers' preflight without a key), API keys, load
# shedding, then the body guards. BentoML's access log, metrics and timeout wrap them all.
if (cors := cors_options()) is not None:
    ModelBundle.add_asgi_middleware(CORSMiddleware, **cors)
ModelBundle.add_asgi_middleware(ApiKeyAuth)
ModelBundle.add_asgi_middleware(LoadShedding)
ModelBundle.add_asgi_middleware(CorrectedOpenApi, service=ModelBundle)
ModelBundle.add_asgi_middleware(BodySizeLimit)
ModelBundle.add_asgi_middleware(
    UploadGuard,
    routes={api.route: set(api.input_spec.multipart_fields) for api in ModelBundle.apis.values()},
)
