"""The default models for a test session: trained once per version of the code that trains
them, then copied from a cache.

Training the four defaults takes most of the fast test set's time, and their training is
deterministic (tests/test_training.py checks it): models trained by the same code are the
same models. The cache key is a hash of every file that decides what training produces
(the trainers, the sample data, the model code, the catalogue) and of the torch version, so
any change to them trains afresh. A fresh clone (CI) has no cache and trains.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import torch

from tests.support.server import ROOT

CACHE = ROOT / ".cache" / "test-models"
INPUTS = ("scripts/train", "scripts/sample_data", "models", "model_bundle/catalogue.py")


def training_key() -> str:
    """A hash of what decides the default models."""
    digest = hashlib.sha256(torch.__version__.encode())
    for name in INPUTS:
        path = ROOT / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(ROOT)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def default_models(store: Path) -> None:
    """Fill the model store directory ``store`` (``$BENTOML_HOME/models``) with the default
    models: from the cache when this code trained them before, else by training them."""
    from scripts.train.defaults import train_missing

    cached = CACHE / training_key()
    if cached.is_dir():
        shutil.copytree(cached, store, dirs_exist_ok=True)
        return
    train_missing()
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = Path(shutil.copytree(store, CACHE / f"{cached.name}.partial", dirs_exist_ok=True))
    partial.rename(cached)  # whole or not at all: an interrupted copy is never used
