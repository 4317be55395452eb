"""Reading book-rating data: the Boostcamp competition CSVs and the original Book-Crossing dump.

Both give the same frames (Boostcamp's columns). A malformed row is never silently dropped
nor fatal: it is counted, an example kept, and the report printed by the caller.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

RATING_RANGE = (1, 10)


@dataclass
class LoadReport:
    """Malformed rows per file, with the first few examples."""

    malformed: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    implicit_ratings: int = 0

    def add(self, file: str, example: str, count: int = 1) -> None:
        self.malformed[file] += count
        examples = self.examples.setdefault(file, [])
        if len(examples) < 3:
            examples.append(example)

    def summary(self) -> str:
        lines = [
            f"{file}: {n} malformed rows, e.g. {self.examples[file]}"
            for file, n in self.malformed.items()
        ]
        if self.implicit_ratings:
            lines.append(f"{self.implicit_ratings} implicit ratings (0) left out of training")
        return "\n".join(lines) or "no malformed rows"


@dataclass
class BookData:
    users: pd.DataFrame  # user_id, location, age
    books: (
        pd.DataFrame
    )  # isbn, book_title, book_author, year_of_publication, publisher, img_url, ...
    train: pd.DataFrame  # user_id, isbn, rating (1..10)
    test: pd.DataFrame  # user_id, isbn (rating ignored)
    submission: pd.DataFrame  # user_id, isbn
    report: LoadReport


def read_csv(path: Path, report: LoadReport, **options: object) -> pd.DataFrame:
    """pandas.read_csv that counts and reports the lines it cannot parse."""

    def bad_line(fields: list[str]) -> None:
        report.add(path.name, f"unparseable line {fields[:3]}...")

    return pd.read_csv(path, engine="python", on_bad_lines=bad_line, **options)


def rating_checks(frame: pd.DataFrame, *, rated: bool) -> dict[str, pd.Series]:
    """Per column, which rows hold a valid value: an integer user_id, an isbn of 1 to 32
    characters and (if ``rated``) a rating 1..10. The one definition of a valid rating row:
    training drops (and counts) the others, a retrain refuses them by row."""
    user_id = pd.to_numeric(frame["user_id"], errors="coerce")
    isbn = frame["isbn"].notna() & frame["isbn"].astype(str).str.len().between(1, 32)
    checks = {"user_id": user_id.notna() & (user_id % 1 == 0), "isbn": isbn}
    if rated:
        checks["rating"] = pd.to_numeric(frame["rating"], errors="coerce").between(*RATING_RANGE)
    return checks


def valid_ratings(
    frame: pd.DataFrame, file: str, report: LoadReport, *, rated: bool
) -> pd.DataFrame:
    """Rows with an integer user_id, a non-empty isbn and (if ``rated``) a rating 1..10."""
    user_id = pd.to_numeric(frame["user_id"], errors="coerce")
    ok = np.logical_and.reduce(list(rating_checks(frame, rated=rated).values()))
    ok = pd.Series(ok, index=frame.index)
    if bad := int((~ok).sum()):
        report.add(file, f"invalid values {tuple(frame[~ok].iloc[0])}", count=bad)
    clean = frame[ok].copy()
    clean["user_id"] = user_id[ok].astype(np.int64)
    clean["isbn"] = clean["isbn"].astype(str)
    if rated:
        clean["rating"] = pd.to_numeric(clean["rating"]).astype(np.int64)
    return clean.reset_index(drop=True)


def load_boostcamp(directory: Path) -> BookData:
    """users.csv, books.csv, train_ratings.csv, test_ratings.csv, sample_submission.csv."""
    report = LoadReport()
    text = {"isbn": str}
    users = read_csv(directory / "users.csv", report)
    users["user_id"] = pd.to_numeric(users["user_id"], errors="coerce")
    users["age"] = pd.to_numeric(users["age"], errors="coerce")
    bad_users = users["user_id"].isna()
    if bad := int(bad_users.sum()):
        report.add("users.csv", f"invalid user_id {tuple(users[bad_users].iloc[0])}", count=bad)
    users = users[~bad_users].astype({"user_id": np.int64}).reset_index(drop=True)
    books = read_csv(directory / "books.csv", report, dtype=text)
    train = valid_ratings(
        read_csv(directory / "train_ratings.csv", report, dtype=text),
        "train_ratings.csv",
        report,
        rated=True,
    )
    test_path = directory / "test_ratings.csv"
    sub_path = directory / "sample_submission.csv"
    test = valid_ratings(
        read_csv(test_path if test_path.exists() else sub_path, report, dtype=text),
        test_path.name,
        report,
        rated=False,
    )
    submission = valid_ratings(
        read_csv(sub_path if sub_path.exists() else test_path, report, dtype=text),
        sub_path.name,
        report,
        rated=False,
    )
    return BookData(users, books, train, test, submission, report)


BX_OPTIONS: dict[str, object] = {
    "sep": ";",
    "quotechar": '"',
    "escapechar": "\\",
    "encoding": "latin-1",
    "na_values": ["NULL"],
    "quoting": csv.QUOTE_ALL,
}


def load_book_crossing(directory: Path) -> BookData:
    """BX-Users.csv, BX-Books.csv, BX-Book-Ratings.csv (``;``, quoted, latin-1, ``NULL``,
    backslash escapes). Rating 0 is implicit feedback: counted, not trained on."""
    report = LoadReport()
    users = read_csv(directory / "BX-Users.csv", report, dtype=str, **BX_OPTIONS).rename(
        columns={"User-ID": "user_id", "Location": "location", "Age": "age"}
    )
    users["user_id"] = pd.to_numeric(users["user_id"], errors="coerce")
    users["age"] = pd.to_numeric(users["age"], errors="coerce")
    users = users.dropna(subset=["user_id"]).astype({"user_id": np.int64})
    books = read_csv(directory / "BX-Books.csv", report, dtype=str, **BX_OPTIONS).rename(
        columns={
            "ISBN": "isbn",
            "Book-Title": "book_title",
            "Book-Author": "book_author",
            "Year-Of-Publication": "year_of_publication",
            "Publisher": "publisher",
            "Image-URL-L": "img_url",
        }
    )
    for column in ("language", "category", "summary"):
        books[column] = np.nan
    ratings = read_csv(directory / "BX-Book-Ratings.csv", report, dtype=str, **BX_OPTIONS)
    ratings = ratings.rename(
        columns={"User-ID": "user_id", "ISBN": "isbn", "Book-Rating": "rating"}
    )
    implicit = pd.to_numeric(ratings["rating"], errors="coerce") == 0
    report.implicit_ratings = int(implicit.sum())
    train = valid_ratings(ratings[~implicit], "BX-Book-Ratings.csv", report, rated=True)
    empty = train.iloc[:0][["user_id", "isbn"]]
    return BookData(users, books, train, empty, empty, report)
