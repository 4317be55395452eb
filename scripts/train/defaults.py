"""Train every default model that the model store ($BENTOML_HOME) does not have yet.

python -m scripts.train.defaults [--force]
"""

from __future__ import annotations

import argparse
import importlib

import bentoml

from model_bundle.catalogue import CATALOGUE

# Store name -> the module whose train() stores its default version.
DEFAULTS: dict[str, str] = {entry.name: entry.trainer for entry in CATALOGUE}


def stored_tag(name: str) -> str | None:
    """The newest stored version of ``name``, or None."""
    try:
        return str(bentoml.models.get(f"{name}:latest").tag)
    except bentoml.exceptions.NotFound:
        return None


def train_missing(force: bool = False) -> list[str]:
    """Train the defaults missing from the store (all of them with ``force``); return new tags."""
    trained = []
    for name in DEFAULTS:
        if not force and (stored := stored_tag(name)):
            print(f"{name}: in the store already ({stored})")
            continue
        trained.append(importlib.import_module(DEFAULTS[name]).train())
    return trained


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="retrain even if present")
    train_missing(parser.parse_args().force)
