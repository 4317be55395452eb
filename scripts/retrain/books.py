"""Retraining book_rating: new rating files added to the data the primary was trained on."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from model_bundle.batch.files import file_format, frame_of, read_chunks
from models.artifact import Artifact, data_hash
from models.books.model import BookRatingModel
from scripts.retrain.evaluate import rmse
from scripts.retrain.rows import SHOWN, DataError
from scripts.train.book_data import BookData, load_boostcamp, rating_checks
from scripts.train.books import SAMPLE, FFMConfig, sample, train_on

HOLDOUT_FRACTION = 0.2
COLUMNS = ("user_id", "isbn", "rating")
PROBLEMS = {
    "user_id": "user_id {!r} is not an integer",
    "isbn": "isbn {!r} is not 1 to 32 characters",
    "rating": "rating {!r} is not an integer 1..10",
}


@dataclass(frozen=True)
class Ratings:
    """The base data (what the primary was trained on) and the new ratings, in file order."""

    base: BookData
    new: pd.DataFrame  # user_id (int64), isbn (str), rating (int64)


def read_ratings(path: Path) -> pd.DataFrame:
    """A file's (user_id, isbn, rating) rows, every one valid by the training data's rules
    (scripts/train/book_data.py rating_checks), or DataError naming the bad rows."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        file_format(path)
        frame = pd.concat(
            map(frame_of, read_chunks(path, 100_000, text=COLUMNS)), ignore_index=True
        )
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: {error}") from None
    if missing := [c for c in COLUMNS if c not in frame.columns]:
        raise DataError(f"{path}: no column {', '.join(missing)} (needs {', '.join(COLUMNS)})")
    checks = rating_checks(frame, rated=True)
    bad = np.flatnonzero(~np.logical_and.reduce([ok.to_numpy() for ok in checks.values()]))
    if len(bad):
        shown = "; ".join(
            f"row {i + 1}: {PROBLEMS[column].format(frame[column].iloc[i])}"
            for i in bad[:SHOWN]
            for column, ok in checks.items()
            if not ok.iloc[i]
        )
        raise DataError(f"{path}: {len(bad)} bad rows ({shown})")
    return pd.DataFrame(
        {
            "user_id": pd.to_numeric(frame["user_id"]).astype(np.int64),
            "isbn": frame["isbn"].astype(str),
            "rating": pd.to_numeric(frame["rating"]).astype(np.int64),
        }
    )


@dataclass(frozen=True)
class BooksFamily:
    measure: str = "rmse"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("book_rating")
        group.add_argument(
            "--ratings", type=Path, nargs="*", default=[], help="new user_id,isbn,rating rows"
        )
        group.add_argument(
            "--data-dir",
            type=Path,
            help=f"the Boostcamp CSVs the primary was trained on (default: the {SAMPLE} "
            "sample of --seed, as scripts.train.books generates it)",
        )
        group.add_argument("--layout", choices=("boostcamp", "ids"), default="boostcamp")
        group.add_argument("--epochs", type=int, default=30, help="at most (early stopping)")

    def read(self, options: argparse.Namespace) -> Ratings:
        if not options.ratings:
            raise DataError("book_rating: --ratings NEW.csv ... is needed (the new ratings)")
        new = pd.concat([read_ratings(path) for path in options.ratings], ignore_index=True)
        directory = options.data_dir
        if directory is None:
            return Ratings(sample(options.seed), new)
        if not (directory / "train_ratings.csv").is_file():
            raise DataError(f"{directory}: no train_ratings.csv (the Boostcamp layout)")
        return Ratings(load_boostcamp(directory), new)

    def size(self, data: Ratings) -> int:
        return len(data.new)

    def digest(self, options: argparse.Namespace, data: Ratings) -> str:
        base = data.base
        settings = f"layout={options.layout} seed={options.seed} epochs={options.epochs}"
        return data_hash(base.train, base.users, base.books, data.new, settings.encode())

    def split(self, options: argparse.Namespace, data: Ratings) -> tuple[Ratings, pd.DataFrame]:
        """A seeded fifth of the new ratings is held out: the question is whether the new
        version answers the new data better. The rest joins the base data, in file order."""
        order = np.random.default_rng(options.seed).permutation(len(data.new))
        held = np.zeros(len(data.new), bool)
        held[order[: round(len(data.new) * HOLDOUT_FRACTION)]] = True
        rows = replace(data, new=data.new[~held].reset_index(drop=True))
        return rows, data.new[held].reset_index(drop=True)

    def train(
        self,
        options: argparse.Namespace,
        rows: Ratings,
        holdout: pd.DataFrame,
        lineage: dict[str, object],
    ) -> str:
        lineage["files"] = [str(path) for path in options.ratings]
        lineage["base"] = str(options.data_dir or f"{SAMPLE} seed={options.seed}")
        lineage["holdout"] = f"{HOLDOUT_FRACTION:.0%} of the new ratings"
        base = rows.base
        data = replace(base, train=pd.concat([base.train, rows.new], ignore_index=True))
        config = FFMConfig(max_epochs=options.epochs, seed=options.seed)
        return train_on(
            data,
            options.layout,
            config,
            f"scripts.retrain from {lineage['parent']}",
            name=options.name or "book_rating",
            lineage=lineage,
        )

    def score(self, tag: str, holdout: pd.DataFrame) -> float:
        """RMSE over every held-out pair as serving rates it: the model's rating where it
        knows the user and the book, the cold-start fallback where it does not."""
        model = BookRatingModel.load(Artifact.load(tag))
        rated = model.rate_arrays(holdout["user_id"].tolist(), holdout["isbn"].tolist())
        return rmse(rated.ratings, holdout["rating"].to_numpy(np.float64))
