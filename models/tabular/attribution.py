"""Integrated gradients for the tabular classifiers, in the features' own units.

The attribution of feature ``i`` is ``(x_i - b_i) * mean over the path of d logit_c / d x_i``,
the path running straight from the baseline ``b`` to the input ``x`` and ``c`` the predicted
class. Completeness: the attributions sum to ``logit_c(x) - logit_c(b)``; the gap left by
the finite number of steps is measured and reported, and the steps doubled until it is below
``TOLERANCE`` (a ReLU network's path gradient is piecewise constant, so the midpoint rule
converges fast).

Baseline: the midpoint of each feature's training range (the scaler's ``data_min`` and
``data_max``): an "average-looking" input of the training data, in the features' own units.
Why not zeros: a zero debt ratio or petal width is itself an extreme input.

Works for our networks and for users' TorchScript and torch.export programs alike (only the
forward and autograd are needed); a program that cannot be differentiated raises
:class:`NotDifferentiableError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.tabular.network import TabularClassifier

TOLERANCE = 1e-5
FIRST_STEPS, MAX_STEPS = 256, 16384


class NotDifferentiableError(ValueError):
    """The model's program gives no gradient with respect to its input."""


@dataclass(frozen=True)
class Attribution:
    class_id: int
    attributions: np.ndarray  # float64 [F], in logit units
    baseline: np.ndarray  # float64 [F], raw feature units
    logit: float  # logit_c(x)
    baseline_logit: float  # logit_c(b)
    steps: int

    @property
    def completeness_gap(self) -> float:
        """|sum(attributions) - (logit_c(x) - logit_c(b))|."""
        return abs(float(self.attributions.sum()) - (self.logit - self.baseline_logit))


def range_midpoint(classifier: TabularClassifier) -> np.ndarray:
    """The documented baseline: the raw input the scaler maps to 0.5 on every feature."""
    scale = classifier.scaling.scale.double()
    low = classifier.scaling.min.double()
    return ((0.5 - low) / scale).numpy()


def _path_gradients(
    classifier: TabularClassifier, x: torch.Tensor, base: torch.Tensor, c: int, steps: int
) -> torch.Tensor:
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps  # midpoints
    path = (base + alphas[:, None] * (x - base)).requires_grad_(True)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            logits = classifier(path)
            (grads,) = torch.autograd.grad(logits[:, c].sum(), path)
    except RuntimeError as error:
        raise NotDifferentiableError(f"the model gives no input gradient: {error}") from error
    return grads.double().mean(dim=0)


def integrated_gradients(
    classifier: TabularClassifier, features: np.ndarray, baseline: np.ndarray | None = None
) -> Attribution:
    """Attributions of one row of raw features [F] to the predicted class's logit."""
    b = range_midpoint(classifier) if baseline is None else np.asarray(baseline, np.float64)
    x = torch.as_tensor(np.asarray(features, np.float32)).reshape(1, -1)
    base = torch.as_tensor(b, dtype=torch.float32).reshape(1, -1)
    with torch.inference_mode():
        ends = classifier(torch.cat([x, base])).double()
    c = int(ends[0].argmax())
    logit, baseline_logit = float(ends[0, c]), float(ends[1, c])
    delta = (x - base).double()[0]
    steps = FIRST_STEPS
    while True:
        attributions = (delta * _path_gradients(classifier, x, base, c, steps)).numpy()
        result = Attribution(c, attributions, b, logit, baseline_logit, steps)
        if result.completeness_gap < TOLERANCE or steps >= MAX_STEPS:
            return result
        steps *= 2


def explain_row(classifier: TabularClassifier, features: tuple[str, ...], row: np.ndarray) -> dict:
    """The answer's explanation of one row: per feature its value, baseline and attribution
    (logit units of the predicted class), or why there is none."""
    try:
        result = integrated_gradients(classifier, row)
    except NotDifferentiableError as error:
        return {"available": False, "reason": str(error)}
    return {
        "available": True,
        "method": "integrated_gradients",
        "target": "logit of the predicted class",
        "class_id": result.class_id,
        "logit": result.logit,
        "baseline_logit": result.baseline_logit,
        "completeness_gap": result.completeness_gap,
        "steps": result.steps,
        "features": [
            {
                "feature": name,
                "value": float(value),
                "baseline": float(base),
                "attribution": float(attribution),
            }
            for name, value, base, attribution in zip(
                features,
                np.asarray(row).tolist(),
                result.baseline.tolist(),
                result.attributions.tolist(),
                strict=True,
            )
        ],
    }
