"""Import an FFM checkpoint trained by the Boostcamp baseline or pytorch-fm as ``book_rating``.

    python -m scripts.imports.books --checkpoint FFM.pt --data-dir DIR \
        [--layout boostcamp|ids] [--output raw|sigmoid] [--name book_rating] [--reference R.csv]

DIR holds the CSVs the checkpoint was trained on: the Boostcamp files (users.csv, books.csv,
train_ratings.csv, test_ratings.csv, sample_submission.csv) or the Book-Crossing dump
(BX-Users.csv, BX-Books.csv, BX-Book-Ratings.csv). The index maps are rebuilt from them the
way the baseline built them, and every parameter's shape is checked against the rebuilt
field sizes. --output says what the model's forward returned: ``raw`` (the baseline: the
rating itself) or ``sigmoid`` (pytorch-fm: a probability, served as 1 + 9 p).

--reference is a CSV of (user_id, isbn) pairs like the live traffic's (optionally with their
``rating``): the drift report compares the live share of cold starts and the predicted
ratings with the model's on these pairs. Without it drift reports ``no_reference``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model_bundle.catalogue import BOOK_RATING
from models.artifact import data_hash
from models.books.featurizer import BookCatalogue, BookFeaturizer, Layout
from models.books.model import BookRatingModel
from models.books.network import FieldAwareFactorizationMachine, Output
from scripts.imports.checkpoints import how_to_serve, read_checkpoint
from scripts.imports.reference import add_reference, books_import_reference
from scripts.train.book_data import BookData, load_book_crossing, load_boostcamp


def load_data(directory: Path) -> BookData:
    if (directory / "BX-Book-Ratings.csv").exists():
        return load_book_crossing(directory)
    if (directory / "train_ratings.csv").exists():
        return load_boostcamp(directory)
    raise ValueError(f"{directory} has neither train_ratings.csv nor BX-Book-Ratings.csv")


def from_data(
    state: dict[str, torch.Tensor], data_dir: Path, layout: Layout, output: Output
) -> tuple[BookRatingModel, dict[str, Any]]:
    """The model of an FFM state_dict, with the featuriser rebuilt from the CSVs it was trained
    on; and the metadata those give (training RMSE, data hash, age fill)."""
    data = load_data(data_dir)
    print(data.report.summary())
    featurizer = BookFeaturizer.fit(
        data.users, data.books, data.train, data.test, data.submission, layout
    )
    model = FieldAwareFactorizationMachine.from_state_dict(state, featurizer.field_dims)
    books = BookRatingModel(
        model, featurizer, BookCatalogue.fit(data.books, data.train, featurizer), output
    )
    encoded = featurizer.encode(data.train["user_id"].tolist(), data.train["isbn"].tolist())
    train_rmse = float(
        np.sqrt(np.mean((books.ratings(encoded.x) - data.train["rating"].to_numpy()) ** 2))
    )
    print(f"RMSE on the training ratings with --output {output}: {train_rmse:.4f}")
    metadata = {
        "metrics": {"train_rmse": round(train_rmse, 4)},
        "data_hash": data_hash(data.train, data.users, data.books),
        "age_fill": featurizer.age_fill,
    }
    return books, metadata


def import_checkpoint(
    checkpoint: Path,
    data_dir: Path,
    layout: Layout = "boostcamp",
    output: Output = "raw",
    name: str = BOOK_RATING.name,
    reference: Path | None = None,
) -> str:
    """Rebuild the featuriser from ``data_dir``, check and store the checkpoint (with the
    reference statistics of ``reference``, a ratings CSV, when given); return its tag."""
    state = read_checkpoint(checkpoint).state_dict
    if state is None:
        raise ValueError(f"{checkpoint} is a program archive; an FFM import takes a state_dict")
    books, metadata = from_data(state, data_dir, layout, output)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    metadata["source"] = f"imported {checkpoint.name} (sha256:{digest}) with data {data_dir.name}"
    if reference is not None:
        metadata = add_reference(metadata, books_import_reference(books, reference))
    return books.save(metadata, name=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--layout", choices=("boostcamp", "ids"), default="boostcamp")
    parser.add_argument("--output", choices=("raw", "sigmoid"), default="raw")
    parser.add_argument("--name", default=BOOK_RATING.name)
    parser.add_argument(
        "--reference",
        type=Path,
        help="reference ratings for drift: a CSV of user_id, isbn and optionally rating "
        "(without it: no_reference)",
    )
    args = parser.parse_args()
    try:
        tag = import_checkpoint(
            args.checkpoint, args.data_dir, args.layout, args.output, args.name, args.reference
        )
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"import_books: {error}\n")
    print(how_to_serve(tag, BOOK_RATING.name))


if __name__ == "__main__":
    main()
