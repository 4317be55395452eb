"""Train every default model that the model store ($BENTOML_HOME) does not have yet.

python -m scripts.train.defaults [--force]

Each training runs torch on one thread (scripts/train/threads.py), so the missing models are
trained two at a time in processes of their own, one per core of the two this bundle is
built for: the mask classifier, the longest, on one, the others one after another on the
other (measured: 25 s of training one after another, the mask's 18 s of it).
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import bentoml

from model_bundle.catalogue import CATALOGUE, MASK_CLASSIFIER

# Store name -> the module whose train() stores its default version.
DEFAULTS: dict[str, str] = {entry.name: entry.trainer for entry in CATALOGUE}
# The trainings that run at once: one torch thread each.
PARALLEL_TRAININGS = 2


def stored_tag(name: str) -> str | None:
    """The newest stored version of ``name``, or None."""
    try:
        return str(bentoml.models.get(f"{name}:latest").tag)
    except bentoml.exceptions.NotFound:
        return None


def train(name: str) -> str:
    """Train the default version of ``name`` and return its tag."""
    return str(importlib.import_module(DEFAULTS[name]).train())


def train_missing(force: bool = False) -> list[str]:
    """Train the defaults missing from the store (all of them with ``force``); return new tags
    in catalogue order."""
    missing = []
    for name in DEFAULTS:
        if not force and (stored := stored_tag(name)):
            print(f"{name}: in the store already ({stored})")
            continue
        missing.append(name)
    if len(missing) <= 1:
        return [train(name) for name in missing]
    # The longest first, so that it starts at once and the others fill the other worker.
    # "spawn": the workers start clean rather than as forks of a process that may have torch's
    # threads running (a fork keeps their locks, not the threads).
    longest_first = sorted(missing, key=lambda name: name != MASK_CLASSIFIER.name)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(PARALLEL_TRAININGS, mp_context=context) as pool:
        tags = dict(zip(longest_first, pool.map(train, longest_first), strict=True))
    return [tags[name] for name in missing]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="retrain even if present")
    train_missing(parser.parse_args().force)
