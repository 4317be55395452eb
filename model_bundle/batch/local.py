"""The in-process engine: the model loaded from the store by the runners' own code.

Each predictor calls exactly what its runner's endpoint calls
(``TabularClassifier.predict_proba``, ``BookRatingModel.rate_arrays`` / ``recommend``,
``MaskClassifier.classify``), on batches of ``batch_size`` rows, so a file and the API
give the same predictions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from model_bundle.batch.tasks import MaskImages, TabularRows, Task
from model_bundle.settings import settings
from models.artifact import Artifact
from models.books.model import BookRatingModel, RatedPairs
from models.mask.network import MaskClassifier
from models.tabular.network import load_classifier

Predict = Callable[[Any], Any]


def in_batches(predict: Callable[[np.ndarray], np.ndarray], size: int) -> Predict:
    """``predict`` over an array, ``size`` rows at a time, results concatenated."""

    def batched(inputs: np.ndarray) -> np.ndarray:
        parts = [predict(inputs[start : start + size]) for start in range(0, len(inputs), size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    return batched


@dataclasses.dataclass
class LocalEngine:
    """A model from the store (``tag``, default the one the runners serve, see
    model_bundle.settings) and the task adapted to it."""

    task: Task
    batch_size: int = 4096
    tag: str = ""
    threads: int = 1
    predict: Predict = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        torch.set_num_threads(self.threads)
        artifact = Artifact.load(self.tag or settings.model_tag(self.task.model))
        self.tag = artifact.tag
        if isinstance(self.task, TabularRows):
            classifier = load_classifier(artifact, self.task.task)
            self.predict = in_batches(classifier.predict_proba, self.batch_size)
        elif isinstance(self.task, MaskImages):
            mask = MaskClassifier(artifact)
            self.task = dataclasses.replace(self.task, prep=mask.prep)
            self.predict = in_batches(mask.classify, self.batch_size)
        elif self.task.mode == "recommend":
            books = BookRatingModel.load(artifact)
            k = self.task.k  # type: ignore[attr-defined]
            self.predict = lambda users: [books.recommend(int(u), k) for u in users]
        else:
            books = BookRatingModel.load(artifact)
            self.predict = lambda pairs: rate_in_batches(books, pairs, self.batch_size)

    def __call__(self, inputs: Any) -> Any:
        return self.predict(inputs)


def rate_in_batches(
    books: BookRatingModel, pairs: tuple[np.ndarray, list[str]], size: int
) -> RatedPairs:
    user_ids, isbns = pairs
    parts = [
        books.rate_arrays(user_ids[start : start + size], isbns[start : start + size])
        for start in range(0, len(isbns), size)
    ]
    if not parts:
        return RatedPairs(np.zeros(0), np.zeros(0, bool), np.zeros(0, bool))
    return RatedPairs(
        *(np.concatenate(arrays) for arrays in zip(*map(astuple, parts), strict=True))
    )


def astuple(rated: RatedPairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return rated.ratings, rated.user_known, rated.book_known
