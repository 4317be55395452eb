"""One batch run: the input chunk by chunk through an engine, parts on disk, then one output.

Per chunk: validate and featurise (the task), predict (the engine), append the prediction
columns, write the output part and the errors part, record the chunk as finished. At the
end the parts are joined into OUTPUT and its errors file and removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

from model_bundle.batch import files
from model_bundle.batch.resume import Manifest
from model_bundle.batch.tasks import Prepared, Task


class Engine(Protocol):
    task: Task
    tag: str

    def __call__(self, inputs: Any) -> Any: ...


@dataclass
class Summary:
    rows: int = 0
    predicted: int = 0
    failed: int = 0
    chunks: int = 0
    resumed_chunks: int = 0
    seconds: float = 0.0
    tag: str = ""

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def text(self, output: Path, errors: Path) -> str:
        lines = [
            f"{self.rows:,} rows in {self.chunks} chunks ({self.resumed_chunks} done before):"
            f" {self.predicted:,} predicted, {self.failed:,} failed"
            f" by {self.tag} in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s)",
            f"predictions: {output}",
        ]
        if self.failed:
            lines.append(f"errors (row, reason): {errors}")
        return "\n".join(lines)


def errors_path(output: Path) -> Path:
    """OUTPUT.errors.csv beside OUTPUT (CSV whatever the output format: it is for people)."""
    return output.with_name(output.stem + ".errors.csv")


def parts_directory(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def with_predictions(prepared: Prepared, columns: dict[str, Any]) -> pd.DataFrame:
    """The valid rows with the prediction columns appended (replacing same-named ones: a
    re-run over an output file replaces its predictions)."""
    rows = prepared.rows
    if replaced := [name for name in columns if name in rows]:
        rows = rows.drop(columns=replaced)
    # One concat of two frames: inserting columns one by one is several times slower. The
    # prediction arrays are fresh, so the frame takes them as they are (copy=False).
    return pd.concat([rows, pd.DataFrame(columns, index=rows.index, copy=False)], axis=1)


def error_rows(prepared: Prepared, first_row: int) -> pd.DataFrame:
    """Row numbers count data rows from 1 (a CSV's header is not a row)."""
    return pd.DataFrame(
        {
            "row": [first_row + position + 1 for position, _ in prepared.errors],
            "reason": [reason for _, reason in prepared.errors],
        }
    )


def predict_chunk(
    engine: Engine, frame: pd.DataFrame, first_row: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows with predictions, refused rows) of one chunk."""
    prepared = engine.task.prepare(frame)
    predictions = engine(prepared.inputs) if len(prepared.rows) else None
    columns = engine.task.appended(predictions, engine.tag) if predictions is not None else {}
    return with_predictions(prepared, columns), error_rows(prepared, first_row)


def run(
    engine: Engine,
    input_path: Path,
    output: Path,
    chunk_rows: int,
    manifest: Manifest,
    quiet: bool = False,
    chunk_hook: Callable[[int], None] | None = None,
) -> Summary:
    """Predict every chunk not finished yet, then join the parts into ``output``."""
    fmt = files.file_format(output)
    suffix = output.suffix
    summary = Summary(tag=engine.tag)
    started = time.perf_counter()
    console = Console(stderr=True, quiet=quiet)
    progress = Progress(
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,.0f} rows"),
        TextColumn("[cyan]{task.fields[speed]}"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        bar = progress.add_task(
            f"{engine.task.model} ({engine.tag})", total=files.total_rows(input_path), speed=""
        )
        first_row = 0
        chunks: Iterator[pd.DataFrame] = files.read_chunks(
            input_path, chunk_rows, engine.task.text_columns
        )
        # One writer thread: pyarrow and file writes release the GIL, so a chunk is written
        # on the other core while the next one is predicted. Chunks are finished in order.
        with ThreadPoolExecutor(max_workers=1) as writer:
            writing: Future[None] | None = None
            for index, frame in enumerate(chunks):
                if manifest.done(index):
                    summary.resumed_chunks += 1
                    summary.failed += manifest.chunks[index]["failed"]
                else:
                    predicted, refused = predict_chunk(engine, frame, first_row)
                    if writing is not None:
                        writing.result()
                    writing = writer.submit(
                        save_chunk, manifest, index, predicted, refused, len(frame), fmt, suffix
                    )
                    summary.failed += len(refused)
                    if chunk_hook is not None:
                        writing.result()
                        chunk_hook(index)
                summary.chunks += 1
                summary.rows += len(frame)
                first_row += len(frame)
                elapsed = time.perf_counter() - started
                speed = f"{first_row / elapsed:,.0f} rows/s"
                progress.update(bar, completed=first_row, speed=speed)
            if writing is not None:
                writing.result()
    finish(manifest, output, fmt, suffix)  # part of the run's time: joining is writing too
    summary.predicted = summary.rows - summary.failed
    summary.seconds = time.perf_counter() - started
    return summary


def save_chunk(
    manifest: Manifest,
    index: int,
    predicted: pd.DataFrame,
    refused: pd.DataFrame,
    rows: int,
    fmt: files.Format,
    suffix: str,
) -> None:
    """Write a chunk's parts, then record it as finished (in that order: see resume.py). A
    chunk without refused rows has no errors part (``finish`` joins only the others)."""
    files.write(predicted, manifest.part(index, "output", suffix), fmt)
    if len(refused):
        files.write(refused, manifest.part(index, "errors", ".csv"), "csv")
    manifest.finish(index, rows, len(refused))


def finish(manifest: Manifest, output: Path, fmt: files.Format, suffix: str) -> None:
    """Join the parts into OUTPUT and OUTPUT.errors.csv (only when rows failed)."""
    numbers = sorted(manifest.chunks)
    if not numbers:  # an empty input: an empty output
        files.write(pd.DataFrame(), output, fmt)
    outputs = [manifest.part(n, "output", suffix) for n in numbers]
    nonempty = [
        p
        for n, p in zip(numbers, outputs, strict=True)
        if manifest.chunks[n]["rows"] > manifest.chunks[n]["failed"]
    ]
    if outputs:
        files.join_parts(nonempty or outputs[:1], output, fmt)
    errors = errors_path(output)
    failed = [manifest.part(n, "errors", ".csv") for n in numbers if manifest.chunks[n]["failed"]]
    if failed:
        files.join_parts(failed, errors, "csv")
    else:
        errors.unlink(missing_ok=True)
    for path in manifest.directory.iterdir():
        path.unlink()
    manifest.directory.rmdir()
