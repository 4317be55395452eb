"""model_bundle: the one service users call, composing one runner service per model.

This file is the API's table of contents: the runners it depends on, its endpoints, and the
order of the middlewares around them. The work is done in ``model_bundle/`` (schemas,
answers, uploads, the HTTP layers) and in the runners.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import bentoml
import numpy as np
from pydantic import Field
from starlette.middleware.cors import CORSMiddleware

from model_bundle.answers import feature_matrix, labelled, mask_prediction, split_embedding
from model_bundle.catalogue import BOOK_RATING, CATALOGUE, MASK_CLASSIFIER
from model_bundle.explanations import (
    BookRatingExplained,
    CreditExplained,
    IrisExplained,
    MaskExplained,
    explained,
)
from model_bundle.garbage import tune_garbage_collector
from model_bundle.http.access import ApiKeyAuth, cors_options
from model_bundle.http.guards import BodySizeLimit, ConciseClientErrors, UploadGuard
from model_bundle.http.openapi import serve_corrected_document
from model_bundle.http.overload import LoadShedding
from model_bundle.http.web_page import WebPage
from model_bundle.monitoring.front import FrontMonitor
from model_bundle.runner_client import BatchingGate, call_runner
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
    DriftReport,
    DriftRequest,
    Feedback,
    FeedbackAnswer,
    IrisMeasurements,
    IrisPrediction,
    MaskPrediction,
    MaskPredictions,
    RecommendationRequest,
    Recommendations,
    ServedModels,
)
from model_bundle.settings import settings
from model_bundle.uploads import resized_uploads
from model_bundle.versions.admin_http import AdminApi
from model_bundle.versions.routing import Route
from model_bundle.versions.serving import Versions
from model_bundle.versions.shadow import rating_difference, same_class, top_k_overlap
from models.mask.contract import Preprocessing
from models.tabular.contract import CREDIT_TASK, IRIS_TASK, TabularTask
from runners.books import BooksRunner
from runners.credit import CreditRunner
from runners.iris import IrisRunner
from runners.mask import MAX_BATCH_IMAGES, MaskRunner

# A runner starts in seconds (torch, BentoML, the model); a live one answers its probe at once.
RUNNER_READY_TIMEOUT_S = 2


@bentoml.asgi_app(WebPage(), path="/ui", name="web_page")
@bentoml.service(
    name="model_bundle",
    workers=1,
    traffic={"timeout": settings.request_timeout_s},
    tracing=settings.tracing_config(),
)
class ModelBundle:
    credit = bentoml.depends(CreditRunner)
    iris = bentoml.depends(IrisRunner)
    books = bentoml.depends(BooksRunner)
    mask = bentoml.depends(MaskRunner)

    def __init__(self) -> None:
        tune_garbage_collector(settings.gc_young_threshold)
        self._batching = BatchingGate(enabled=settings.batching)
        self.monitor = FrontMonitor()
        self.versions = Versions(
            {entry.name: runner for entry, runner in self._served()},
            feedback_of=self.monitor.monitor.live_figures,
        )
        ConciseClientErrors.install()  # here: BentoML configures logging before it builds us

    def _runners(self) -> list[Any]:
        """The runners this service depends on (BentoML's list), in catalogue order."""
        return [getattr(self, attribute) for attribute in RUNNERS]

    def _served(self) -> list[tuple[Any, Any]]:
        """(catalogue entry, runner) of each served model."""
        return [(CATALOGUE[served_by(a)], getattr(self, a)) for a in RUNNERS]

    async def __is_ready__(self) -> bool:
        """Ready when every runner answers its readiness probe. BentoML asks them too, after
        this, but turns a refused connection (a runner being restarted) into a 500; here it is
        a plain "not ready" (503).

        A healthy runner answers in milliseconds. A killed one's socket stays open (the
        arbiter holds it), so a probe with a long timeout would wait for the restarted runner
        and call it ready; RUNNER_READY_TIMEOUT_S is shorter than a runner takes to start."""

        # Here, not at the top: every process of the server imports this module (`bentoml
        # serve` before it starts any worker, and each runner), and only the front calls.
        import aiohttp

        async def ready(runner: Any) -> bool:
            try:
                return await runner.is_ready(timeout=RUNNER_READY_TIMEOUT_S)
            except (aiohttp.ClientError, OSError):
                return False

        return all(await asyncio.gather(*(ready(runner) for runner in self._runners())))

    async def _predict(
        self, runner: Any, task: TabularTask, rows: Sequence[Mapping[str, float]]
    ) -> list[dict[str, Any]]:
        features = feature_matrix(rows, task)

        async def call(route: Route) -> Any:
            return await self._batching.call(runner, f"predict_proba_{route.slot}", features)

        probabilities, route = await self.versions[task.name].serve(call, same_class)
        return self.monitor.tabular(task, rows, labelled(probabilities, task, route.tag))

    async def _classify(self, uploads: Sequence[Path], field: str) -> list[MaskPrediction]:
        resized: dict[str, Any] = {}  # by preprocessing: versions may differ in input size
        embeddings: dict[str, np.ndarray] = {}  # by version: the drift components

        async def call(route: Route) -> Any:
            prep = Preprocessing.from_metadata(route.summary["preprocessing"])
            key = json.dumps(route.summary["preprocessing"], sort_keys=True)
            if key not in resized:
                resized[key] = await asyncio.to_thread(resized_uploads, uploads, prep, field)
            pixels = resized[key].pixels
            output = await self._batching.call(
                self.mask, f"classify_{route.slot}", pixels, max_items=MAX_BATCH_IMAGES
            )
            probabilities, embeddings[route.tag] = split_embedding(output)
            return probabilities

        answer, route = await self.versions[MASK_CLASSIFIER.name].serve(call, same_class)
        key = json.dumps(route.summary["preprocessing"], sort_keys=True)
        answers = [mask_prediction(p, route.tag) for p in answer]
        return self.monitor.masks(answers, resized[key].statistics, embeddings[route.tag])

    async def _rate(self, pairs: list[tuple[int, str]]) -> list[BookRating]:
        async def call(route: Route, indices: list[int]) -> Any:
            chosen = [pairs[i] for i in indices]
            return await self._batching.call(self.books, f"rate_{route.slot}", chosen)

        answers = await self.versions[BOOK_RATING.name].serve_keyed(
            [user for user, _ in pairs], call, rating_difference
        )
        return self.monitor.ratings([BookRating(**r, model=route.tag) for r, route in answers])

    @bentoml.api(input_spec=CreditFeatures)
    async def predict_credit(self, **features: float) -> CreditPrediction:
        """Is a company healthy (0) or unhealthy (1), from five financial ratios."""
        [prediction] = await self._predict(self.credit, CREDIT_TASK, [features])
        return CreditPrediction(**prediction)

    @bentoml.api(input_spec=CreditBatch)
    async def predict_credit_batch(self, items: list[CreditFeatures]) -> CreditBatchPrediction:
        """``predict_credit`` for 1 to 1000 (MAX_BATCH_ITEMS) companies at once, answers in
        request order."""
        predictions = await self._predict(
            self.credit, CREDIT_TASK, [item.model_dump() for item in items]
        )
        return CreditBatchPrediction(predictions=[CreditPrediction(**p) for p in predictions])

    @bentoml.api(input_spec=IrisMeasurements)
    async def classify_iris(self, **measurements: float) -> IrisPrediction:
        """Iris species from sepal and petal length and width in cm."""
        [prediction] = await self._predict(self.iris, IRIS_TASK, [measurements])
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

        async def call(route: Route) -> Any:
            recommend = self.books.to_async.recommend
            return await call_runner(recommend, version=route.tag, user_id=user_id, k=k)

        answer, route = await self.versions[BOOK_RATING.name].serve(
            call, top_k_overlap, key=user_id
        )
        return Recommendations(**answer, model=route.tag)

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

    async def _explain_row(self, runner: Any, task: TabularTask, row: Mapping[str, float]) -> Any:
        [features] = feature_matrix([row], task).tolist()

        async def call(route: Route) -> Any:
            return await call_runner(runner.to_async.explain, version=route.tag, features=features)

        answer, route = await explained(self.versions[task.name], call)
        answers = labelled(np.array([answer["probabilities"]]), task, route.tag)
        [prediction] = self.monitor.tabular(task, [row], answers)  # an answer like any other
        return prediction, answer["explanation"]

    @bentoml.api(input_spec=CreditFeatures)
    async def explain_credit(self, **features: float) -> CreditExplained:
        """``predict_credit`` with each feature's integrated-gradients attribution to the
        predicted class's logit, against the training range's midpoint."""
        prediction, explanation = await self._explain_row(self.credit, CREDIT_TASK, features)
        return CreditExplained(**prediction, explanation=explanation)

    @bentoml.api(input_spec=IrisMeasurements)
    async def explain_iris(self, **measurements: float) -> IrisExplained:
        """``classify_iris`` with each measurement's integrated-gradients attribution."""
        prediction, explanation = await self._explain_row(self.iris, IRIS_TASK, measurements)
        return IrisExplained(species=prediction.pop("label"), **prediction, explanation=explanation)

    @bentoml.api(input_spec=BookPair)
    async def explain_book_rating(self, user_id: int, isbn: str) -> BookRatingExplained:
        """``rate_book`` with the FFM's score split into its terms (bias, one per field, one
        per pair of fields), the largest in words; a cold start names its fallback."""

        async def call(route: Route) -> Any:
            explain = self.books.to_async.explain_rating
            return await call_runner(explain, version=route.tag, user_id=user_id, isbn=isbn)

        answer, route = await explained(self.versions[BOOK_RATING.name], call, key=user_id)
        rating = BookRatingExplained(**answer, model=route.tag)
        self.monitor.ratings([rating])  # an answer like any other: its prediction id set
        return rating

    @bentoml.api
    async def explain_mask(self, image: Path) -> MaskExplained:
        """``classify_mask`` with a Grad-CAM heat map of where the network looked, over the
        resized photo (PNG, base64)."""

        statistics: dict[str, list[dict[str, float]]] = {}  # by the version that answered

        async def call(route: Route) -> Any:
            prep = Preprocessing.from_metadata(route.summary["preprocessing"])
            uploads = await asyncio.to_thread(resized_uploads, [image], prep, "image")
            statistics[route.tag] = uploads.statistics
            return await call_runner(
                self.mask.to_async.explain, version=route.tag, image=uploads.pixels[0]
            )

        answer, route = await explained(self.versions[MASK_CLASSIFIER.name], call)
        [prediction] = self.monitor.masks(
            [mask_prediction(np.array(answer["probabilities"]), route.tag)],
            statistics[route.tag],
        )
        return MaskExplained(**prediction.model_dump(), explanation=answer["explanation"])

    @bentoml.api(input_spec=Feedback)
    async def feedback(
        self, prediction_id: str, label: str | None = None, rating: float | None = None
    ) -> FeedbackAnswer:
        """The ground truth of an earlier answer (its ``prediction_id``): ``label`` for a
        classifier, ``rating`` (1..10) for a book rating; updates live accuracy / RMSE."""
        return FeedbackAnswer(**self.monitor.feedback(prediction_id, label, rating))

    @bentoml.api(input_spec=DriftRequest)
    async def drift(self, model: str | None = None) -> DriftReport:
        """Data drift, prediction shift and live accuracy per model over this replica's
        window (docs/MONITORING-GUIDE.md)."""
        await self.versions.learn_routings()  # a model not asked yet reports its primary too
        return DriftReport(**await asyncio.to_thread(self.monitor.report, model, self.versions))

    @bentoml.api
    async def models(self) -> ServedModels:
        """Every served model: its primary's store tag, creation time, training metrics and
        training data hash, and each of its versions' role (primary, canary or shadow
        candidate, previous), and when and by whom it was promoted."""
        return ServedModels(models=await self.versions.describe())


def served_by(attribute: str) -> int:
    """Where the model a dependency serves stands in the catalogue."""
    return CATALOGUE.index(ModelBundle.dependencies[attribute].on.inner.entry)


RUNNERS = sorted(ModelBundle.dependencies, key=served_by)
serve_corrected_document(ModelBundle)  # /docs.json and the Bento's apis/openapi.yaml


# Outermost first: CORS (answers browsers' preflight without a key), the admin API (its own
# keys), API keys, load shedding, then the body guards. BentoML's access log, metrics and
# timeout wrap them all.
if (cors := cors_options()) is not None:
    ModelBundle.add_asgi_middleware(CORSMiddleware, **cors)
ModelBundle.add_asgi_middleware(AdminApi)
ModelBundle.add_asgi_middleware(ApiKeyAuth)
ModelBundle.add_asgi_middleware(LoadShedding)
ModelBundle.add_asgi_middleware(BodySizeLimit)
ModelBundle.add_asgi_middleware(
    UploadGuard,
    routes={api.route: set(api.input_spec.multipart_fields) for api in ModelBundle.apis.values()},
)
