"""Train the default iris model on the shipped iris data set and store it.

python -m scripts.train.iris [--seed 0]
"""

from __future__ import annotations

import argparse

from models.tabular.contract import IRIS_TASK
from scripts.train.datasets import iris
from scripts.train.tabular import TrainingConfig, train_tabular


def train(seed: int = 0) -> str:
    return train_tabular(
        IRIS_TASK,
        iris(),
        TrainingConfig(
            epochs=150, batch_size=16, learning_rate=1e-2, holdout_fraction=0.3, seed=seed
        ),
        source=f"scripts.train.iris (iris.csv seed={seed})",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    train(parser.parse_args().seed)
