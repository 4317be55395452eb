"""Explained answers: the plain answer's fields plus an ``explanation``, by the version the
routing picks (named in ``model``). Separate endpoints, so the plain ones pay nothing: no
shadow copy is sent (an explanation is not a prediction to compare), and the runner's
explanation APIs are unbatched (one answer at a time: the gradient work dominates).

What the numbers mean is in docs/EXPLANATIONS.md and the models' modules
(models/tabular/attribution.py, models/books/decomposition.py, models/mask/heatmap.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from pydantic import BaseModel, Field

from model_bundle.schemas import BookRating, CreditPrediction, IrisPrediction, MaskPrediction
from model_bundle.versions.routing import Route
from model_bundle.versions.serving import ModelVersions

T = TypeVar("T")


async def explained(
    versions: ModelVersions, call: Callable[[Route], Awaitable[T]], key: int | None = None
) -> tuple[T, Route]:
    """``call(route)`` for the version the routing picks for this request (sticky per
    ``key`` as the plain endpoint is), counted as an answer of that version; no shadow."""
    routing = await versions.current()
    route = versions.pick(routing, key)
    answer = await versions.checked(call(route))
    versions.count(route)
    return answer, route


class Unavailable(BaseModel):
    available: bool = Field(description="False when this version cannot be explained.")
    reason: str | None = Field(None, description="Why there is no explanation.")


class FeatureAttribution(BaseModel):
    feature: str
    value: float = Field(description="The feature's value in the request, in its own units.")
    baseline: float = Field(description="The baseline's value: the training range's midpoint.")
    attribution: float = Field(
        description="Its share of logit(input) - logit(baseline) for the predicted class."
    )


class TabularExplanation(Unavailable):
    method: Literal["integrated_gradients"] | None = None
    target: str | None = None
    class_id: int | None = None
    logit: float | None = None
    baseline_logit: float | None = None
    completeness_gap: float | None = Field(
        None, description="|sum(attributions) - (logit - baseline_logit)|."
    )
    steps: int | None = None
    features: list[FeatureAttribution] = Field(default_factory=list)


class CreditExplained(CreditPrediction):
    explanation: TabularExplanation


class IrisExplained(IrisPrediction):
    explanation: TabularExplanation


class ScoreTerm(BaseModel):
    kind: Literal["bias", "field", "interaction"]
    fields: list[str]
    text: str = Field(description="What the term is, in words.")
    value: float = Field(description="Its contribution to the raw score.")
    sentence: str | None = None


class BookExplanation(Unavailable):
    fallback: str | None = Field(None, description="A cold start: which fallback answered.")
    output: Literal["raw", "sigmoid"] | None = Field(
        None, description="How the raw score becomes the rating (then clipped to 1..10)."
    )
    raw_score: float | None = None
    terms: list[ScoreTerm] = Field(
        default_factory=list, description="Every term; they sum to raw_score."
    )
    top: list[ScoreTerm] = Field(default_factory=list, description="The largest terms.")


class BookRatingExplained(BookRating):
    explanation: BookExplanation


class MaskExplanation(Unavailable):
    method: Literal["grad_cam"] | None = None
    layer: str | None = None
    width: int | None = None
    height: int | None = None
    overlay_png: str | None = Field(
        None, description="The resized photo with the heat map over it: PNG, base64."
    )


class MaskExplained(MaskPrediction):
    explanation: MaskExplanation
