"""One batch run: the input chunk by chunk through an engine, parts on disk, then one output.

Per chunk: validate and featurise (the task), predict (the engine), append the prediction
columns, write the output part and the errors part, record the chunk as finished. At the
end the parts are joined into OUTPUT and its errors file and removed. A chunk goes through
in pieces of ``PIECE_ROWS``, each written while the next is predicted.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

from model_bundle.batch import files
from model_bundle.batch.resume import Manifest
from model_bundle.batch.tasks import Prepared, Task

# Rows predicted while the piece before is written (on the writer thread: pyarrow's writing
# releases the GIL). For the tiny models writing a part took as long as the model; a whole
# chunk at once left one core idle for either. Eight batches of the default batch size.
PIECE_ROWS = 32_768


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


def arrow_with_predictions(
    chunk: files.ArrowChunk, prepared: Prepared, columns: dict[str, Any]
) -> pa.Table:
    """:func:`with_predictions` for a chunk read as Arrow, built in Arrow: the columns that
    pass through are the ones read (filtered to the valid rows, never converted), a checked
    field the task changed (text read as numbers, say) is taken from the prepared rows, and
    the prediction arrays are wrapped, not copied. Converting the whole frame to Arrow cost
    more than the model. The input's pandas metadata is not carried over: it describes the
    input's columns and index, not these."""
    source, frame = chunk.batch, chunk.frame
    kept = None
    if prepared.errors:
        kept = np.ones(len(source), bool)
        kept[[position for position, _ in prepared.errors]] = False
    rows = prepared.rows
    changed = (
        set()
        if rows is frame  # nothing refused, nothing converted
        else {name for name, a, b in zip(frame, frame.dtypes, rows.dtypes, strict=True) if a != b}
    )
    names = [name for name in source.schema.names if name not in columns]
    arrays = [
        pa.array(rows[name].to_numpy())
        if name in changed
        else source.column(name)
        if kept is None
        else source.column(name).filter(kept)
        for name in names
    ]
    arrays += [arrow_column(values, len(rows)) for values in columns.values()]
    return pa.Table.from_arrays(arrays, [*names, *columns])


def arrow_column(values: Any, rows: int) -> pa.Array:
    """A task's appended column (numpy array, categorical, list or one value for every row)
    as Arrow, with the type pandas would have given it."""
    if isinstance(values, pd.Categorical):
        codes = values.codes
        missing = codes < 0
        indices = pa.array(codes, mask=missing) if missing.any() else pa.array(codes)
        return pa.DictionaryArray.from_arrays(indices, dictionary(values.dtype))
    if isinstance(values, str):
        return pa.repeat(values, rows)
    return pa.array(values)


@functools.lru_cache(maxsize=64)
def dictionary(dtype: pd.CategoricalDtype) -> pa.Array:
    """A categorical type's labels as Arrow, once per type (tasks.categories builds one per
    label set)."""
    return pa.array(dtype.categories.to_numpy())


Refused = list[tuple[int, str]]  # (row number, reason): rows counted from 1, as in the file


def error_rows(prepared: Prepared, first_row: int) -> Refused:
    """Row numbers count data rows from 1 (a CSV's header is not a row). A list, not a
    frame: most chunks have none, and an empty frame costs more than validating a piece."""
    return [(first_row + position + 1, reason) for position, reason in prepared.errors]


def errors_frame(refused: Refused) -> pd.DataFrame:
    """The errors file's columns."""
    return pd.DataFrame({"row": [r for r, _ in refused], "reason": [r for _, r in refused]})


def predict_chunk(
    engine: Engine, rows: files.Rows, first_row: int
) -> tuple[pd.DataFrame | pa.Table, Refused]:
    """(rows with predictions, refused rows) of one chunk, the former in the chunk's kind:
    pandas for pandas, Arrow for Arrow."""
    prepared = engine.task.prepare(files.frame_of(rows))
    predictions = engine(prepared.inputs) if len(prepared.rows) else None
    columns = engine.task.appended(predictions, engine.tag) if predictions is not None else {}
    if isinstance(rows, pd.DataFrame):
        return with_predictions(prepared, columns), error_rows(prepared, first_row)
    return arrow_with_predictions(rows, prepared, columns), error_rows(prepared, first_row)


def run(
    engine: Engine,
    input_path: Path,
    output: Path,
    chunk_rows: int,
    manifest: Manifest,
    quiet: bool = False,
    chunk_hook: Callable[[int], None] | None = None,
    piece_rows: int = PIECE_ROWS,
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
        disable=quiet,  # no display thread to start and stop
    )
    with progress:
        bar = progress.add_task(
            f"{engine.task.model} ({engine.tag})", total=files.total_rows(input_path), speed=""
        )
        first_row = 0
        chunks: Iterator[files.Rows] = files.read_chunks(
            input_path, chunk_rows, engine.task.text_columns
        )
        # One writer thread: pyarrow and file writes release the GIL, so a chunk is written
        # on the other core while the next one is predicted. Chunks are finished in order.
        with ThreadPoolExecutor(max_workers=1) as writer:
            writing: Future[None] | None = None
            for index, rows in enumerate(chunks):
                if manifest.done(index):
                    summary.resumed_chunks += 1
                    summary.failed += manifest.chunks[index]["failed"]
                else:
                    part = files.PartWriter(manifest.part(index, "output", suffix), fmt)
                    refused: Refused = []
                    for offset, piece in files.pieces(rows, piece_rows):
                        predicted, failed = predict_chunk(engine, piece, first_row + offset)
                        refused += failed
                        if writing is not None:
                            writing.result()  # at most one piece waits to be written
                        writing = writer.submit(part.write, predicted)
                    writing = writer.submit(save_chunk, manifest, index, part, refused, len(rows))
                    summary.failed += len(refused)
                    if chunk_hook is not None:
                        writing.result()
                        chunk_hook(index)
                summary.chunks += 1
                summary.rows += len(rows)
                first_row += len(rows)
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
    manifest: Manifest, index: int, part: files.PartWriter, refused: Refused, rows: int
) -> None:
    """Close a chunk's output part, write its errors part, then record it as finished (in
    that order: see resume.py). A chunk without refused rows has no errors part (``finish``
    joins only the others)."""
    part.close()
    if refused:
        files.write(errors_frame(refused), manifest.part(index, "errors", ".csv"), "csv")
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
