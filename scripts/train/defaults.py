"""Train every default model that the model store ($BENTOML_HOME) does not have yet.

python -m scripts.train.defaults [--force]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import bentoml

from model_bundle.catalogue import BOOK_RATING, MASK_CLASSIFIER
from models.tabular.contract import CREDIT, IRIS
from scripts.train import books as train_books
from scripts.train import credit as train_credit
from scripts.train import iris as train_iris
from scripts.train import mask as train_mask

DEFAULTS: dict[str, Callable[[], str]] = {
    CREDIT.name: train_credit.train,
    IRIS.name: train_iris.train,
    BOOK_RATING: train_books.train,
    MASK_CLASSIFIER: train_mask.train,
}


def stored_tag(name: str) -> str | None:
    """The newest stored version of ``name``, or None."""
    try:
        return str(bentoml.models.get(f"{name}:latest").tag)
    except bentoml.exceptions.NotFound:
        return None


def train_missing(force: bool = False) -> list[str]:
    """Train the defaults missing from the store (all of them with ``force``); return new tags."""
    trained = []
    for name, train in DEFAULTS.items():
        if not force and (stored := stored_tag(name)):
            print(f"{name}: in the store already ({stored})")
            continue
        trained.append(train())
    return trained


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="retrain even if present")
    train_missing(parser.parse_args().force)
