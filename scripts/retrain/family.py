"""What the retrain needs of a model family, so one command drives all of them: its new
data, its fingerprint, training, and the score both versions are judged by."""

from __future__ import annotations

import argparse
from typing import Any, Protocol


class Family(Protocol):
    measure: str  # the held-out score's name: "balanced_accuracy" (higher) or "rmse" (lower)

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The family's own options (its data)."""

    def read(self, options: argparse.Namespace) -> Any:
        """Every row the new version learns from (raises DataError naming a bad one)."""

    def size(self, data: Any) -> int: ...

    def digest(self, options: argparse.Namespace, data: Any) -> str:
        """The fingerprint of the data and held-out rows: the same twice, nothing new."""

    def split(self, options: argparse.Namespace, data: Any) -> tuple[Any, Any]:
        """(training rows, held-out rows), the same on every run of the same data."""

    def train(
        self, options: argparse.Namespace, rows: Any, holdout: Any, lineage: dict[str, Any]
    ) -> str:
        """Train on ``rows``, store with ``lineage``; the new tag."""

    def score(self, tag: str, holdout: Any) -> float:
        """``tag``'s held-out score, through the code that serves it."""
