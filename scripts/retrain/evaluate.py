"""The decision that follows the held-out comparison of the new version and the primary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Decision:
    """Whether the new version goes out, and why (in words for the log and the history)."""

    deploy: bool
    reasons: tuple[str, ...]


def decide(candidate: float, primary: float, margin: float, measure: str) -> Decision:
    """Out only when the new version beats the primary by ``margin`` on the same held-out
    rows (a higher accuracy; a lower RMSE). Equal or worse stays in the store, never served."""
    better = primary - candidate if measure == "rmse" else candidate - primary
    words = f"held-out {measure} {candidate:.4f} vs the primary's {primary:.4f}"
    if better >= margin:
        return Decision(True, (f"{words}: better by {better:.4f} (margin {margin:g})",))
    return Decision(False, (f"{words}: not better by the margin {margin:g}",))


def balanced_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """The mean recall over the classes present: a model answering the majority class always
    scores 1 / classes however imbalanced the rows (plain accuracy would reward it, and a
    retrain on shuffled labels learns exactly that)."""
    recalls = [float((predicted[truth == c] == c).mean()) for c in np.unique(truth)]
    return round(float(np.mean(recalls)), 4)


def rmse(predicted: np.ndarray, truth: np.ndarray) -> float:
    return round(float(np.sqrt(np.mean((predicted - truth) ** 2))), 4)
