"""The honest competitor: one FastAPI + uvicorn process serving the same models directly.

    python -m scripts.benchmarks.baseline_server [--port 3001]

Same artifacts (the store's ``:latest``), same preprocessing code, same JSON contract for
``predict_credit``, ``classify_iris``, ``rate_book`` and ``classify_mask``; models loaded once,
no batching, no process hop. torch keeps its default threads, as a hand-made server would.
Used by ``scripts.benchmarks.bench``; not part of the bundle.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, HTTPException, UploadFile

from model_bundle.answers import feature_matrix, labelled, mask_prediction
from model_bundle.catalogue import BOOK_RATING, MASK_CLASSIFIER
from model_bundle.schemas import (
    BookPair,
    BookRating,
    CreditFeatures,
    CreditPrediction,
    IrisMeasurements,
    IrisPrediction,
    MaskPrediction,
)
from models.artifact import Artifact
from models.books.model import BookRatingModel
from models.mask.contract import resize
from models.mask.images import InvalidImageError, load_rgb
from models.mask.network import MaskClassifier
from models.tabular.contract import CREDIT_TASK, IRIS_TASK
from models.tabular.network import load_classifier


def create_app() -> FastAPI:
    credit_artifact = Artifact.load(f"{CREDIT_TASK.name}:latest")
    iris_artifact = Artifact.load(f"{IRIS_TASK.name}:latest")
    books_artifact = Artifact.load(f"{BOOK_RATING.name}:latest")
    mask_artifact = Artifact.load(f"{MASK_CLASSIFIER.name}:latest")
    credit = load_classifier(credit_artifact, CREDIT_TASK)
    iris = load_classifier(iris_artifact, IRIS_TASK)
    books = BookRatingModel.load(books_artifact)
    mask = MaskClassifier(mask_artifact)
    app = FastAPI(title="baseline")

    @app.post("/predict_credit")
    def predict_credit(features: CreditFeatures) -> CreditPrediction:
        x = feature_matrix([features.model_dump()], CREDIT_TASK)
        [answer] = labelled(credit.predict_proba(x), CREDIT_TASK, credit_artifact.tag)
        return CreditPrediction(**answer)

    @app.post("/classify_iris")
    def classify_iris(measurements: IrisMeasurements) -> IrisPrediction:
        x = feature_matrix([measurements.model_dump()], IRIS_TASK)
        [answer] = labelled(iris.predict_proba(x), IRIS_TASK, iris_artifact.tag)
        return IrisPrediction(species=answer.pop("label"), **answer)

    @app.post("/rate_book")
    def rate_book(pair: BookPair) -> BookRating:
        [answer] = books.rate([(pair.user_id, pair.isbn)])
        return BookRating(**answer, model=books_artifact.tag)

    @app.post("/classify_mask")
    def classify_mask(image: UploadFile) -> MaskPrediction:
        try:
            pixels = resize(load_rgb(image.file.read()), mask.prep)
        except InvalidImageError as error:
            raise HTTPException(400, str(error)) from None
        [probabilities] = mask.classify(pixels[None])
        return mask_prediction(probabilities, mask_artifact.tag)

    @app.get("/readyz")
    def readyz() -> str:
        return "ok"

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3001)
    args = parser.parse_args()
    uvicorn.run(
        create_app(), host="127.0.0.1", port=args.port, access_log=False, log_level="warning"
    )
