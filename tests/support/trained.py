"""The default models for a test session: trained once per version of the code that trains
them, then copied from a cache.

Training the four defaults takes most of the fast test set's time, and their training is
deterministic (tests/test_training.py checks it): models trained by the same code are the
same models. The cache key is a hash of every file that decides what training produces
(the trainers, the sample data, the model code, the catalogue) and of the torch version, so
any change to them trains afresh. A fresh clone (CI) has no cache and trains.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
from pathlib import Path

import torch

from tests.support.server import ROOT

CACHE = ROOT / ".cache" / "test-models"
INPUTS = (
    "scripts/train",
    "scripts/sample_data",
    "models",
    "model_bundle/catalogue.py",
    "model_bundle/monitoring/reference.py",  # the reference statistics training stores
)


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
    """Put the default models in the model store directory ``store`` (``$BENTOML_HOME/models``)
    as its latest versions: from the cache when this code trained them before, else trained
    now.

    On a miss every default is trained afresh (a test may have stored a version under a
    default's name already; it must neither stand in for the default nor reach the cache),
    and only the versions just trained are cached."""
    cached = CACHE / training_key()
    if not cached.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        # Test processes run side by side (pytest -n): one trains, the others wait for it.
        with (CACHE / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not cached.is_dir():
                train_into(cached, store)
    shutil.copytree(cached, store, dirs_exist_ok=True)  # the cache's `latest` files win


def train_into(cached: Path, store: Path) -> None:
    """Train every default into ``store`` and keep a copy of each in ``cached``."""
    from scripts.train.defaults import train_missing

    partial = cached.with_name(f"{cached.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    for tag in train_missing(force=True):
        name, version = tag.split(":")
        shutil.copytree(store / name / version, partial / name / version)
        (partial / name / "latest").write_text(version)
    partial.rename(cached)  # whole or not at all: an interrupted copy is never used
