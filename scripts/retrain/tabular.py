"""Retraining credit_health and iris: labelled rows from files and the bundle's feedback."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from model_bundle.settings import settings
from models.artifact import Artifact, data_hash
from models.tabular.contract import TabularTask
from models.tabular.network import load_classifier
from scripts.retrain.evaluate import balanced_accuracy
from scripts.retrain.rows import read_feedback, read_files
from scripts.train.tabular import TrainingConfig, split, train_tabular

HOLDOUT_FRACTION = 0.2


@dataclass(frozen=True)
class TabularFamily:
    task: TabularTask
    measure: str = "balanced_accuracy"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("credit_health, iris")
        group.add_argument("--data", type=Path, nargs="*", default=[], help="labelled rows")
        group.add_argument("--holdout", type=Path, help="rows to judge on (default: 20%% of all)")
        group.add_argument(
            "--feedback", type=Path, default=settings.state_dir / "feedback", help="feedback log"
        )
        group.add_argument("--no-feedback", action="store_true", help="leave the feedback out")
        group.add_argument("--epochs", type=int, default=40)

    def read(self, options: argparse.Namespace) -> pd.DataFrame:
        feedback = None if options.no_feedback else options.feedback
        parts = [read_files(options.data, self.task), read_feedback(feedback, self.task)]
        return pd.concat(parts, ignore_index=True)

    def size(self, data: pd.DataFrame) -> int:
        return len(data)

    def digest(self, options: argparse.Namespace, data: pd.DataFrame) -> str:
        return data_hash(data, *([options.holdout.read_bytes()] if options.holdout else []))

    def split(
        self, options: argparse.Namespace, data: pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        if options.holdout is not None:
            return data, read_files([options.holdout], self.task)
        return split(data, HOLDOUT_FRACTION, options.seed)

    def train(
        self,
        options: argparse.Namespace,
        rows: pd.DataFrame,
        holdout: pd.DataFrame,
        lineage: dict[str, Any],
    ) -> str:
        lineage["files"] = [str(path) for path in options.data]
        lineage["holdout"] = str(options.holdout or f"{HOLDOUT_FRACTION:.0%} of the rows")
        config = TrainingConfig(epochs=options.epochs, batch_size=128, learning_rate=5e-3)
        return train_tabular(
            self.task,
            rows,
            config,
            source=f"scripts.retrain from {lineage['parent']}",
            holdout=holdout,
            name=options.name or self.task.name,
            lineage=lineage,
        )

    def score(self, tag: str, holdout: pd.DataFrame) -> float:
        """Balanced accuracy (evaluate.balanced_accuracy), through the served classifier."""
        classifier = load_classifier(Artifact.load(tag), self.task)
        x = torch.tensor(holdout[list(self.task.features)].to_numpy(np.float32))
        with torch.inference_mode():
            predicted = classifier(x).argmax(dim=1).numpy()
        truth = np.array([self.task.labels.index(label) for label in holdout["label"]])
        return balanced_accuracy(predicted, truth)
