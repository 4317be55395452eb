"""The FFM's rating decomposed exactly on the real default model; cold starts name their
fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.artifact import Artifact
from models.books.decomposition import decompose, explain_pair
from models.books.model import BookRatingModel
from models.books.network import to_rating


@pytest.fixture(scope="module")
def model(default_models: dict[str, str]) -> BookRatingModel:
    return BookRatingModel.load(Artifact.load(default_models["book_rating"]))


def known_pairs(model: BookRatingModel, count: int) -> list[tuple[int, str]]:
    rng = np.random.default_rng(0)
    users = rng.choice(model.featurizer.user_ids, count)
    books = rng.choice(model.featurizer.isbns, count)
    return [(int(u), str(b)) for u, b in zip(users, books, strict=True)]


def test_terms_sum_to_the_raw_score_and_the_rating(model: BookRatingModel) -> None:
    fields = model.featurizer.fields
    for user_id, isbn in known_pairs(model, 20):
        x = model.featurizer.encode([user_id], [isbn]).x
        parts = decompose(model.model, fields, x[0])
        with torch.no_grad():
            raw = float(model.model(torch.from_numpy(x))[0])
        assert abs(sum(t["value"] for t in parts["terms"]) - raw) < 1e-5
        assert abs(parts["raw_score"] - raw) < 1e-6
        f = len(fields)
        assert len(parts["terms"]) == 1 + f + f * (f - 1) // 2
        answer = explain_pair(model, user_id, isbn)
        rating = float(to_rating(torch.tensor(raw), model.output))
        assert abs(answer["rating"] - rating) < 1e-5


def test_top_terms_are_the_largest_in_words(model: BookRatingModel) -> None:
    user_id, isbn = known_pairs(model, 1)[0]
    explanation = explain_pair(model, user_id, isbn)["explanation"]
    assert explanation["available"] is True
    top = explanation["top"]
    magnitudes = [abs(t["value"]) for t in top]
    assert magnitudes == sorted(magnitudes, reverse=True)
    others = [abs(t["value"]) for t in explanation["terms"] if t["kind"] != "bias"]
    assert magnitudes[0] == max(others)
    assert all(t["sentence"].startswith(t["text"] + ": ") for t in top)
    interaction = next(t for t in explanation["terms"] if t["fields"] == ["user_id", "isbn"])
    assert interaction["text"] == "this book, for this user"


def test_cold_starts_name_the_fallback(model: BookRatingModel) -> None:
    isbn = str(model.featurizer.isbns[0])
    unknown_user = explain_pair(model, 2**52, isbn)
    assert unknown_user["cold_start"] is True
    assert unknown_user["explanation"] == {
        "available": False,
        "fallback": "the book's mean training rating"
        if model.catalogue.book_count[0]
        else "the global mean rating",
        "reason": "unknown_user",
    }
    both = explain_pair(model, 2**52, "no-such-isbn")
    assert both["explanation"]["fallback"] == "the global mean rating"
    assert both["explanation"]["reason"] == "unknown_user_and_book"
