"""Reference statistics stored in an artifact's metadata (``metadata["reference"]``), from
the data a model was trained on (held-out part for predictions) or a user's reference file.

Per numeric feature: decile edges and counts (the histogram the report shows), mean, std,
the row count (which picks the test, see drift.py) and 200 quantiles as the sample the tests
compare live traffic with (a few KB per feature, whatever the data's size). Per categorical
feature: the row count and each category's share. Predictions: the predicted-class shares,
or for a numeric prediction (the book rating) the numeric statistics above."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.books.contract import COLD_REASONS

COLD_START = ("known", *COLD_REASONS.values())  # the book model's cold_start categories
BINS = 10
SAMPLE_QUANTILES = 200


def numeric_reference(values: Sequence[float]) -> dict[str, Any]:
    array = np.asarray(values, dtype=float)
    edges = np.unique(np.quantile(array, np.linspace(0, 1, BINS + 1)))
    if len(edges) < 2:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    counts = np.histogram(array, bins=edges)[0]
    sample = np.quantile(array, (np.arange(SAMPLE_QUANTILES) + 0.5) / SAMPLE_QUANTILES)
    return {
        "kind": "numeric",
        "rows": len(array),
        "mean": float(array.mean()),
        "std": float(array.std()),
        "edges": [round(float(e), 6) for e in edges],
        "counts": counts.astype(int).tolist(),
        "sample": [round(float(s), 6) for s in sample],
    }


def categorical_reference(values: Sequence[str], categories: Sequence[str]) -> dict[str, Any]:
    """A categorical feature: every known category's share (0 when absent) and the row count
    (which picks chi-square or Jensen-Shannon, see drift.py)."""
    return {
        "kind": "categorical",
        "rows": len(values),
        "categories": label_shares(values, categories),
    }


def label_shares(labels: Sequence[str], known: Sequence[str]) -> dict[str, float]:
    total = max(1, len(labels))
    return {label: sum(1 for x in labels if x == label) / total for label in known}


def tabular_reference(
    columns: Mapping[str, Sequence[float]], predicted: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """The reference of a tabular model: its features' statistics, and the predicted-class
    shares on held-out data."""
    return {
        "features": {name: numeric_reference(values) for name, values in columns.items()},
        "predictions": label_shares(predicted, labels),
    }


def books_reference(reasons: Sequence[str | None], ratings: Sequence[float]) -> dict[str, Any]:
    """The reference of the book model: the shares of known pairs and of each cold-start
    reason (the front records each answer's ``cold_start`` so), and the predicted ratings'
    numeric statistics."""
    return {
        "features": {
            "cold_start": categorical_reference([r or "known" for r in reasons], COLD_START)
        },
        "predictions": numeric_reference(ratings),
    }


def image_reference(
    statistics: Sequence[Mapping[str, float]], predicted: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """The reference of an image classifier: each per-photo statistic
    (models/mask/statistics.py) as a numeric feature, and the predicted-class shares."""
    names = list(statistics[0]) if statistics else []
    return {
        "features": {n: numeric_reference([s[n] for s in statistics]) for n in names},
        "predictions": label_shares(predicted, labels),
    }


EMBEDDING_COMPONENTS = 4


def embedding_reference(
    embeddings: np.ndarray, components: int = EMBEDDING_COMPONENTS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary, features) of a network's penultimate embeddings [N, D] of the reference
    photos: the summary is their mean and first principal components (what the runner
    projects each answer's embedding on), the features each component's projections as a
    numeric reference of kind "embedding" (named embedding_0, embedding_1, ...)."""
    array = np.asarray(embeddings, dtype=np.float64)
    mean = array.mean(axis=0)
    _, singular, vt = np.linalg.svd(array - mean, full_matrices=False)
    k = min(components, len(vt))
    variance = singular**2
    summary = {
        "mean": [round(float(v), 6) for v in mean],
        "components": [[round(float(v), 6) for v in row] for row in vt[:k]],
        "explained_variance": [
            round(float(v), 4) for v in variance[:k] / max(variance.sum(), 1e-12)
        ],
    }
    projected = project(array, summary)
    features = {
        f"embedding_{i}": {**numeric_reference(projected[:, i]), "kind": "embedding"}
        for i in range(k)
    }
    return summary, features


def project(embeddings: np.ndarray, summary: Mapping[str, Any]) -> np.ndarray:
    """Embeddings [N, D] on the summary's principal components: [N, K]."""
    mean = np.asarray(summary["mean"], dtype=np.float64)
    components = np.asarray(summary["components"], dtype=np.float64)
    return (np.asarray(embeddings, dtype=np.float64) - mean) @ components.T


def with_embedding(reference: dict[str, Any], embeddings: np.ndarray) -> dict[str, Any]:
    """An image reference with its embedding summary and components added."""
    summary, features = embedding_reference(embeddings)
    return {**reference, "features": {**reference["features"], **features}, "embedding": summary}
