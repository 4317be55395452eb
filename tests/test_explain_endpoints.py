"""The explained endpoints against the real server: the plain answer's fields by the same
version, plus an explanation that adds up; bad input is a 4xx naming the field."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from models.artifact import Artifact
from models.books.model import BookRatingModel
from tests.support.images import encode, face

CREDIT = {
    "debt_ratio": 0.5,
    "current_ratio": 1.2,
    "operating_margin": 0.1,
    "return_on_assets": 0.05,
    "interest_coverage": 3.0,
}
IRIS = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}


@pytest.mark.parametrize(
    ("plain", "explained", "body"),
    [("predict_credit", "explain_credit", CREDIT), ("classify_iris", "explain_iris", IRIS)],
)
def test_tabular_explanation_adds_up(
    http: httpx.Client, plain: str, explained: str, body: dict[str, float]
) -> None:
    answer = http.post(f"/{explained}", json=body).raise_for_status().json()
    expected = http.post(f"/{plain}", json=body).raise_for_status().json()
    explanation = answer.pop("explanation")
    # same version, same answer; each answer has an id of its own, for feedback
    assert answer.pop("prediction_id") != expected.pop("prediction_id")
    assert answer == expected
    assert explanation["available"] is True
    assert explanation["class_id"] == answer["class_id"]
    features = explanation["features"]
    assert [f["feature"] for f in features] == list(body)
    assert [f["value"] for f in features] == pytest.approx(list(body.values()))
    total = sum(f["attribution"] for f in features)
    assert total == pytest.approx(explanation["logit"] - explanation["baseline_logit"], abs=1e-4)


def test_bad_tabular_input_names_the_field(http: httpx.Client) -> None:
    response = http.post("/explain_credit", json={**CREDIT, "debt_ratio": "high"})
    assert response.status_code == 400
    assert "debt_ratio" in response.text


def test_book_rating_explanation(http: httpx.Client, default_models: dict[str, str]) -> None:
    books = BookRatingModel.load(Artifact.load(default_models["book_rating"]))
    user_id, isbn = int(books.featurizer.user_ids[0]), str(books.featurizer.isbns[-1])
    body = {"user_id": user_id, "isbn": isbn}
    answer = http.post("/explain_book_rating", json=body).raise_for_status().json()
    explanation = answer.pop("explanation")
    plain = http.post("/rate_book", json=body).raise_for_status().json()
    assert answer.pop("prediction_id") != plain.pop("prediction_id")
    assert answer == plain
    assert sum(t["value"] for t in explanation["terms"]) == pytest.approx(
        explanation["raw_score"], abs=1e-5
    )
    assert explanation["top"] and all(": " in t["sentence"] for t in explanation["top"])
    cold = http.post("/explain_book_rating", json={"user_id": 2**52, "isbn": isbn}).json()
    assert cold["cold_start"] and cold["explanation"]["available"] is False
    assert cold["explanation"]["reason"] == "unknown_user" and cold["explanation"]["fallback"]


def test_mask_heat_map_over_the_photo(http: httpx.Client) -> None:
    photo = encode(face(class_id=13, seed=5), "PNG")
    files = {"image": ("face.png", photo, "image/png")}
    answer = http.post("/explain_mask", files=files).raise_for_status().json()
    explanation = answer.pop("explanation")
    plain = http.post("/classify_mask", files=files).raise_for_status().json()
    assert answer["class_id"] == plain["class_id"] and answer["model"] == plain["model"]
    assert explanation["available"] is True and explanation["method"] == "grad_cam"
    overlay = Image.open(io.BytesIO(base64.b64decode(explanation["overlay_png"])))
    assert overlay.format == "PNG"
    assert overlay.size == (explanation["width"], explanation["height"])
    bad = http.post("/explain_mask", files={"image": ("x.png", b"not an image", "image/png")})
    assert bad.status_code == 400 and "image" in bad.text


def test_models_report_calibration(http: httpx.Client) -> None:
    models = http.post("/models").raise_for_status().json()["models"]
    by_name = {m["tag"].split(":")[0]: m for m in models}
    for name in ("credit_health", "iris", "mask_classifier"):
        calibration = by_name[name]["calibration"]
        assert 0 <= calibration["ece"] <= 1 and len(calibration["bins"]) == 10
