"""Reference statistics of an imported model, from the user's reference data file.

An import knows nothing of the data a checkpoint was trained on; the drift report needs it
(``model_bundle/monitoring/reference.py``). ``--reference FILE`` gives it: the features come
from the file, the predicted shares from the imported model's own predictions on it, and,
when the file has labels, the calibration on them (``models/calibration.py``). Without the
file nothing is stored and the drift report says ``no_reference`` instead of guessing.

A bad file is refused before anything is stored, naming the column (and row) at fault.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from model_bundle.monitoring.reference import (
    books_reference,
    image_reference,
    tabular_reference,
    with_embedding,
)
from models.books.model import BookRatingModel
from models.calibration import calibration
from models.mask.contract import NUM_CLASSES, Preprocessing, resize
from models.mask.images import InvalidImageError, load_rgb
from models.mask.network import MaskBaseModel, normalise
from models.mask.statistics import image_statistics
from models.tabular.contract import TabularTask
from models.tabular.network import TabularClassifier

LABEL = "label"
BOOK_COLUMNS = ("user_id", "isbn")
RATING = "rating"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
BATCH = 64


def read_csv(path: Path) -> pd.DataFrame:
    """The file as strings (so a bad value is reported as written); refuse an empty file."""
    if not path.is_file():
        raise FileNotFoundError(f"reference file {path} does not exist")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"reference file {path} is not a CSV file: {error}") from None
    if frame.empty:
        raise ValueError(f"reference file {path} has no rows")
    return frame


def require_columns(frame: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    for column in columns:
        if column not in frame.columns:
            raise ValueError(
                f"reference file {path} has no column {column!r} "
                f"(needs {', '.join(columns)}; has {', '.join(map(str, frame.columns))})"
            )


def numeric_column(frame: pd.DataFrame, path: Path, column: str) -> np.ndarray:
    """A column of finite numbers, or a ValueError naming the column, row and value."""
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        row = int(bad[0])
        raise ValueError(
            f"reference file {path}: column {column!r} row {row + 1} is "
            f"{frame[column].iloc[row]!r}, not a finite number"
        )
    return values


def class_ids(frame: pd.DataFrame, path: Path, labels: tuple[str, ...]) -> np.ndarray | None:
    """The ``label`` column as class indices (a label name or its index), None without one."""
    if LABEL not in frame.columns:
        return None
    index = {name: i for i, name in enumerate(labels)} | {str(i): i for i in range(len(labels))}
    ids = []
    for row, value in enumerate(frame[LABEL].str.strip()):
        if value not in index:
            raise ValueError(
                f"reference file {path}: column {LABEL!r} row {row + 1} is {value!r}, "
                f"not one of {list(labels)} (or their indices 0..{len(labels) - 1})"
            )
        ids.append(index[value])
    return np.asarray(ids)


def calibrated(
    logits: np.ndarray, ids: np.ndarray | None, scaling: bool, path: Path
) -> dict[str, Any]:
    """The metadata a labelled reference adds: the calibration and the accuracy on it."""
    if ids is None:
        if scaling:
            raise ValueError(
                f"--temperature-scaling needs labels: reference file {path} has no {LABEL!r} column"
            )
        return {}
    accuracy = float((logits.argmax(axis=1) == ids).mean())
    return {
        "calibration": calibration(logits, ids, scaling=scaling),
        "metrics": {"reference_accuracy": round(accuracy, 4), "reference_rows": len(ids)},
    }


def tabular_import_reference(
    classifier: TabularClassifier, task: TabularTask, path: Path, scaling: bool = False
) -> dict[str, Any]:
    """What an import adds to a tabular artifact's metadata from its reference file:
    ``reference``, and with labels ``calibration`` and ``metrics``."""
    frame = read_csv(path)
    require_columns(frame, path, task.features)
    columns = {name: numeric_column(frame, path, name) for name in task.features}
    ids = class_ids(frame, path, task.labels)
    x = torch.from_numpy(np.stack([columns[n] for n in task.features], axis=1).astype(np.float32))
    with torch.inference_mode():
        logits = classifier(x).numpy().astype(np.float64)
    predicted = [task.labels[i] for i in logits.argmax(axis=1)]
    added = {"reference": tabular_reference(columns, predicted, task.labels)}
    return added | calibrated(logits, ids, scaling, path)


def books_import_reference(books: BookRatingModel, path: Path) -> dict[str, Any]:
    """What a book import adds from its reference ratings file (user_id, isbn, optionally
    rating): the cold-start shares and predicted ratings of its pairs through the model, and
    with ratings the RMSE on them."""
    frame = read_csv(path)
    require_columns(frame, path, BOOK_COLUMNS)
    user_ids = numeric_column(frame, path, "user_id")
    if not np.array_equal(user_ids, np.round(user_ids)):
        row = int(np.flatnonzero(user_ids != np.round(user_ids))[0])
        raise ValueError(
            f"reference file {path}: column 'user_id' row {row + 1} is "
            f"{frame['user_id'].iloc[row]!r}, not an integer"
        )
    isbns = frame["isbn"].str.strip().tolist()
    rated = books.rate_arrays(user_ids.astype(np.int64).tolist(), isbns)
    added: dict[str, Any] = {"reference": books_reference(rated.reasons(), rated.ratings.tolist())}
    if RATING in frame.columns:
        actual = numeric_column(frame, path, RATING)
        outside = np.flatnonzero((actual < 1) | (actual > 10))
        if len(outside):
            row = int(outside[0])
            raise ValueError(
                f"reference file {path}: column {RATING!r} row {row + 1} is "
                f"{frame[RATING].iloc[row]!r}, not a rating in 1..10 (leave the column out "
                "when the ratings are unknown)"
            )
        rmse = float(np.sqrt(np.mean((rated.ratings - actual) ** 2)))
        added["metrics"] = {"reference_rmse": round(rmse, 4), "reference_rows": len(actual)}
    return added


def photo_labels(directory: Path) -> tuple[list[Path], np.ndarray | None]:
    """The photos under ``directory`` (by suffix, recursively, sorted) and their class ids
    when every photo is in a subfolder named by one (0..17), else None."""
    if not directory.is_dir():
        raise FileNotFoundError(f"reference folder {directory} does not exist")
    photos = sorted(p for p in directory.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise ValueError(
            f"reference folder {directory} holds no photos ({', '.join(PHOTO_SUFFIXES)})"
        )
    names = [p.relative_to(directory).parts for p in photos]
    classes = {str(c): c for c in range(NUM_CLASSES)}
    if all(len(parts) == 2 and parts[0] in classes for parts in names):
        return photos, np.array([classes[parts[0]] for parts in names])
    return photos, None


def image_import_reference(
    network: torch.nn.Module, prep: Preprocessing, directory: Path, scaling: bool = False
) -> dict[str, Any]:
    """What a mask import adds from a folder of photos: their statistics and the network's
    predicted shares on them; labelled (class-id subfolders), the calibration and accuracy."""
    photos, ids = photo_labels(directory)
    statistics, logits, embeddings = [], [], []
    ours = isinstance(network, MaskBaseModel)  # a program's penultimate layer is unknown
    for start in range(0, len(photos), BATCH):
        pixels = []
        for photo in photos[start : start + BATCH]:
            try:
                image = load_rgb(photo.read_bytes())
            except InvalidImageError as error:
                raise ValueError(f"reference photo {photo}: {error}") from None
            pixels.append(resize(image, prep))
            statistics.append(image_statistics(image, pixels[-1]))
        with torch.inference_mode():
            x = normalise(np.stack(pixels), prep)
            logits.append(network(x).numpy())
            if ours:
                embeddings.append(network.embed(x).numpy())
    all_logits = np.concatenate(logits).astype(np.float64)
    classes = [str(c) for c in range(NUM_CLASSES)]
    predicted = [classes[i] for i in all_logits.argmax(axis=1)]
    reference = image_reference(statistics, predicted, classes)
    if ours and len(photos) > 1:
        reference = with_embedding(reference, np.concatenate(embeddings))
    added = {"reference": reference}
    if ids is None and scaling:
        raise ValueError(
            f"--temperature-scaling needs labels: put the photos of {directory} in "
            "subfolders named by class id (0..17)"
        )
    return added | calibrated(all_logits, ids, False if ids is None else scaling, directory)


def add_reference(metadata: dict[str, Any], added: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` with what a reference file gave (metrics merged, not replaced)."""
    merged = {**metadata, **added}
    if "metrics" in added:
        merged["metrics"] = {**metadata.get("metrics", {}), **added["metrics"]}
    return merged


def add_reference_options(parser: Any, what: str) -> None:
    """``--reference`` and ``--temperature-scaling``, the same on every import command."""
    parser.add_argument(
        "--reference",
        type=Path,
        help=f"reference data for drift and calibration: {what} (without it: no_reference)",
    )
    parser.add_argument(
        "--temperature-scaling",
        action="store_true",
        help="serve the temperature fitted on the labelled reference when it lowers the ECE",
    )
