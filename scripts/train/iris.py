"""Train the default iris model on the shipped iris data set and store it.

python -m scripts.train.iris [--seed 0] [--temperature-scaling]

--temperature-scaling serves the version with the temperature fitted on its held-out rows
(when it lowers their calibration error; docs/EXPLANATIONS.md#calibration).
"""

from __future__ import annotations

import argparse

from models.tabular.contract import IRIS_TASK
from scripts.train.datasets import iris
from scripts.train.tabular import TrainingConfig, train_tabular


def train(seed: int = 0, temperature_scaling: bool = False) -> str:
    return train_tabular(
        IRIS_TASK,
        iris(),
        TrainingConfig(
            epochs=150,
            batch_size=16,
            learning_rate=1e-2,
            holdout_fraction=0.3,
            seed=seed,
            temperature_scaling=temperature_scaling,
        ),
        source=f"scripts.train.iris (iris.csv seed={seed})",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature-scaling", action="store_true")
    args = parser.parse_args()
    train(args.seed, args.temperature_scaling)
