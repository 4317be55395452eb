"""The drift tests, numpy only (nothing heavy on the serving path).

Defaults follow Evidently's automatic test selection (its docs, "how it works", release
0.1.50): with at most 1000 reference rows, numeric features use the two-sample
Kolmogorov-Smirnov test, drifting at p < 0.05 (confidence 0.95); with more, the Wasserstein
distance normalised by the reference's std, drifting above 0.1; categorical features use
Pearson's chi-square test (drifting at p < 0.05) up to 1000 reference rows and the
Jensen-Shannon distance (scipy's, natural log) beyond, drifting above 0.1. PSI is offered with the
usual bands (< 0.1 stable, 0.1-0.25 moderate, > 0.25 significant: drifting at 0.25) and used
for image embeddings. A numeric prediction (the book rating) shifts by the base-2
Jensen-Shannon distance of its histogram over the reference's decile bins. The tests are
checked against scipy's implementations in tests/test_monitoring_drift.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SMALL_REFERENCE_ROWS = 1000  # Evidently: KS / chi-square up to this, distances beyond
KS_P_VALUE = 0.05
WASSERSTEIN_STD = 0.1
JENSEN_SHANNON = 0.1
PSI_MODERATE, PSI_SIGNIFICANT = 0.1, 0.25
EPSILON = 1e-4  # empty bins: PSI and JS need no zero shares


def ks_statistic(reference: np.ndarray, live: np.ndarray) -> float:
    """The largest gap between the two empirical CDFs (scipy's ks_2samp statistic)."""
    reference, live = np.sort(reference), np.sort(live)
    points = np.concatenate([reference, live])
    gap = np.searchsorted(reference, points, side="right") / len(reference) - np.searchsorted(
        live, points, side="right"
    ) / len(live)
    return float(np.max(np.abs(gap)))


def ks_p_value(reference: np.ndarray, live: np.ndarray) -> float:
    """Two-sided two-sample KS p-value, asymptotic (Kolmogorov's distribution at
    sqrt(n m / (n + m)) D, with Stephens' small-sample correction)."""
    d = ks_statistic(reference, live)
    n, m = len(reference), len(live)
    en = math.sqrt(n * m / (n + m))
    x = (en + 0.12 + 0.11 / en) * d
    if x < 1e-3:
        return 1.0
    total = sum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101))
    return float(min(1.0, max(0.0, 2 * total)))


def gamma_q(a: float, x: float) -> float:
    """The regularised upper incomplete gamma function Q(a, x) (Numerical Recipes' gammq: the
    series below a + 1, Lentz's continued fraction above); chi-square's survival function is
    Q(dof / 2, statistic / 2)."""
    if x <= 0:
        return 1.0
    front = math.exp(-x + a * math.log(x) - math.lgamma(a))
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        for _ in range(1000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * front)
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1 / (d if abs(d) > tiny else tiny)
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return min(1.0, front * h)


def chi_square(observed: Sequence[float], expected: Sequence[float]) -> tuple[float, float]:
    """Pearson's chi-square goodness of fit (scipy.stats.chisquare): (statistic, p-value) with
    len - 1 degrees of freedom."""
    o, e = np.asarray(observed, float), np.asarray(expected, float)
    statistic = float(np.sum((o - e) ** 2 / e))
    return statistic, gamma_q((len(o) - 1) / 2, statistic / 2) if len(o) > 1 else 1.0


def wasserstein(reference: np.ndarray, live: np.ndarray) -> float:
    """1-D Wasserstein distance: the area between the two empirical CDFs."""
    reference, live = np.sort(reference), np.sort(live)
    points = np.sort(np.concatenate([reference, live]))
    widths = np.diff(points)
    cdf_ref = np.searchsorted(reference, points[:-1], side="right") / len(reference)
    cdf_live = np.searchsorted(live, points[:-1], side="right") / len(live)
    return float(np.sum(np.abs(cdf_ref - cdf_live) * widths))


def wasserstein_std(reference: np.ndarray, live: np.ndarray, std: float) -> float:
    """Evidently's normed Wasserstein: the distance in units of the reference's std."""
    return wasserstein(reference, live) / max(std, 1e-12)


def shares(counts: Sequence[float]) -> np.ndarray:
    array = np.asarray(counts, dtype=float) + EPSILON
    return array / array.sum()


def psi(reference_counts: Sequence[float], live_counts: Sequence[float]) -> float:
    """Population stability index over the same bins."""
    p, q = shares(reference_counts), shares(live_counts)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(p: Sequence[float], q: Sequence[float], base: float = math.e) -> float:
    """Jensen-Shannon distance (the square root of the divergence, as scipy's)."""
    a, b = np.asarray(p, float), np.asarray(q, float)
    a, b = a / a.sum(), b / b.sum()
    mid = (a + b) / 2

    def kl(x: np.ndarray) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log(x[mask] / mid[mask])))

    divergence = max(0.0, (kl(a) + kl(b)) / 2) / math.log(base)
    return math.sqrt(divergence)


def histogram(values: np.ndarray, edges: Sequence[float]) -> list[int]:
    """Counts over the reference's edges; values beyond them go to the outer bins."""
    inner = np.asarray(edges[1:-1], dtype=float)
    return np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(edges) - 1)[
        : len(edges) - 1
    ].tolist()


def numeric_drift(reference: Mapping[str, Any], live: np.ndarray) -> dict[str, Any]:
    """One numeric feature's drift against its stored reference (see reference.py)."""
    sample = np.asarray(reference["sample"], dtype=float)
    if reference["rows"] <= SMALL_REFERENCE_ROWS:
        test, score, threshold = "ks", ks_p_value(sample, live), KS_P_VALUE
        drifted = score < threshold
    else:
        test, threshold = "wasserstein", WASSERSTEIN_STD
        score = wasserstein_std(sample, live, reference["std"])
        drifted = score > threshold
    edges = reference["edges"]
    return {
        "kind": "numeric",
        "test": test,
        "score": round(score, 6),
        "threshold": threshold,
        "drifted": bool(drifted),
        "reference": {"edges": edges, "counts": reference["counts"]},
        "live": {"edges": edges, "counts": histogram(live, edges)},
    }


def embedding_drift(reference: Mapping[str, Any], live: np.ndarray) -> dict[str, Any]:
    """One principal component of the image embedding: PSI of the live projections over the
    reference's decile bins, drifting at the significant band (0.25)."""
    edges = reference["edges"]
    live_counts = histogram(live, edges)
    score = psi(reference["counts"], live_counts)
    return {
        "kind": "embedding",
        "test": "psi",
        "score": round(score, 6),
        "threshold": PSI_SIGNIFICANT,
        "drifted": score > PSI_SIGNIFICANT,
        "reference": {"edges": edges, "counts": reference["counts"]},
        "live": {"edges": edges, "counts": live_counts},
    }


def categorical_drift(
    reference: Mapping[str, float], live: Sequence[str], rows: int | None = None
) -> dict[str, Any]:
    """One categorical feature's drift against its reference shares (of ``rows`` reference
    rows): chi-square of the live counts against the reference's shares scaled to them
    (Evidently's, with a category missing from the reference at a tiny share) up to
    SMALL_REFERENCE_ROWS, else (or when ``rows`` is not known) the Jensen-Shannon distance."""
    categories = list(reference)
    counts = {c: 0 for c in categories}
    for value in live:
        counts[value] = counts.get(value, 0) + 1
    keys = list(counts)
    total = max(1, len(live))
    if rows is not None and rows <= SMALL_REFERENCE_ROWS:
        seen = [k for k in keys if counts[k] or reference.get(k, 0.0)]  # no empty cells
        expected = shares([reference.get(k, 0.0) for k in seen]) * total
        score = chi_square([counts[k] for k in seen], expected)[1]
        test, threshold, drifted = "chi_square", KS_P_VALUE, score < KS_P_VALUE
    else:
        score = jensen_shannon(
            [reference.get(k, 0.0) + EPSILON for k in keys], [counts[k] + EPSILON for k in keys]
        )
        test, threshold, drifted = "jensen_shannon", JENSEN_SHANNON, score > JENSEN_SHANNON
    return {
        "kind": "categorical",
        "test": test,
        "score": round(score, 6),
        "threshold": threshold,
        "drifted": bool(drifted),
        "reference": {"categories": dict(reference)},
        "live": {"categories": {k: counts[k] / total for k in keys}},
    }


def prediction_shift(reference: Mapping[str, float], live: Sequence[str]) -> dict[str, Any]:
    """The live predicted-label shares and their JS distance (base 2: 0..1) from the
    reference's; needs no labels."""
    total = max(1, len(live))
    counts = {label: 0 for label in reference}
    for label in live:
        counts[label] = counts.get(label, 0) + 1
    shares_live = {k: v / total for k, v in counts.items()}
    shift = (
        jensen_shannon([reference.get(k, 0.0) for k in counts], list(counts.values()), 2)
        if live
        else None
    )
    return {
        "reference": dict(reference),
        "live": shares_live,
        "shift": None if shift is None else round(shift, 6),
    }


def numeric_prediction_shift(reference: Mapping[str, Any], live: np.ndarray) -> dict[str, Any]:
    """A numeric prediction's shift (the book rating): the live histogram over the reference's
    decile edges and its base-2 Jensen-Shannon distance (0..1) from the reference's, so the
    shift means the same as a classifier's."""
    edges, counts = reference["edges"], reference["counts"]
    live_counts = histogram(live, edges) if len(live) else [0] * len(counts)
    shift = jensen_shannon(counts, live_counts, 2) if len(live) else None
    return {
        "reference": {"edges": edges, "counts": counts},
        "live": {"edges": edges, "counts": live_counts},
        "shift": None if shift is None else round(shift, 6),
    }


def model_drifts(features: Sequence[Mapping[str, Any]]) -> tuple[float | None, bool]:
    """(share of features drifting, whether the model drifts: at least half do)."""
    if not features:
        return None, False
    share = sum(f["drifted"] for f in features) / len(features)
    return share, share >= 0.5
