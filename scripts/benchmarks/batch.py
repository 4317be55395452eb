"""Batch prediction throughput: in-process against the raw model, and through a server.

    python -m scripts.benchmarks.batch [--rows 200000] [--write]

For each model: the raw model (forward passes on ready inputs, best batch size), the
in-process pipeline without file I/O (validate, featurise, predict, append columns) and
``model_bundle.batch.cli`` end to end (Parquet in, Parquet out) at several batch sizes, then
``--url`` against a bundle started here. With --write the report goes to
docs/PERFORMANCE-batch.md. Uses the models of $BENTOML_HOME (``make models``).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model_bundle.batch import files
from model_bundle.batch.cli import MODELS
from model_bundle.batch.local import LocalEngine
from model_bundle.batch.remote import RemoteEngine
from model_bundle.batch.resume import Manifest, fingerprint
from model_bundle.batch.run import parts_directory, predict_chunk, run
from model_bundle.batch.tasks import task_for
from model_bundle.settings import settings
from models.artifact import Artifact
from models.books.model import BookRatingModel
from scripts.benchmarks import goals, load
from scripts.benchmarks.goals import Goal
from scripts.sample_data import mask as mask_sample
from scripts.train.datasets import credit_sample, iris
from tests.support import server as serving

REPORT = serving.ROOT / "docs" / "PERFORMANCE-batch.md"
# The models whose batch prediction the goals are about: models so small that validation and
# the files, not the network, decide the speed.
TINY_MODELS = ("credit_health", "iris")
IN_MEMORY_GOAL = 0.7
END_TO_END_GOAL = 0.5
BATCH_SIZES = (1024, 4096, 16384)
SECONDS = 1.0
ROUNDS = 3
PIPELINE_ROWS = 32_768


@dataclass
class Figures:
    model: str
    rows: int
    raw: float = 0.0
    raw_batch: int = 0
    pipeline: float = 0.0
    end_to_end: float = 0.0
    best_batch: int = 0
    url: float = 0.0
    url_rows: int = 0


def inputs(directory: Path, rows: int) -> dict[str, tuple[Path, int]]:
    """(input file, rows) per model: Parquet tables and a folder of photos."""
    rng = np.random.default_rng(0)
    credit = credit_sample(rows).drop(columns="label")
    flowers = iris().drop(columns="label")
    flowers = flowers.iloc[rng.integers(0, len(flowers), rows)].reset_index(drop=True)
    books = BookRatingModel.load(Artifact.load(settings.model_tag("book_rating")))
    pairs = pd.DataFrame(
        {
            "user_id": rng.choice(books.featurizer.user_ids, rows),
            "isbn": rng.choice(books.featurizer.isbns.astype(object), rows),
        }
    )
    photos = directory / "photos"
    photos.mkdir()
    images = max(rows // 1000, 32)
    for i in range(images):
        (photos / f"{i:05d}.jpg").write_bytes(mask_sample.jpeg(i % 18, seed=i))
    tables = {"credit_health": credit, "iris": flowers, "book_rating": pairs}
    sources = {}
    for name, table in tables.items():
        table.to_parquet(directory / f"{name}.parquet", index=False)
        sources[name] = (directory / f"{name}.parquet", len(table))
    sources["mask_classifier"] = (photos, images)
    return sources


def forward_of(name: str, engine: LocalEngine) -> Callable[[np.ndarray], object]:
    """The model's forward pass alone, on inputs featurised beforehand."""
    artifact = Artifact.load(engine.tag)
    if name == "book_rating":
        return BookRatingModel.load(artifact).ratings
    if name == "mask_classifier":
        from models.mask.network import MaskClassifier

        return MaskClassifier(artifact).classify
    from models.tabular.network import load_classifier

    return load_classifier(artifact, engine.task.task).predict_proba  # type: ignore[attr-defined]


def raw_inputs(name: str, engine: LocalEngine, rows: files.Rows) -> np.ndarray:
    inputs = engine.task.prepare(files.frame_of(rows)).inputs
    if name == "book_rating":
        return BookRatingModel.load(Artifact.load(engine.tag)).featurizer.encode(*inputs).x
    return inputs


def end_to_end(engine: LocalEngine, source: Path, out: Path, chunk_rows: int) -> float:
    """Rows/s of a whole run (read, validate, predict, write parts, join), model loaded."""
    run_id = fingerprint(source, bench=True)
    manifest = Manifest.open(parts_directory(out), run_id, resume=False)
    return run(engine, source, out, chunk_rows, manifest, quiet=True).rows_per_second


def measure(rows: int, models: list[str], url: bool) -> list[Figures]:
    """Best of ROUNDS for each figure, rounds interleaved: the machine is shared, and a
    busy moment should not decide a ratio."""
    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as temporary:
        directory = Path(temporary)
        sources = inputs(directory, rows)
        for model, (source, count) in sources.items():
            if model not in models:
                continue
            figures = Figures(model, count)
            mode = "rate" if model == "book_rating" else "classify"
            sizes = (16, 64) if model == "mask_classifier" else BATCH_SIZES
            engines = {size: LocalEngine(task_for(model, mode, 10, source), size) for size in sizes}
            first = engines[sizes[0]]
            frame = next(files.read_chunks(source, PIPELINE_ROWS, first.task.text_columns))
            forward, x = forward_of(model, first), raw_inputs(model, first, frame)
            for _ in range(ROUNDS):
                for size, engine in engines.items():
                    part = x[:size]
                    raw = load.per_second(lambda p=part, f=forward: f(p), SECONDS, len(part))
                    figures.raw, figures.raw_batch = max(
                        (figures.raw, figures.raw_batch), (raw, size)
                    )
                    rate = load.per_second(
                        lambda e=engine, f=frame: predict_chunk(e, f, 0), SECONDS, len(frame)
                    )
                    figures.pipeline = max(figures.pipeline, rate)
                    out = directory / f"{model}-{size}.parquet"
                    out.unlink(missing_ok=True)  # each run writes a new file, as a user's does
                    rate = end_to_end(engine, source, out, 100_000)
                    if rate > figures.end_to_end:
                        figures.end_to_end, figures.best_batch = rate, size
            print(figures, flush=True)
            results.append(figures)
        if not url:
            return results
        server = serving.launch(directory / "serve.log")
        try:
            for figures in results:
                source, count = sources[figures.model]
                # iris has no batch endpoint (one request a row): a smaller file
                if figures.model == "iris":
                    small = directory / "iris-small.parquet"
                    pd.read_parquet(source).iloc[:2000].to_parquet(small, index=False)
                    source, count = small, 2000
                mode = "rate" if figures.model == "book_rating" else "classify"
                engine = RemoteEngine(task_for(figures.model, mode, 10, source), server.url)
                out = directory / f"{figures.model}-url.parquet"
                figures.url = end_to_end(engine, source, out, 100_000)  # type: ignore[arg-type]
                figures.url_rows = count
                engine.close()
                print(figures.model, "url", figures.url, flush=True)
        finally:
            serving.stop(server.process)
    return results


def report(results: list[Figures], rows: int) -> str:
    lines = [
        "# Batch prediction throughput",
        "",
        f"`python -m scripts.benchmarks.batch --rows {rows} --write` on {platform.machine()},"
        f" {os.cpu_count()} cores, torch {torch.__version__}, one torch thread;"
        " the machine is shared, so absolute figures vary between runs (load average"
        f" {os.getloadavg()[0]:.1f} when the run ended).",
        "",
        "- **raw model**: forward passes on inputs prepared beforehand, best batch size;",
        "- **pipeline**: validation (the API's rules), featurising, prediction and the appended"
        f" columns for a {PIPELINE_ROWS:,}-row chunk in memory (no file I/O), best batch size;",
        "- **end to end**: a whole `model_bundle.batch.cli` run, Parquet in, Parquet out, chunks"
        " of 100,000 rows (reading, writing parts, joining them; the model loaded before);",
        f"- best of {ROUNDS} interleaved rounds: raw and pipeline {SECONDS:.0f} s each, end to end"
        " one run;",
        "- **--url**: the same file through a bundle started on this machine.",
        "",
        "| model | rows | raw model rows/s (batch) | pipeline rows/s (% raw) |"
        " end to end rows/s (% raw, batch) | --url rows/s (rows) |",
        "|---|---|---|---|---|---|",
    ]
    for f in results:
        lines.append(
            f"| {f.model} | {f.rows:,} | {f.raw:,.0f} ({f.raw_batch}) |"
            f" {f.pipeline:,.0f} ({f.pipeline / f.raw:.0%}) |"
            f" {f.end_to_end:,.0f} ({f.end_to_end / f.raw:.0%}, {f.best_batch}) |"
            + (f" {f.url:,.0f} ({f.url_rows:,}) |" if f.url else " not measured |")
        )
    lines += ["", *goals.markdown(goal_rows(results)), ""]
    return "\n".join(lines)


def goal_rows(results: list[Figures]) -> list[Goal]:
    """The tiny models' goals: the pipeline at 70 % of the raw model in memory, a whole run
    at 50 % end to end with Parquet."""
    rows: list[Goal] = []
    for f in (f for f in results if f.model in TINY_MODELS):
        in_memory, end_to_end = f.pipeline / f.raw, f.end_to_end / f.raw
        rows += [
            Goal(
                f"{f.model}: in memory at least {IN_MEMORY_GOAL:.0%} of the raw model",
                f"{in_memory:.0%}",
                in_memory >= IN_MEMORY_GOAL,
            ),
            Goal(
                f"{f.model}: end to end with Parquet at least {END_TO_END_GOAL:.0%} of the raw "
                "model",
                f"{end_to_end:.0%}",
                end_to_end >= END_TO_END_GOAL,
            ),
        ]
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--write", action="store_true", help="write docs/PERFORMANCE-batch.md")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--no-url", action="store_true", help="skip the server")
    arguments = parser.parse_args()
    results = measure(arguments.rows, arguments.models, not arguments.no_url)
    text = report(results, arguments.rows)
    print(text)
    if arguments.write:
        REPORT.write_text(text)
