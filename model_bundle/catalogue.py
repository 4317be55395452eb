"""The models the bundle serves: one declaration each, that everything listing them iterates.

Torch-free and importing nothing of the bundle, so that any process (the front, a runner,
batch prediction, a script, a test) may read it. What a model *is* (features, labels,
preprocessing) lives in its family's contract under ``models/``; which runner serves it is
said by the runner (``@runner(entry)``) and which runners the front calls by
``service.py``'s ``bentoml.depends``: BentoML knows those lists, so they are not kept here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Family = Literal["tabular", "books", "mask"]


@dataclass(frozen=True)
class ServedModel:
    """One served model.

    ``name`` is its BentoML store name, the ``name`` of every ``name:version`` tag and of the
    setting ``MODEL_BUNDLE_<NAME>_MODEL`` choosing the version served. ``family`` says which
    code under ``models/`` reads its artifacts (and which batch task predicts with it).
    ``endpoints`` are its routes on the front service, ``sample`` a request body of the
    first one that a trained default model answers (checks and examples use it; None for an
    upload). ``trainer`` is the module whose ``train()`` stores its default version.
    """

    name: str
    family: Family
    summary: str
    endpoints: tuple[str, ...]
    trainer: str
    sample: Mapping[str, Any] | None = field(default=None, hash=False)


CREDIT_HEALTH = ServedModel(
    name="credit_health",
    family="tabular",
    summary="company credit health: five financial ratios -> healthy or unhealthy",
    endpoints=("predict_credit", "predict_credit_batch"),
    trainer="scripts.train.credit",
    sample={
        "debt_ratio": 0.2,
        "current_ratio": 2.5,
        "operating_margin": 0.25,
        "return_on_assets": 0.15,
        "interest_coverage": 20.0,
    },
)
IRIS = ServedModel(
    name="iris",
    family="tabular",
    summary="iris species from four measurements in cm",
    endpoints=("classify_iris",),
    trainer="scripts.train.iris",
    sample={"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
)
BOOK_RATING = ServedModel(
    name="book_rating",
    family="books",
    summary="book ratings by a field-aware factorization machine, and recommendations",
    endpoints=("recommend_books", "rate_book", "rate_books"),
    trainer="scripts.train.books",
    sample={"user_id": 0, "k": 3},
)
MASK_CLASSIFIER = ServedModel(
    name="mask_classifier",
    family="mask",
    summary="face mask, gender and age (18 classes) from a photo",
    endpoints=("classify_mask", "classify_masks"),
    trainer="scripts.train.mask",
)

CATALOGUE: tuple[ServedModel, ...] = (CREDIT_HEALTH, IRIS, BOOK_RATING, MASK_CLASSIFIER)


def served_model(name: str) -> ServedModel:
    """The entry of store name ``name``; ValueError naming the served ones otherwise."""
    for entry in CATALOGUE:
        if entry.name == name:
            return entry
    known = ", ".join(entry.name for entry in CATALOGUE)
    raise ValueError(f"{name!r} is not a served model (served: {known})")
