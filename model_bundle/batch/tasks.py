"""What each model needs from a batch file and what it appends to it (no torch here).

A task turns a chunk of rows into the model's inputs (validating them with the API's
rules, :mod:`model_bundle.batch.rules`) and the model's predictions into columns. The
predictions themselves come from an engine: in-process (:mod:`model_bundle.batch.local`, the
runners' own model code) or a running bundle (:mod:`model_bundle.batch.remote`); both give a
task the same arrays.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from model_bundle.batch.rules import Checked, check
from model_bundle.catalogue import BOOK_RATING, MASK_CLASSIFIER, served_model
from model_bundle.schemas import TABULAR_REQUESTS, BookPair, RecommendationRequest
from model_bundle.settings import settings
from models.books.contract import COLD_REASONS
from models.mask.contract import AGE, GENDER, MASK, Preprocessing, resize
from models.mask.images import InvalidImageError, load_rgb
from models.tabular.contract import TASKS, TabularTask


class InputError(ValueError):
    """The input as a whole cannot be used (a required column is missing, a bad option)."""


@dataclass
class Prepared:
    """The valid rows of a chunk, the model's inputs for them, and the refused rows:
    (position in the chunk, reason)."""

    rows: pd.DataFrame
    inputs: Any
    errors: list[tuple[int, str]]


class Task(Protocol):
    model: str
    mode: str
    columns: tuple[str, ...]  # what the input must have
    text_columns: tuple[str, ...]  # read as text from CSV (leading zeros matter)

    def prepare(self, frame: pd.DataFrame) -> Prepared: ...

    def appended(self, predictions: Any, tag: str) -> dict[str, Any]: ...


def by_class(probabilities: np.ndarray) -> np.ndarray:
    """[classes, N], C-contiguous: one copy, after which each class's column is contiguous
    (a strided column of [N, classes] costs several times as much in every later step)."""
    return np.ascontiguousarray(probabilities.T)


def best_class(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class_id, its probability) per row of ``columns`` (:func:`by_class`); the first of
    equal maxima, as the API answers. Class by class: numpy's argmax along a short row axis
    is several times slower."""
    class_id = np.zeros(columns.shape[1], np.int64)
    best = columns[0].copy()
    for i in range(1, len(columns)):
        class_id[columns[i] > best] = i
        np.maximum(best, columns[i], out=best)
    return class_id, best


def valid_rows(frame: pd.DataFrame, checked: Checked) -> pd.DataFrame:
    """The rows that passed, their checked fields as the model saw them (ids as integers)."""
    everything = bool(checked.ok.all())
    rows = frame if everything else frame[checked.ok].reset_index(drop=True)
    dtypes = rows.dtypes  # once: a column lookup per field costs more than the comparison
    for name, values in checked.values.items():
        if dtypes[name] != values.dtype:
            if rows is frame:  # the chunk as read stays as read (its Arrow twin is, too)
                rows = frame.copy(deep=False)
            rows[name] = values if everything else values[checked.ok]
    return rows


def repeated(labels: Sequence[str], codes: np.ndarray) -> pd.Categorical:
    """A text column of few distinct values, built from codes: no string per row (cheap to
    build, dictionary-encoded in Parquet, plain text in CSV). The codes are ours (always in
    range), so pandas' check of them is skipped."""
    return pd.Categorical.from_codes(codes, dtype=categories(tuple(labels)), validate=False)


@functools.lru_cache(maxsize=64)
def categories(labels: tuple[str, ...]) -> pd.CategoricalDtype:
    """One dtype per label set: building it hashes and checks the labels, which cost more
    than the column itself."""
    return pd.CategoricalDtype(list(labels))


def constant(text: str, rows: int) -> pd.Categorical:
    return repeated([text], np.zeros(rows, np.int8))


def require(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    if missing := [name for name in columns if name not in frame.columns]:
        raise InputError(f"the input has no column {', '.join(missing)} (needs {columns})")


@dataclass(frozen=True)
class TabularRows:
    """credit_health, iris: one row of features -> class, label, probabilities."""

    task: TabularTask
    schema: type
    mode: str = "classify"
    text_columns: tuple[str, ...] = ()

    @property
    def model(self) -> str:
        return self.task.name

    @property
    def columns(self) -> tuple[str, ...]:
        return self.task.features

    def prepare(self, frame: pd.DataFrame) -> Prepared:
        require(frame, self.columns)
        checked = check(frame, self.schema, self.task.features)
        columns = [checked.values[name] for name in self.task.features]
        inputs = np.stack(columns, axis=1, dtype=np.float32)  # [N, features], one copy
        if not checked.ok.all():
            inputs = inputs[checked.ok]
        return Prepared(valid_rows(frame, checked), inputs, checked.errors)

    def appended(self, probabilities: np.ndarray, tag: str) -> dict[str, Any]:
        """As the API's answers: class_id, label, probability (of the label), then one
        ``probability_<label>`` column per class, then the model's tag."""
        columns = by_class(probabilities)
        class_id, probability = best_class(columns)
        return {
            "class_id": class_id,
            "label": repeated(self.task.labels, class_id),
            "probability": probability,
            **{f"probability_{label}": columns[i] for i, label in enumerate(self.task.labels)},
            "model": constant(tag, len(class_id)),
        }


@dataclass(frozen=True)
class BookRatings:
    """book_rating over (user_id, isbn) pairs: rating, cold_start and its reason."""

    model: ClassVar[str] = BOOK_RATING.name
    mode: ClassVar[str] = "rate"
    columns: ClassVar[tuple[str, ...]] = ("user_id", "isbn")
    text_columns: ClassVar[tuple[str, ...]] = ("isbn",)

    def prepare(self, frame: pd.DataFrame) -> Prepared:
        require(frame, self.columns)
        checked = check(frame, BookPair, self.columns)
        ok = checked.ok
        inputs = (checked.values["user_id"][ok], checked.values["isbn"][ok].tolist())
        return Prepared(valid_rows(frame, checked), inputs, checked.errors)

    def appended(self, rated: Any, tag: str) -> dict[str, Any]:
        """``rated``: :class:`models.books.model.RatedPairs` (or the same from a server)."""
        return {
            "rating": rated.ratings,
            "cold_start": rated.cold_start,
            "reason": cold_reasons(rated.user_known, rated.book_known),
            "model": constant(tag, len(rated.ratings)),
        }


@dataclass(frozen=True)
class BookRecommendations:
    """book_rating over users: the top k books each (JSON lists, best first)."""

    k: int = 10
    model: ClassVar[str] = BOOK_RATING.name
    mode: ClassVar[str] = "recommend"
    columns: ClassVar[tuple[str, ...]] = ("user_id",)
    text_columns: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        checked = check(pd.DataFrame({"user_id": [0], "k": [self.k]}), RecommendationRequest, ["k"])
        if checked.errors:
            raise InputError(f"--k {self.k}: {checked.errors[0][1]}")

    def prepare(self, frame: pd.DataFrame) -> Prepared:
        require(frame, self.columns)
        checked = check(frame, RecommendationRequest, self.columns)
        ok = checked.ok
        return Prepared(valid_rows(frame, checked), checked.values["user_id"][ok], checked.errors)

    def appended(self, answers: list[dict[str, Any]], tag: str) -> dict[str, Any]:
        """``answers``: ``BookRatingModel.recommend`` results (or the API's, the same keys)."""
        return {
            "cold_start": np.array([a["cold_start"] for a in answers], bool),
            "isbns": [json.dumps([b["isbn"] for b in a["books"]]) for a in answers],
            "predicted_ratings": [
                json.dumps([round(b["predicted_rating"], 4) for b in a["books"]]) for a in answers
            ],
            "model": tag,
        }


@dataclass(frozen=True)
class MaskImages:
    """mask_classifier over image files (column ``path``, relative to ``base``): class,
    mask, gender, age, confidence. With ``prep`` the images are decoded and resized here
    (in-process); without, only checked (a server resizes them itself)."""

    base: Path
    prep: Preprocessing | None = None
    model: ClassVar[str] = MASK_CLASSIFIER.name
    mode: ClassVar[str] = "classify"
    columns: ClassVar[tuple[str, ...]] = ("path",)
    text_columns: ClassVar[tuple[str, ...]] = ("path",)

    def image(self, path: object) -> np.ndarray | Path:
        if not isinstance(path, str) or not path:
            raise InvalidImageError("path: Input should be a valid string")
        file = self.base / path
        try:
            data = file.read_bytes()
        except OSError as error:
            raise InvalidImageError(f"path: cannot read {path}: {error.strerror}") from None
        try:
            image = load_rgb(data, settings.max_image_pixels)
        except InvalidImageError as error:
            raise InvalidImageError(f"path: {error}") from None
        return file if self.prep is None else resize(image, self.prep)

    def prepare(self, frame: pd.DataFrame) -> Prepared:
        require(frame, self.columns)
        ok = np.zeros(len(frame), bool)
        images, errors = [], []
        for position, path in enumerate(frame["path"].tolist()):
            try:
                images.append(self.image(path))
                ok[position] = True
            except InvalidImageError as error:
                errors.append((position, str(error)))
        inputs = images if self.prep is None else np.stack(images) if images else None
        return Prepared(frame[ok].reset_index(drop=True), inputs, errors)

    def appended(self, probabilities: np.ndarray, tag: str) -> dict[str, Any]:
        class_id, confidence = best_class(by_class(probabilities))
        return {
            "class_id": class_id,
            "mask": repeated(MASK, class_id // 6),
            "gender": repeated(GENDER, class_id // 3 % 2),
            "age": repeated(AGE, class_id % 3),
            "confidence": confidence,
            "model": constant(tag, len(class_id)),
        }


def cold_reasons(user_known: np.ndarray, book_known: np.ndarray) -> pd.Categorical:
    """The API's cold-start reasons, as a column (empty where the model knows both)."""
    pairs = list(COLD_REASONS)
    codes = np.full(len(user_known), -1, np.int8)
    for code, (user, book) in enumerate(pairs):
        codes[(user_known == user) & (book_known == book)] = code
    return pd.Categorical.from_codes(codes, categories=[COLD_REASONS[p] for p in pairs])


def reasons_to_known(reasons: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Cold-start reasons (the API's) -> which users and which books the model knows."""
    known = {reason: pair for pair, reason in COLD_REASONS.items()}
    pairs = [known.get(reason, (True, True)) for reason in reasons]
    return np.array([p[0] for p in pairs], bool), np.array([p[1] for p in pairs], bool)


def task_for(model: str, mode: str, k: int, base: Path) -> Task:
    """The task of ``model`` by its family (for books, by ``mode``: rate or recommend)."""
    try:
        entry = served_model(model)
    except ValueError as error:
        raise InputError(str(error)) from None
    if entry.family == "tabular":
        return TabularRows(TASKS[entry.name], TABULAR_REQUESTS[entry.name])
    if entry.family == "books":
        return BookRecommendations(k) if mode == "recommend" else BookRatings()
    return MaskImages(base)
