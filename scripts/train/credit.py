"""Train the default credit-health model on generated sample data and store it.

python -m scripts.train.credit [--rows 6000] [--seed 7] [--temperature-scaling]

--temperature-scaling serves the version with the temperature fitted on its held-out rows
(when it lowers their calibration error; docs/EXPLANATIONS.md#calibration).
"""

from __future__ import annotations

import argparse

from models.tabular.contract import CREDIT_TASK
from scripts.train.datasets import credit_sample
from scripts.train.tabular import TrainingConfig, train_tabular


def train(rows: int = 6000, seed: int = 7, temperature_scaling: bool = False) -> str:
    frame = credit_sample(rows=rows, seed=seed)
    config = TrainingConfig(
        epochs=40,
        batch_size=128,
        learning_rate=5e-3,
        seed=seed,
        temperature_scaling=temperature_scaling,
    )
    return train_tabular(
        CREDIT_TASK,
        frame,
        config,
        source=f"scripts.train.credit (credit_sample rows={rows} seed={seed})",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--temperature-scaling", action="store_true")
    args = parser.parse_args()
    train(args.rows, args.seed, args.temperature_scaling)
