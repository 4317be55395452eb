"""Integrated gradients for the tabular classifiers, in the features' own units.

The attribution of feature ``i`` is ``(x_i - b_i) * mean over the path of d logit_c / d x_i``,
the path running straight from the baseline ``b`` to the input ``x`` and ``c`` the predicted
class. Completeness: the attributions sum to ``logit_c(x) - logit_c(b)``; the path integral is
taken adaptively (:func:`_path_integral`), exact up to float rounding for a ReLU network,
and the gap left is measured and reported with every answer (``completeness_gap``).

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

GRID = 64
MIN_WIDTH = 1e-7
MAX_POINTS = 8192
# Rows per forward pass: within the batch sizes an imported program accepts (imports export
# a dynamic batch dimension; scripts/imports/credit.py).
CHUNK = 64


class NotDifferentiableError(ValueError):
    """The model's program gives no gradient with respect to its input."""


@dataclass(frozen=True)
class Attribution:
    class_id: int
    attributions: np.ndarray  # float64 [F], in logit units
    baseline: np.ndarray  # float64 [F], raw feature units
    logit: float  # logit_c(x)
    baseline_logit: float  # logit_c(b)
    steps: int  # gradient evaluations the path took

    @property
    def completeness_gap(self) -> float:
        """|sum(attributions) - (logit_c(x) - logit_c(b))|."""
        return abs(float(self.attributions.sum()) - (self.logit - self.baseline_logit))


def range_midpoint(classifier: TabularClassifier) -> np.ndarray:
    """The documented baseline: the raw input the scaler maps to 0.5 on every feature."""
    scale = classifier.scaling.scale.double()
    low = classifier.scaling.min.double()
    return ((0.5 - low) / scale).numpy()


def _gradients(classifier: TabularClassifier, points: torch.Tensor, c: int) -> torch.Tensor:
    """d logit_c / d x at each row of ``points`` [P, F], float64 [P, F]."""
    chunks = []
    for start in range(0, len(points), CHUNK):
        chunk = points[start : start + CHUNK].clone().requires_grad_(True)
        try:
            with torch.inference_mode(False), torch.enable_grad():
                logits = classifier(chunk)
                (grads,) = torch.autograd.grad(logits[:, c].sum(), chunk)
        except (RuntimeError, AssertionError) as error:  # no grad_fn; a program's shape guard
            raise NotDifferentiableError(
                f"cannot take this model's input gradient: {str(error).splitlines()[0]}"
            ) from error
        chunks.append(grads.double())
    return torch.cat(chunks)


def _path_integral(
    classifier: TabularClassifier, x: torch.Tensor, base: torch.Tensor, c: int
) -> tuple[torch.Tensor, int]:
    """The mean gradient along the path (float64 [F]) and how many points it took.

    A ReLU network is linear between the path's breakpoints (where a unit switches), so its
    gradient is constant there. The path is cut into GRID cells; a cell whose two ends have
    the same gradient is exact; one whose ends differ holds a breakpoint and is halved,
    round after round (all such cells in one forward pass), until it is narrower than
    MIN_WIDTH or the point budget is spent; what is left counts by the trapezoid rule.
    A smooth network (no breakpoints) simply converges like the trapezoid rule."""

    def at(alphas: torch.Tensor) -> torch.Tensor:
        return _gradients(classifier, base + alphas[:, None].float() * (x - base), c)

    edges = torch.linspace(0, 1, GRID + 1, dtype=torch.float64)
    grads = at(edges)
    used = GRID + 1
    left, right = edges[:-1], edges[1:]
    g_left, g_right = grads[:-1], grads[1:]
    total = torch.zeros(grads.shape[1], dtype=torch.float64)
    while True:
        same = torch.isclose(g_left, g_right, rtol=1e-6, atol=1e-9).all(dim=1)
        width = right - left
        done = same | (width < MIN_WIDTH)
        if used + int((~done).sum()) > MAX_POINTS:
            done = torch.ones_like(done)
        total += (width[done, None] * (g_left[done] + g_right[done]) / 2).sum(dim=0)
        if done.all():
            return total, used
        left, right = left[~done], right[~done]
        g_left, g_right = g_left[~done], g_right[~done]
        middle = (left + right) / 2
        g_middle = at(middle)
        used += len(middle)
        left, right = torch.cat([left, middle]), torch.cat([middle, right])
        g_left, g_right = torch.cat([g_left, g_middle]), torch.cat([g_middle, g_right])


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
    mean_gradient, points = _path_integral(classifier, x, base, c)
    attributions = ((x - base).double()[0] * mean_gradient).numpy()
    return Attribution(c, attributions, b, float(ends[0, c]), float(ends[1, c]), points)


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
