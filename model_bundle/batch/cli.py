"""Batch predictions over a file: python -m model_bundle.batch MODEL INPUT OUTPUT

MODEL is credit_health, iris, book_rating or mask_classifier. INPUT is a CSV or Parquet
file (for mask_classifier also a folder of images); OUTPUT gets the same rows with the
prediction columns appended, in the format its extension names. Rows that cannot be
predicted go to OUTPUT.errors.csv (row number, reason). Exit status: 0 every row
predicted, 1 some rows failed, 2 usage or input error, 3 the server or engine failed
(finished chunks are kept: run again with --resume), 130 interrupted (likewise).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

from model_bundle.catalogue import BOOK_RATING, CATALOGUE, MASK_CLASSIFIER

MODELS = tuple(entry.name for entry in CATALOGUE)
OK, ROWS_FAILED, USAGE, ENGINE_FAILED, INTERRUPTED = 0, 1, 2, 3, 130


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="python -m model_bundle.batch",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parse.add_argument("model", choices=MODELS)
    parse.add_argument(
        "input", type=Path, help="CSV or Parquet file (mask_classifier: or a folder)"
    )
    parse.add_argument("output", type=Path, help="CSV or Parquet file to write")
    parse.add_argument("--chunk-rows", type=int, default=100_000, help="rows read at a time")
    parse.add_argument("--batch-size", type=int, default=4096, help="rows per forward pass")
    parse.add_argument("--k", type=int, default=10, help="book_rating, users only: books per user")
    parse.add_argument("--model-tag", default="", help="store tag (default: as the runners)")
    parse.add_argument("--resume", action="store_true", help="skip chunks finished earlier")
    parse.add_argument("--quiet", action="store_true", help="no progress bar")
    engine = parse.add_argument_group("engines (default: in-process)")
    engine.add_argument("--url", help="send the rows to the bundle serving at URL instead")
    engine.add_argument("--concurrency", type=int, default=8, help="--url: requests in flight")
    engine.add_argument("--retries", type=int, default=5, help="--url: retries of a 503/429")
    engine.add_argument("--engine", choices=("local", "ray"), default="local")
    engine.add_argument("--ray-address", default=None, help="--engine ray: cluster (default local)")
    engine.add_argument("--workers", type=int, default=2, help="--engine ray: model replicas")
    return parse


def mode_for(model: str, input_path: Path) -> str:
    """book_rating rates pairs when the input has an isbn column, else recommends."""
    from model_bundle.batch import files

    if model == BOOK_RATING.name and "isbn" not in files.columns(input_path):
        return "recommend"
    return "rate" if model == BOOK_RATING.name else "classify"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from model_bundle.batch import files
    from model_bundle.batch.resume import Manifest, ResumeError, fingerprint
    from model_bundle.batch.run import errors_path, parts_directory, run
    from model_bundle.batch.tasks import InputError, task_for

    try:
        if args.chunk_rows < 1 or args.batch_size < 1 or args.concurrency < 1:
            raise InputError("--chunk-rows, --batch-size and --concurrency must be positive")
        if not args.input.exists():
            raise InputError(f"{args.input}: no such file or folder")
        files.file_format(args.output)
        if not args.input.is_dir():
            files.file_format(args.input)
        elif args.model != MASK_CLASSIFIER.name:
            raise InputError("only mask_classifier reads a folder (of images)")
        mode = mode_for(args.model, args.input)
        base = args.input if args.input.is_dir() else args.input.resolve().parent
        task = task_for(args.model, mode, args.k, base)
    except (InputError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE

    from bentoml.exceptions import NotFound

    from model_bundle.batch.remote import ServerError

    if args.engine == "ray":
        from model_bundle.batch.ray_engine import run_on_ray

        try:
            return run_on_ray(task, args)
        except NotFound as error:
            print(f"error: {error} (train or import it first: make models)", file=sys.stderr)
            return USAGE

    try:
        if args.url:
            from model_bundle.batch.remote import RemoteEngine

            engine = RemoteEngine(task, args.url, args.concurrency, args.retries)
        else:
            from model_bundle.batch.local import LocalEngine

            engine = LocalEngine(task, args.batch_size, args.model_tag)
        settings = {
            "model": args.model,
            "mode": mode,
            "k": args.k,
            "tag": engine.tag,
            "chunk_rows": args.chunk_rows,
        }
        run_id = fingerprint(args.input, **settings)
        manifest = Manifest.open(parts_directory(args.output), run_id, args.resume)
        try:
            summary = run(engine, args.input, args.output, args.chunk_rows, manifest, args.quiet)
        finally:
            if args.url:
                engine.close()  # type: ignore[union-attr]
    except (InputError, ResumeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE
    except NotFound as error:
        print(f"error: {error} (train or import it first: make models)", file=sys.stderr)
        return USAGE
    except ServerError as error:
        print(f"error: {error}; finished chunks are kept, run again with --resume", file=sys.stderr)
        return ENGINE_FAILED
    except KeyboardInterrupt:
        print("interrupted; finished chunks are kept, run again with --resume", file=sys.stderr)
        return INTERRUPTED
    print(summary.text(args.output, errors_path(args.output)), file=sys.stderr)
    return ROWS_FAILED if summary.failed else OK
