"""The typed request and response bodies of the bundle's HTTP API."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from model_bundle.catalogue import CREDIT_HEALTH, IRIS

MAX_BATCH_ITEMS = 1000


def invalid_input(title: str, field: str | tuple[str | int, ...], kind: str, msg: str) -> Any:
    """A 400 shaped like every validation error (``detail``: the field, the problem's type
    and message), for a problem found after the body was parsed. BentoML renders a raised
    ``ValidationError`` so; its own client exceptions come out as a bare list."""
    loc = (field,) if isinstance(field, str) else field
    error = PydanticCustomError(kind, "{msg}", {"msg": msg})
    return ValidationError.from_exception_data(
        title, [InitErrorDetails(type=error, loc=loc, input="<request>")]
    )


def measurement(description: str, ge: float, le: float) -> Any:
    """A finite JSON number (no strings, booleans, NaN or infinity) within [ge, le]."""
    return Field(description=description, ge=ge, le=le, strict=True, allow_inf_nan=False)


class Request(BaseModel):
    """Request bodies reject unknown fields: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid")


# Bounds are plausibility limits that catch unit and typing mistakes (a percentage sent
# where a fraction goes), not the range the model was trained on.
class CreditFeatures(Request):
    debt_ratio: Annotated[float, measurement("Total debt / total assets.", 0, 100)]
    current_ratio: Annotated[float, measurement("Current assets / current liabilities.", 0, 1000)]
    operating_margin: Annotated[
        float, measurement("Operating income / revenue, as a fraction.", -100, 100)
    ]
    return_on_assets: Annotated[
        float, measurement("Net income / total assets, as a fraction.", -100, 100)
    ]
    interest_coverage: Annotated[float, measurement("EBIT / interest expense.", -1e6, 1e6)]


class CreditBatch(Request):
    items: list[CreditFeatures] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class IrisMeasurements(Request):
    sepal_length: Annotated[float, measurement("Sepal length in cm.", 0, 100)]
    sepal_width: Annotated[float, measurement("Sepal width in cm.", 0, 100)]
    petal_length: Annotated[float, measurement("Petal length in cm.", 0, 100)]
    petal_width: Annotated[float, measurement("Petal width in cm.", 0, 100)]


# The request body of one row of each tabular model (batch prediction validates its files'
# rows with the same rules).
TABULAR_REQUESTS: dict[str, type[Request]] = {
    CREDIT_HEALTH.name: CreditFeatures,
    IRIS.name: IrisMeasurements,
}


def new_prediction_id() -> str:
    """32 random hex digits, as unguessable as a UUID4's (feedback is joined by this id), at
    a quarter of uuid4().hex's cost: no UUID object on the request path."""
    return secrets.token_hex(16)


def prediction_id_field() -> Any:
    return Field(
        default_factory=new_prediction_id,
        description="This answer's id, for `POST /feedback` (the ground truth, later).",
    )


class Prediction(BaseModel):
    prediction_id: str = prediction_id_field()
    class_id: int
    probability: float = Field(description="Probability of the predicted class.")
    probabilities: dict[str, float]
    model: str = Field(description="Store tag (name:version) of the model that answered.")


class CreditPrediction(Prediction):
    label: Literal["healthy", "unhealthy"]


class CreditBatchPrediction(BaseModel):
    predictions: list[CreditPrediction]


class IrisPrediction(Prediction):
    species: Literal["setosa", "versicolor", "virginica"]


UserId = Annotated[int, Field(strict=True, ge=0, le=2**53, description="The user's id.")]
Isbn = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=20,
        pattern=r"^[!-~]+$",
        description="ISBN as a string: leading zeros and a trailing X are significant.",
        examples=["0002005018"],
    ),
]


class BookPair(Request):
    user_id: UserId
    isbn: Isbn


class BookPairs(Request):
    items: list[BookPair] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class RecommendationRequest(Request):
    user_id: UserId
    k: int = Field(10, strict=True, ge=1, le=100, description="How many books.")


class BookInfo(BaseModel):
    isbn: str
    title: str | None
    author: str | None
    year: int | None
    publisher: str | None
    image_url: str | None
    summary: str | None


class BookRating(BaseModel):
    user_id: int
    isbn: str
    rating: float = Field(description="Predicted rating, 1 to 10.")
    cold_start: bool = Field(description="True when the model does not know the user or book.")
    reason: Literal["unknown_user", "unknown_book", "unknown_user_and_book"] | None
    book: BookInfo | None
    model: str
    prediction_id: str = prediction_id_field()


class BookRatings(BaseModel):
    predictions: list[BookRating]


class RecommendedBook(BaseModel):
    isbn: str
    title: str | None
    author: str | None
    image_url: str | None
    predicted_rating: float


class Recommendations(BaseModel):
    user_id: int
    cold_start: bool
    books: list[RecommendedBook]
    model: str


MAX_IMAGES = 32


class MaskPrediction(BaseModel):
    class_id: int = Field(ge=0, le=17, description="mask * 6 + gender * 3 + age")
    mask: Literal["wear", "incorrect", "not_worn"]
    gender: Literal["male", "female"]
    age: Literal["<30", "30-59", ">=60"]
    confidence: float = Field(description="Probability of class_id.")
    probabilities: list[float] = Field(
        min_length=18, max_length=18, description="All 18 classes, in class_id order."
    )
    marginals: dict[str, dict[str, float]] = Field(
        description="Per attribute (mask, gender, age): each label's probability."
    )
    model: str
    prediction_id: str = prediction_id_field()


class MaskPredictions(BaseModel):
    predictions: list[MaskPrediction]


class ModelVersion(BaseModel):
    tag: str
    created: str | None = None
    weights: Literal["state_dict", "torchscript", "exported"] | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    data_hash: str | None = None
    calibration: dict[str, Any] | None = Field(
        None, description="Held-out expected calibration error, reliability bins, temperature."
    )
    lineage: dict[str, Any] | None = Field(
        None, description="A retrained version's parent version, data hash and rows."
    )
    role: Literal["primary", "canary", "shadow", "candidate_loading", "previous", "unloading"]
    share: float | None = Field(description="A canary's percentage of live traffic.")
    promoted_at: str | None
    promoted_by: str | None
    loaded: bool = Field(description="Loaded by this replica's runner (routed to only then).")
    shadow_agreement: dict[str, dict[str, Any]] | None = Field(
        description="A shadow's agreement with the primary, as measured by this replica."
    )


class ServedModel(BaseModel):
    """A served model: its primary version's summary first, then all its versions."""

    tag: str
    created: str
    weights: Literal["state_dict", "torchscript", "exported"]
    metrics: dict[str, Any]
    data_hash: str | None
    calibration: dict[str, Any] | None = None
    lineage: dict[str, Any] | None = None
    promoted_at: str | None = None
    promoted_by: str | None = None
    rollout: dict[str, Any] | None = Field(
        None,
        description="The candidate's automatic rollout: its policy, the last verdict, and the "
        "decisions taken (with their reasons).",
    )
    versions: list[ModelVersion]


class ServedModels(BaseModel):
    models: list[ServedModel]


class Feedback(Request):
    """The ground truth of an earlier answer: ``label`` (classifiers) or ``rating`` (1..10)."""

    prediction_id: str = Field(min_length=1, max_length=64)
    label: str | None = Field(None, max_length=100)
    rating: float | None = Field(None, ge=1, le=10, strict=True, allow_inf_nan=False)


class DriftRequest(Request):
    model: str | None = Field(None, description="A served model's store name; unset: all.")


class FeedbackAnswer(BaseModel):
    model: str
    version: str
    accuracy: float | None = None
    rmse: float | None = None
    count: int = Field(description="Feedback joined for this version since the replica started.")


class DriftReport(BaseModel):
    """Per model: status, window, features' tests, prediction shift, feedback, logging
    (docs/MONITORING-GUIDE.md)."""

    models: list[dict[str, Any]]
