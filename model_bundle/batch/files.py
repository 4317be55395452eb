"""Reading input files in chunks and writing output parts (CSV or Parquet, by extension).

Chunks keep memory bounded whatever the file's size: pandas reads CSV ``rows`` lines at a
time, pyarrow reads Parquet ``rows`` rows at a time. A folder of images is an input too: a
table with one ``path`` column. Outputs are written chunk by chunk as parts, then joined.

A Parquet chunk keeps its Arrow record batch beside the pandas view the tasks validate: the
columns that pass through are written back as they were read, with no pandas round trip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models.mask.images import FORMATS

Format = Literal["csv", "parquet"]
SUFFIXES: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
assert len(FORMATS) == 4  # JPEG, PNG, WebP, BMP: the suffixes above


def file_format(path: Path) -> Format:
    try:
        return SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: not a .csv or .parquet file") from None


def image_table(folder: Path) -> pd.DataFrame:
    """The images in ``folder`` (and below), sorted, as paths relative to it."""
    paths = sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )
    return pd.DataFrame({"path": pd.Series(paths, dtype=object)})


def columns(path: Path) -> list[str]:
    """The input's column names (without reading its rows)."""
    if path.is_dir():
        return ["path"]
    if file_format(path) == "parquet":
        return list(pq.read_schema(path).names)
    return list(pd.read_csv(path, nrows=0).columns)


def total_rows(path: Path) -> int | None:
    """Row count when it is cheap to know (Parquet metadata, a folder), else None."""
    if path.is_dir():
        return len(image_table(path))
    if file_format(path) == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    return None


@dataclass(frozen=True)
class ArrowChunk:
    """A chunk of a Parquet file: the record batch as read, and a pandas view of it. The
    view has one block per column (``split_blocks``): numeric columns are views of Arrow's
    buffers, not copied into one 2-D block (a third of the conversion's cost; the views are
    read-only, and nothing writes into a chunk's columns). Its column names are plain
    objects, not pandas' Arrow-backed strings: looking a column up by name cost 2.5 times
    as much with those, and validation looks up every field."""

    batch: pa.RecordBatch
    frame: pd.DataFrame

    @classmethod
    def of(cls, batch: pa.RecordBatch) -> ArrowChunk:
        frame = batch.to_pandas(split_blocks=True)
        frame.columns = pd.Index(batch.schema.names, dtype=object)
        return cls(batch, frame)

    def __len__(self) -> int:
        return self.batch.num_rows


Rows = pd.DataFrame | ArrowChunk  # a chunk as read: pandas from CSV or a folder


def read_chunks(path: Path, rows: int, text: Sequence[str] = ()) -> Iterator[Rows]:
    """The input, ``rows`` rows at a time; ``text`` columns of a CSV are read as strings
    (an ISBN keeps its leading zeros). An empty input yields nothing."""
    if path.is_dir():
        table = image_table(path)
        for start in range(0, len(table), rows):
            yield table.iloc[start : start + rows].reset_index(drop=True)
    elif file_format(path) == "parquet":
        yield from map(ArrowChunk.of, pq.ParquetFile(path).iter_batches(batch_size=rows))
    else:
        yield from pd.read_csv(path, chunksize=rows, dtype={name: str for name in text})


def pieces(rows: Rows, size: int) -> Iterator[tuple[int, Rows]]:
    """(offset, piece) of a chunk in pieces of at most ``size`` rows, all about as large: a
    chunk is what a run resumes by, a piece what it predicts while the piece before is
    written, and the last piece's writing is what nothing overlaps. An Arrow chunk's pieces
    are slices of its batch and of its pandas view (no copy, no conversion again)."""
    count = -(-len(rows) // size)  # pieces, rounded up
    if count <= 1:
        yield 0, rows
        return
    step = -(-len(rows) // count)
    for start in range(0, len(rows), step):
        if isinstance(rows, ArrowChunk):
            piece = ArrowChunk(rows.batch.slice(start, step), rows.frame.iloc[start : start + step])
            yield start, piece
        else:
            yield start, rows.iloc[start : start + step]


def frame_of(rows: Rows) -> pd.DataFrame:
    return rows if isinstance(rows, pd.DataFrame) else rows.frame


def table_of(data: pd.DataFrame | pa.Table) -> pa.Table:
    return data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)


def write(data: pd.DataFrame | pa.Table, path: Path, fmt: Format) -> None:
    """Write atomically: a crash leaves either the whole part or none of it."""
    part = PartWriter(path, fmt)
    part.write(data)
    part.close()


class PartWriter:
    """A part written piece by piece, atomically like :func:`write`: into ``.partial``,
    renamed by :meth:`close`. Pieces without rows add nothing (a piece whose rows were all
    refused lacks the prediction columns); a part of such pieces only is the first of them,
    its columns and no rows.

    A Parquet part takes its schema from the first piece. When a later piece's types differ
    (a column that was all nulls until then), the part is written anew under the schema that
    holds every piece: the pieces stay in memory until the part is closed, as the whole chunk
    did when it was written at once."""

    def __init__(self, path: Path, fmt: Format) -> None:
        self.path, self.fmt = path, fmt
        self.partial = path.with_name(path.name + ".partial")
        self.rows = 0
        self._first: pd.DataFrame | pa.Table | None = None  # kept for a part with no rows
        self._tables: list[pa.Table] = []
        self._parquet: pq.ParquetWriter | None = None

    def write(self, data: pd.DataFrame | pa.Table) -> None:
        if self._first is None:
            self._first = data
        if len(data):
            self._append(data)

    def close(self) -> None:
        if self.rows == 0 and self._first is not None:
            self._append(self._first)
        if self._parquet is not None:
            self._parquet.close()
        os.replace(self.partial, self.path)

    def _append(self, data: pd.DataFrame | pa.Table) -> None:
        if self.fmt == "csv":
            frame = data.to_pandas() if isinstance(data, pa.Table) else data
            header = self.rows == 0
            frame.to_csv(self.partial, mode="w" if header else "a", header=header, index=False)
        else:
            self._append_parquet(table_of(data))
        self.rows += len(data)

    def _append_parquet(self, table: pa.Table) -> None:
        self._tables.append(table)
        if self._parquet is not None:
            try:
                self._parquet.write_table(table.cast(self._parquet.schema))
                return
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                self._parquet.close()  # a column's type widened: the part is written anew
        schema = unified([t.schema for t in self._tables]) or table.schema
        self._parquet = parquet_writer(self.partial, schema)
        for piece in self._tables:
            self._parquet.write_table(piece.cast(schema))


def parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """How every Parquet part and output is written. Uncompressed: snappy took half the time
    of writing a part (floats barely compress: 12% smaller), as long as the model's forward
    pass; any Parquet reader reads it."""
    return pq.ParquetWriter(path, schema, use_dictionary=text_columns(schema), compression="none")


def text_columns(schema: pa.Schema) -> list[str]:
    """Dictionary-encode text only (labels, tags repeat): on float columns, dictionary
    encoding cost three times the model's own time and saved nothing. Our label and tag
    columns arrive dictionary-typed (pandas categoricals): left out, pyarrow decoded them
    into a string per row and wrote those plain, which was half of writing a part."""
    return [
        f.name
        for f in schema
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_dictionary(f.type)
    ]


def join_parts(parts: Sequence[Path], output: Path, fmt: Format) -> None:
    """Concatenate parts into ``output`` part by part (never all in memory at once)."""
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    if len(parts) == 1:  # the usual case for a small file: nothing to concatenate
        linked_or_copied(parts[0], partial)
    elif fmt == "csv":
        with partial.open("wb") as sink:
            for number, part in enumerate(parts):
                with part.open("rb") as source:
                    header = source.readline()
                    if number == 0:
                        sink.write(header)
                    while block := source.read(1 << 20):
                        sink.write(block)
    else:
        schemas = [pq.read_schema(part) for part in parts]
        writer = None
        try:
            for part, schema in zip(parts, schemas, strict=True):
                table = pq.read_table(part)
                if writer is None:
                    schema = unified(schemas) or schema
                    writer = parquet_writer(partial, schema)
                writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
    os.replace(partial, output)


def linked_or_copied(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (the parts folder is beside the output, so on
    the same file system: no bytes copied), else a copy. The part stays in place until the
    run is finished, so an interruption still finds every recorded part."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def unified(schemas: Sequence[pa.Schema]) -> pa.Schema | None:
    """One schema for parts whose columns differ only by nulls (an all-null chunk column)."""
    try:
        return pa.unify_schemas(list(schemas), promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
