"""Book rating: the Boostcamp baseline's featurisation of (user, book) pairs, as plain arrays.

Two layouts. ``boostcamp``: the baseline's 10 fields, in its order; ``ids``: user and isbn only.
Indices are built exactly as the baseline builds them (see :meth:`BookFeaturizer.fit`), so a
checkpoint trained by the baseline sees the same inputs here. What serving needs is stored
as integer/string arrays (``featurizer.npz``, loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

Layout = Literal["boostcamp", "ids"]

FIELDS: dict[str, tuple[str, ...]] = {
    "boostcamp": (
        "user_id",
        "isbn",
        "age",
        "location_city",
        "location_state",
        "location_country",
        "category",
        "publisher",
        "language",
        "book_author",
    ),
    "ids": ("user_id", "isbn"),
}
USER_SIDE = frozenset({"user_id", "age", "location_city", "location_state", "location_country"})
LOCATION_PARTS = ("location_city", "location_state", "location_country")
BOOK_CONTEXT = ("category", "publisher", "language", "book_author")
AGE_BINS = 6  # the baseline's age field size; its values are 1..6 (sic)
MISSING = -1  # a value the vocabulary does not know


def age_bin(age: float) -> int:
    """The baseline's bins: <20 -> 1, 20s -> 2, 30s -> 3, 40s -> 4, 50s -> 5, else 6."""
    age = int(age)
    return 1 if age < 20 else min((age - 20) // 10 + 2, 6)


def split_location(location: object) -> list[object]:
    """``location.split(',')`` parts 0, 1, 2 as the baseline takes them (no stripping).

    The baseline crashes on a missing location or one with fewer than three parts; here
    the missing parts are NaN, which the vocabularies treat as a value of its own.
    """
    parts = location.split(",") if isinstance(location, str) else []
    return [*parts[:3], *[np.nan] * (3 - len(parts[:3]))]


def vocabulary(values: pd.Series) -> dict[object, int]:
    """Index by order of first appearance; NaN (one key: ``np.nan``) gets an index of its own."""
    index: dict[object, int] = {}
    for value in values:
        index.setdefault(np.nan if pd.isna(value) else value, len(index))
    return index


def lookup(vocab: dict[object, int], value: object) -> int:
    return vocab.get(np.nan if pd.isna(value) else value, MISSING)


@dataclass(frozen=True)
class Encoded:
    """Per-field indices [N, F] (zeros where unknown) and which users and books are known."""

    x: np.ndarray
    user_known: np.ndarray
    book_known: np.ndarray


@dataclass
class BookFeaturizer:
    layout: Layout
    user_ids: np.ndarray  # int64 [n_users]: raw id of each user index
    isbns: np.ndarray  # str [n_books]: isbn of each book index
    user_rows: np.ndarray  # int64 [n_users, |user fields|]; MISSING marks an unknown value
    book_rows: np.ndarray  # int64 [n_books, |book fields|]
    field_dims: tuple[int, ...]
    age_fill: int = 0
    user_index: dict[int, int] = field(init=False, repr=False)
    isbn_index: dict[str, int] = field(init=False, repr=False)
    _user_lookup: pd.Index = field(init=False, repr=False)
    _isbn_lookup: pd.Index = field(init=False, repr=False)

    FILE = "featurizer.npz"

    def __post_init__(self) -> None:
        self.user_index = {int(u): i for i, u in enumerate(self.user_ids.tolist())}
        self.isbn_index = {str(b): i for i, b in enumerate(self.isbns.tolist())}
        self._user_lookup = pd.Index(self.user_ids.astype(np.int64))
        self._isbn_lookup = pd.Index(self.isbns.astype(object))

    @property
    def fields(self) -> tuple[str, ...]:
        return FIELDS[self.layout]

    @property
    def user_fields(self) -> list[int]:
        return [i for i, name in enumerate(self.fields) if name in USER_SIDE]

    @property
    def book_fields(self) -> list[int]:
        return [i for i, name in enumerate(self.fields) if name not in USER_SIDE]

    @classmethod
    def fit(
        cls,
        users: pd.DataFrame,
        books: pd.DataFrame,
        train: pd.DataFrame,
        test: pd.DataFrame,
        submission: pd.DataFrame,
        layout: Layout = "boostcamp",
    ) -> BookFeaturizer:
        """Build the indices the way the baseline's ``context_data_load`` does.

        Users and books: order of first appearance in train ratings, then the submission.
        Context fields: order of first appearance in the train ratings followed by the test
        ratings, joined with users and books. Missing ages: ``int(mean)`` of the age column
        of the train ratings joined with users.
        """
        user_ids = pd.concat([train["user_id"], submission["user_id"]]).unique().astype(np.int64)
        isbns = np.asarray(pd.concat([train["isbn"], submission["isbn"]]).unique(), dtype=np.str_)
        user_idx = np.arange(len(user_ids), dtype=np.int64)[:, None]
        book_idx = np.arange(len(isbns), dtype=np.int64)[:, None]
        if layout == "ids":
            return cls(layout, user_ids, isbns, user_idx, book_idx, (len(user_ids), len(isbns)))

        people = users[["user_id", "age"]].copy()
        people[list(LOCATION_PARTS)] = pd.DataFrame(
            [split_location(loc) for loc in users["location"]], index=users.index
        )
        people = people.drop_duplicates("user_id").set_index("user_id")
        catalogue = books.drop_duplicates("isbn").set_index("isbn")[list(BOOK_CONTEXT)]
        context = pd.concat([train, test])[["user_id", "isbn"]]
        context = context.join(people, on="user_id").join(catalogue, on="isbn")
        vocabs = {name: vocabulary(context[name]) for name in (*LOCATION_PARTS, *BOOK_CONTEXT)}
        age_fill = int(train[["user_id"]].join(people, on="user_id")["age"].mean())

        known_people = people.reindex(user_ids)
        ages = known_people["age"].fillna(age_fill).map(age_bin).to_numpy(np.int64)
        locations = [
            [lookup(vocabs[name], value) for value in known_people[name]] for name in LOCATION_PARTS
        ]
        user_rows = np.column_stack([user_idx[:, 0], ages, *locations]).astype(np.int64)
        known_books = catalogue.reindex(isbns)
        contexts = [
            [lookup(vocabs[name], value) for value in known_books[name]] for name in BOOK_CONTEXT
        ]
        book_rows = np.column_stack([book_idx[:, 0], *contexts]).astype(np.int64)
        field_dims = (
            len(user_ids),
            len(isbns),
            AGE_BINS,
            *(len(vocabs[name]) for name in LOCATION_PARTS),
            *(len(vocabs[name]) for name in BOOK_CONTEXT),
        )
        return cls(layout, user_ids, isbns, user_rows, book_rows, field_dims, age_fill)

    def encode(self, user_ids: Sequence[int], isbns: Sequence[str]) -> Encoded:
        """Per-field indices of (user, isbn) pairs; a user or book is known when the model has
        an index for it and for every one of its field values."""
        # pandas' hash tables, not a dict lookup per pair: batch files rate millions of pairs
        users = self._user_lookup.get_indexer(np.asarray(user_ids, np.int64)).astype(np.int64)
        books = self._isbn_lookup.get_indexer(np.asarray(isbns, object)).astype(np.int64)
        user_rows = np.where(users[:, None] >= 0, self.user_rows[users], MISSING)
        book_rows = np.where(books[:, None] >= 0, self.book_rows[books], MISSING)
        user_known = (user_rows >= 0).all(axis=1)
        book_known = (book_rows >= 0).all(axis=1)
        x = np.zeros((len(users), len(self.fields)), np.int64)
        x[:, self.user_fields] = np.maximum(user_rows, 0)
        x[:, self.book_fields] = np.maximum(book_rows, 0)
        return Encoded(x, user_known, book_known)

    def save(self, directory: Path) -> None:
        np.savez(
            directory / self.FILE,
            user_ids=self.user_ids,
            isbns=np.asarray(self.isbns, dtype=np.str_),
            user_rows=self.user_rows,
            book_rows=self.book_rows,
            field_dims=np.array(self.field_dims, np.int64),
            settings=np.array(json.dumps({"layout": self.layout, "age_fill": self.age_fill})),
        )

    @classmethod
    def load(cls, directory: Path) -> BookFeaturizer:
        with np.load(directory / cls.FILE, allow_pickle=False) as arrays:
            settings = json.loads(str(arrays["settings"]))
            return cls(
                settings["layout"],
                arrays["user_ids"],
                arrays["isbns"],
                arrays["user_rows"],
                arrays["book_rows"],
                tuple(int(d) for d in arrays["field_dims"]),
                settings["age_fill"],
            )


BOOK_INFO = ("title", "author", "year", "publisher", "image_url", "summary")
POPULARITY_PRIOR = 10  # ratings of weight the global mean gets in a book's shrunk mean


@dataclass
class BookCatalogue:
    """What the service tells about books, and the rating statistics cold starts fall back on."""

    table: pd.DataFrame  # index: isbn (str); columns BOOK_INFO, all str or None
    book_mean: np.ndarray  # float64 [n_books]: mean training rating per book index (NaN: none)
    book_count: np.ndarray  # int64 [n_books]
    rated: np.ndarray  # int64 [n_ratings, 2]: (user, book) indices of training ratings, by user
    global_mean: float

    TABLE, ARRAYS = "books.csv", "catalogue.npz"

    @classmethod
    def fit(
        cls, books: pd.DataFrame, train: pd.DataFrame, featurizer: BookFeaturizer
    ) -> BookCatalogue:
        table = pd.DataFrame(
            {
                "isbn": books["isbn"].astype(str),
                "title": books.get("book_title"),
                "author": books.get("book_author"),
                "year": books.get("year_of_publication"),
                "publisher": books.get("publisher"),
                "image_url": books.get("img_url"),
                "summary": books.get("summary"),
            }
        ).drop_duplicates("isbn")
        encoded = featurizer.encode(train["user_id"].tolist(), train["isbn"].tolist())
        users = np.array([featurizer.user_index[int(u)] for u in train["user_id"]], np.int64)
        books_idx = encoded.x[:, featurizer.fields.index("isbn")]
        count = np.bincount(books_idx, minlength=len(featurizer.isbns))
        total = np.bincount(books_idx, weights=train["rating"], minlength=len(featurizer.isbns))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
        return cls(
            table.set_index("isbn").astype(object).where(table.set_index("isbn").notna(), None),
            mean,
            count.astype(np.int64),
            np.column_stack([users, books_idx])[np.argsort(users, kind="stable")],
            float(train["rating"].mean()),
        )

    def __post_init__(self) -> None:
        # Plain lookups for the hot path: a pandas row access per pair cost more than the model.
        self._rows = {isbn: i for i, isbn in enumerate(self.table.index)}
        self._columns = {name: self.table[name].to_numpy(object) for name in BOOK_INFO}
        years = pd.to_numeric(self.table["year"], errors="coerce")
        self._columns["year"] = np.array([None if pd.isna(y) else int(y) for y in years], object)

    def info(self, isbn: str) -> dict[str, object] | None:
        """Title, author, year, publisher, image URL and summary; None for an unknown isbn."""
        row = self._rows.get(isbn)
        if row is None:
            return None
        return {"isbn": isbn, **{name: _text(self._columns[name][row]) for name in BOOK_INFO}}

    def fallback(self, book: int) -> float:
        """A cold start's rating: the book's mean training rating, else the global mean."""
        return (
            float(self.book_mean[book])
            if book >= 0 and self.book_count[book]
            else (self.global_mean)
        )

    def fallbacks(self, books: np.ndarray) -> np.ndarray:
        """:meth:`fallback` for many book indices at once (float64 [N])."""
        mean = np.full(len(books), self.global_mean)
        rated = (books >= 0) & (self.book_count[np.maximum(books, 0)] > 0)
        mean[rated] = self.book_mean[books[rated]]
        return mean

    def popular(self) -> np.ndarray:
        """Book indices by shrunk mean rating (well rated and often rated first)."""
        shrunk = (
            self.book_count * np.nan_to_num(self.book_mean) + POPULARITY_PRIOR * self.global_mean
        ) / (self.book_count + POPULARITY_PRIOR)
        return np.argsort(-shrunk, kind="stable")

    def rated_by(self, user: int) -> np.ndarray:
        """Book indices the user rated in training (``rated`` is sorted by user)."""
        start, stop = np.searchsorted(self.rated[:, 0], [user, user + 1])
        return self.rated[start:stop, 1]

    def save(self, directory: Path) -> None:
        self.table.to_csv(directory / self.TABLE)
        np.savez(
            directory / self.ARRAYS,
            book_mean=self.book_mean,
            book_count=self.book_count,
            rated=self.rated,
            global_mean=np.array(self.global_mean),
        )

    @classmethod
    def load(cls, directory: Path) -> BookCatalogue:
        table = pd.read_csv(directory / cls.TABLE, dtype=str, keep_default_na=False, na_values=[""])
        table = table.set_index("isbn").astype(object)
        with np.load(directory / cls.ARRAYS, allow_pickle=False) as arrays:
            return cls(
                table.where(table.notna(), None),
                arrays["book_mean"],
                arrays["book_count"],
                arrays["rated"],
                float(arrays["global_mean"]),
            )


def _text(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value if isinstance(value, int) else str(value)
