"""``--engine ray``: the same prediction on Ray Data, for inputs beyond one machine.

Ray Data reads the input in parallel and runs :class:`Predictor` (the in-process engine
plus the task: the runners' own model code) on model replicas across the cluster; the
driver streams the answers back in input order and writes the output and errors files
as the other engines do. Every input row comes back as one row, so row numbers stay
right whatever blocks Ray forms. Ray is an optional extra (``requirements-batch.txt``).
Every node must see the model store (``BENTOML_HOME``) and this repository.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model_bundle.batch import files
from model_bundle.batch.resume import Manifest, fingerprint
from model_bundle.batch.run import Summary, errors_path, finish, parts_directory, predict_chunk
from model_bundle.batch.tasks import Task

ROOT = Path(__file__).resolve().parents[2]
ERROR = "_error"


class Predictor:
    """One model replica: rows in, the same rows with predictions (or ``_error``) out."""

    def __init__(self, task: Task, batch_size: int, tag: str) -> None:
        from model_bundle.batch.local import LocalEngine

        self.engine = LocalEngine(task, batch_size, tag)

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        predicted, refused = predict_chunk(self.engine, frame, first_row=0)
        refused_rows = {row - 1 for row, _ in refused}
        positions = [p for p in range(len(frame)) if p not in refused_rows]
        predicted.index = positions
        predicted[ERROR] = None
        bad = frame.iloc[sorted(refused_rows)].copy()
        bad[ERROR] = [reason for _, reason in refused]
        whole = pd.concat([predicted, bad]).sort_index() if len(bad) else predicted
        return whole.reset_index(drop=True)


def read(input_path: Path, task: Task) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import ray.data

    if input_path.is_dir():
        return ray.data.from_pandas(files.image_table(input_path))
    if files.file_format(input_path) == "parquet":
        return ray.data.read_parquet(str(input_path))
    text = {name: pa.string() for name in task.text_columns}
    return ray.data.read_csv(
        str(input_path), convert_options=pacsv.ConvertOptions(column_types=text)
    )


def numpy_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns back on numpy, as the local engine has them: Ray hands Arrow-backed ones, and an
    object column (a refused row's text among numbers) as its own pickled-object type, which
    pandas' CSV writer fails on ("'float' object is not subscriptable")."""
    for name, dtype in frame.dtypes.items():
        if not isinstance(dtype, np.dtype | pd.CategoricalDtype):
            frame[name] = frame[name].to_numpy()
    return frame


def integers_restored(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """Integral float columns (floats only because a refused row had a gap) back to int."""
    for name in filter(frame.columns.__contains__, names):
        column = frame[name]
        numpy_float = isinstance(column.dtype, np.dtype) and column.dtype.kind == "f"
        if numpy_float and len(column) and np.all(np.mod(column.to_numpy(), 1) == 0):
            frame[name] = column.astype(np.int64)
    return frame


def run_on_ray(task: Task, args: argparse.Namespace) -> int:
    import ray

    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    ray.init(
        address=args.ray_address,
        num_cpus=None if args.ray_address else args.workers + 1,  # + 1: the reader
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
    )
    try:
        return write_predictions(task, args)
    finally:
        ray.shutdown()


def write_predictions(task: Task, args: argparse.Namespace) -> int:
    from ray.data import DataContext

    from model_bundle.settings import settings
    from models.artifact import Artifact

    DataContext.get_current().execution_options.preserve_order = True
    tag = str(Artifact.load(args.model_tag or settings.model_tag(task.model)).tag)
    fmt = files.file_format(args.output)
    manifest = Manifest.open(
        parts_directory(args.output), fingerprint(args.input, engine="ray", tag=tag), False
    )
    started = time.perf_counter()
    predicted = read(args.input, task).map_batches(
        Predictor,
        fn_constructor_kwargs={"task": task, "batch_size": args.batch_size, "tag": tag},
        batch_format="pandas",
        batch_size=args.batch_size,
        concurrency=args.workers,
        num_cpus=1,
    )
    summary = Summary(tag=tag)
    batches = predicted.iter_batches(batch_format="pandas", batch_size=args.chunk_rows)
    for index, batch in enumerate(map(numpy_columns, batches)):
        bad = batch[ERROR].notna().to_numpy()
        good = integers_restored(batch[~bad].drop(columns=ERROR), (*task.columns, "class_id"))
        rows = summary.rows + 1 + np.flatnonzero(bad)
        refused = pd.DataFrame({"row": rows, "reason": batch[ERROR][bad].to_numpy()})
        files.write(good, manifest.part(index, "output", args.output.suffix), fmt)
        files.write(refused, manifest.part(index, "errors", ".csv"), "csv")
        manifest.finish(index, len(batch), int(bad.sum()))
        summary.rows += len(batch)
        summary.failed += int(bad.sum())
        summary.chunks += 1
    summary.predicted = summary.rows - summary.failed
    summary.seconds = time.perf_counter() - started
    finish(manifest, args.output, fmt, args.output.suffix)
    print(summary.text(args.output, errors_path(args.output)))
    return 1 if summary.failed else 0
