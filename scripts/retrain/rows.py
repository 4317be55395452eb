"""Labelled rows of a tabular model for a retrain: the user's files and the feedback the
bundle joined to its answers, checked by the API's own rules (model_bundle/batch/rules.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from model_bundle.batch.files import file_format, frame_of, read_chunks
from model_bundle.batch.rules import check
from model_bundle.schemas import TABULAR_REQUESTS
from models.tabular.contract import TabularTask

SHOWN = 5  # refused rows named in the error


class DataError(ValueError):
    """Training data the retrain refuses: the message names the file, row and problem."""


def checked(frame: pd.DataFrame, task: TabularTask, where: str) -> pd.DataFrame:
    """``frame``'s features and label, every row valid, or DataError naming the bad ones."""
    columns = (*task.features, "label")
    if missing := [c for c in columns if c not in frame.columns]:
        raise DataError(f"{where}: no column {', '.join(missing)} (needs {', '.join(columns)})")
    result = check(frame, TABULAR_REQUESTS[task.name], task.features)
    problems = [f"row {i + 1}: {why}" for i, why in result.errors]
    labels = frame["label"].astype(str)
    unknown = ~labels.isin(task.labels)
    problems += [
        f"row {i + 1}: label {labels.iloc[i]!r} is not one of {list(task.labels)}"
        for i in unknown.to_numpy().nonzero()[0]
    ]
    if problems:
        shown = "; ".join(problems[:SHOWN])
        raise DataError(f"{where}: {len(problems)} bad rows ({shown})")
    clean = pd.DataFrame({name: result.values[name] for name in task.features})
    clean["label"] = labels.to_numpy()
    return clean


def read_files(paths: Sequence[Path], task: TabularTask) -> pd.DataFrame:
    """The rows of CSV or Parquet files (features and ``label``), in file order."""
    frames = []
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        try:
            file_format(path)
            frame = pd.concat(map(frame_of, read_chunks(path, 100_000)), ignore_index=True)
        except (ValueError, OSError) as error:
            raise DataError(f"{path}: {error}") from None
        frames.append(checked(frame, task, str(path)))
    return pd.concat(frames, ignore_index=True) if frames else empty(task)


def read_feedback(directory: Path | None, task: TabularTask) -> pd.DataFrame:
    """Labelled rows from the bundle's feedback log (``<state dir>/feedback/<model>/``):
    each line an answer's inputs and the label sent for it. Lines of other shapes (an older
    answer without inputs) are skipped: the log is the bundle's own, not user input."""
    folder = None if directory is None else directory / task.name
    if folder is None or not folder.is_dir():
        return empty(task)
    rows = []
    for path in sorted(folder.glob("*.jsonl*")):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
                rows.append(
                    {
                        **{f: float(record["inputs"][f]) for f in task.features},
                        "label": str(record["label"]),
                    }
                )
            except (ValueError, KeyError, TypeError):
                continue
    frame = pd.DataFrame(rows, columns=[*task.features, "label"])
    return checked(frame, task, f"{folder} (feedback)") if rows else empty(task)


def empty(task: TabularTask) -> pd.DataFrame:
    return pd.DataFrame(columns=[*task.features, "label"])
