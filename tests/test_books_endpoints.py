"""Book endpoints end to end: ratings, cold starts and recommendations through the real server."""

from __future__ import annotations

import bentoml
import numpy as np
import pytest

from models.artifact import Artifact
from models.books.model import BookRatingModel
from tests.support.server import Server


@pytest.fixture(scope="module")
def client(server: Server) -> bentoml.SyncHTTPClient:
    with bentoml.SyncHTTPClient(server.url) as client:
        yield client


@pytest.fixture(scope="module")
def books(default_models: dict[str, str]) -> BookRatingModel:
    """The served model, loaded here to compare with what the server answers."""
    return BookRatingModel.load(Artifact.load(default_models["book_rating"]))


def known_pairs(books: BookRatingModel, n: int) -> list[tuple[int, str]]:
    users = books.featurizer.user_ids[:n].tolist()
    isbns = books.featurizer.isbns[-n:].tolist()
    return list(zip(users, isbns, strict=True))


def test_rate_book_equals_the_model_in_process(
    client: bentoml.SyncHTTPClient, books: BookRatingModel, default_models: dict[str, str]
) -> None:
    user_id, isbn = known_pairs(books, 1)[0]
    answer = client.rate_book(user_id=user_id, isbn=isbn)
    [expected] = books.rate([(user_id, isbn)])
    assert answer["rating"] == pytest.approx(expected["rating"], abs=1e-5)
    assert 1 <= answer["rating"] <= 10
    assert (answer["cold_start"], answer["reason"]) == (False, None)
    assert answer["book"]["isbn"] == isbn and answer["book"]["title"]
    assert answer["model"] == default_models["book_rating"]


def test_isbn_is_a_string_with_its_leading_zeros(
    client: bentoml.SyncHTTPClient, books: BookRatingModel
) -> None:
    isbn = next(b for b in books.featurizer.isbns.tolist() if b.startswith("0"))
    answer = client.rate_book(user_id=int(books.featurizer.user_ids[0]), isbn=isbn)
    assert answer["isbn"] == isbn and not answer["cold_start"]


@pytest.mark.parametrize(
    ("known_user", "known_book", "reason"),
    [
        (False, True, "unknown_user"),
        (True, False, "unknown_book"),
        (False, False, "unknown_user_and_book"),
    ],
)
def test_cold_start_answers_a_fallback_with_the_reason(
    client: bentoml.SyncHTTPClient,
    books: BookRatingModel,
    known_user: bool,
    known_book: bool,
    reason: str,
) -> None:
    user_id = int(books.featurizer.user_ids[0]) if known_user else 10**9
    isbn = str(books.featurizer.isbns[0]) if known_book else "000000000X"
    answer = client.rate_book(user_id=user_id, isbn=isbn)
    assert (answer["cold_start"], answer["reason"]) == (True, reason)
    book_index = books.featurizer.isbn_index[isbn] if known_book else -1
    assert answer["rating"] == pytest.approx(books.catalogue.fallback(book_index))
    assert (answer["book"] is not None) == known_book


def test_rate_books_in_order_and_at_the_maximum_size(
    client: bentoml.SyncHTTPClient, books: BookRatingModel
) -> None:
    pairs = known_pairs(books, 1000)
    pairs[3] = (10**9, pairs[3][1])
    answer = client.rate_books(items=[{"user_id": u, "isbn": b} for u, b in pairs])
    got = [(p["user_id"], p["isbn"]) for p in answer["predictions"]]
    assert got == pairs
    expected = [r["rating"] for r in books.rate(pairs)]
    np.testing.assert_allclose([p["rating"] for p in answer["predictions"]], expected, atol=1e-5)
    assert [p["cold_start"] for p in answer["predictions"]].count(True) == 1


def test_recommend_books_excludes_rated_books(
    client: bentoml.SyncHTTPClient, books: BookRatingModel
) -> None:
    user_id = int(books.featurizer.user_ids[0])
    answer = client.recommend_books(user_id=user_id, k=5)
    assert not answer["cold_start"] and len(answer["books"]) == 5
    rated = {
        str(books.featurizer.isbns[i])
        for i in books.catalogue.rated_by(books.featurizer.user_index[user_id])
    }
    assert rated and not rated & {b["isbn"] for b in answer["books"]}
    expected = books.recommend(user_id, 5)["books"]
    assert [b["isbn"] for b in answer["books"]] == [b["isbn"] for b in expected]
    ratings = [b["predicted_rating"] for b in answer["books"]]
    assert ratings == sorted(ratings, reverse=True)


def test_recommend_books_for_an_unknown_user(client: bentoml.SyncHTTPClient) -> None:
    answer = client.recommend_books(user_id=10**9)
    assert answer["cold_start"]
    assert len(answer["books"]) == 10  # the default k
    assert all(b["title"] for b in answer["books"])
