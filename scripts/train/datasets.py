"""Sample data the default models are trained on: generated (credit) or shipped (iris)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.tabular.contract import CREDIT_TASK, IRIS_TASK

DATA_DIR = Path(__file__).parent / "data"


def credit_sample(
    rows: int = 6000,
    seed: int = 7,
    label_noise: float = 0.03,
    debt_median: float = 0.5,
    debt_tolerated: float = 0.6,
) -> pd.DataFrame:
    """Synthetic companies with a planted, learnable rule for "unhealthy" plus label noise.

    A company is unhealthy when a weighted risk score is positive: high debt, low liquidity,
    thin margins, low returns and weak interest coverage all push it up. ``label_noise`` of
    the labels are flipped, so the best possible accuracy is about ``1 - label_noise``.
    ``debt_median`` and ``debt_tolerated`` move the population and the rule: a sector that
    lives with more debt (the retraining tests' shifted traffic) has both higher.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "debt_ratio": rng.lognormal(np.log(debt_median), 0.45, rows),
            "current_ratio": rng.lognormal(np.log(1.5), 0.5, rows),
            "operating_margin": rng.normal(0.08, 0.12, rows),
            "return_on_assets": rng.normal(0.04, 0.07, rows),
            "interest_coverage": np.clip(rng.normal(5.0, 6.0, rows), -20, 60),
        }
    ).round(4)
    risk = (
        3.0 * (frame.debt_ratio - debt_tolerated)
        - 1.2 * (frame.current_ratio - 1.3)
        - 6.0 * frame.operating_margin
        - 8.0 * frame.return_on_assets
        - 0.12 * (frame.interest_coverage - 3.0)
        + 0.35
    )
    unhealthy = (risk > 0).to_numpy()
    flipped = rng.random(rows) < label_noise
    frame["label"] = np.where(unhealthy ^ flipped, CREDIT_TASK.labels[1], CREDIT_TASK.labels[0])
    return frame


def iris() -> pd.DataFrame:
    """Fisher's iris data (150 rows, public domain), shipped in ``scripts/data/iris.csv``."""
    frame = pd.read_csv(DATA_DIR / "iris.csv").rename(columns={"species": "label"})
    assert tuple(frame.columns[:-1]) == IRIS_TASK.features
    return frame
