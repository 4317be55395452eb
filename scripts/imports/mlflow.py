"""Import a model registered in MLflow into the model store, or sync an alias to the bundle.

    python -m scripts.imports.mlflow MODEL_URI --model NAME [--name STORE_NAME]
        [--tracking-uri URI] [model options]
    python -m scripts.imports.mlflow sync MODEL_URI --model NAME --as primary|candidate
        [--url http://localhost:3000] [--admin-key KEY] [model options]

NAME is a served model: credit_health, iris, book_rating or mask_classifier. MODEL_URI is
``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``; the registry is ``--tracking-uri`` or
``MLFLOW_TRACKING_URI``. The registered version's files may be a ``state_dict``
(``mlflow.pytorch.log_state_dict``), a TorchScript program logged with
``mlflow.pytorch.log_model`` (MLflow writes it with ``torch.jit.save`` as ``data/model.pth``)
or a torch.export program (``data/model.pt2``); the book model takes a state_dict only (its
FFM is our architecture). A whole module pickled by ``log_model`` is refused: loading it
would run arbitrary code from the registry.

What a network needs beside its weights comes from the version's run, as the training
scripts log it (``scripts/train/tracking.py``), or from the options:

* credit_health, iris: the scaler, the run's ``scaler.json`` or ``--scaler``, a joblib
  ``MinMaxScaler`` as for ``scripts.imports.credit``;
* book_rating: the index tables and catalogue, the run's ``tables/`` or ``--data-dir`` (the
  CSVs it was trained on, as for ``scripts.imports.books``, with ``--layout``); the output
  kind from the run's ``output`` param or ``--output``;
* mask_classifier: the input size and normalisation, the run's ``preprocessing.json`` or
  ``--height --width --mean --std``.

``--reference`` gives the reference statistics the drift report compares live traffic with
(and, labelled, the calibration; ``--temperature-scaling`` serves the fitted temperature), as
for the other import commands; without it drift reports ``no_reference``.

The artifact's metadata keeps the lineage (``mlflow``: registered name, version, aliases, run
id, the run's params and metrics). ``sync`` imports a version only once (the same registered
version is found in the store by that lineage) and then asks the running bundle, through the
admin API, to load it as candidate (first dropping a different candidate that is loaded) or to
load and promote it. Needs the ``requirements-mlflow.txt`` extra; serving does not.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import joblib
import torch

from model_bundle import admin
from model_bundle.catalogue import BOOK_RATING, CATALOGUE, MASK_CLASSIFIER
from models.books.model import BookRatingModel
from models.mask.contract import Preprocessing
from models.tabular.contract import TASKS, TabularTask
from models.tabular.network import MinMaxScaler, TabularClassifier, tabular_metadata
from scripts.imports import books as book_import
from scripts.imports import mask as mask_import
from scripts.imports.checkpoints import check_logits, how_to_serve, read_checkpoint, save_imported
from scripts.imports.credit import read_network
from scripts.imports.reference import (
    add_reference,
    add_reference_options,
    books_import_reference,
    tabular_import_reference,
)
from scripts.imports.registry import (
    RefusedError,
    Registered,
    connect,
    download_version,
    resolve,
    run_document,
    run_files,
    stored_tag,
    weights_file,
)
from scripts.train.tracking import PREPROCESSING_FILE, SCALER_FILE, TABLES_PATH

SUPPORTED = tuple(entry.name for entry in CATALOGUE)


def read_scaler(client: Any, registered: Registered, scaler_path: Path | None) -> MinMaxScaler:
    """``--scaler`` if given, else the run's ``scaler.json``."""
    if scaler_path is not None:
        return MinMaxScaler.from_sklearn(joblib.load(scaler_path))
    document = run_document(client, registered, SCALER_FILE)
    if document is None:
        raise RefusedError(
            f"run {registered.run_id} logged no {SCALER_FILE} "
            "(data_min, data_max, scale, min): pass --scaler"
        )
    try:
        return MinMaxScaler.from_metadata(document)
    except (KeyError, TypeError, ValueError) as error:
        raise RefusedError(
            f"{SCALER_FILE} of run {registered.run_id} is malformed: {error}"
        ) from None


def import_tabular(
    client: Any,
    registered: Registered,
    task: TabularTask,
    *,
    name: str | None = None,
    scaler_path: Path | None = None,
    reference: Path | None = None,
    temperature_scaling: bool = False,
) -> str:
    """Download, check and store one registered version (with the reference statistics of
    ``reference``, a CSV, when given); return the new store tag."""
    scaler = read_scaler(client, registered, scaler_path)
    if len(scaler.scale) != len(task.features):
        raise RefusedError(
            f"the scaler has {len(scaler.scale)} features; {task.name} needs {len(task.features)}"
        )
    with tempfile.TemporaryDirectory() as directory:
        checkpoint, network, hidden = read_network(
            weights_file(download_version(registered, directory)), task
        )
    probe = torch.zeros(3, len(task.features))
    classifier = TabularClassifier(scaler.module(), network)
    check_logits(classifier, probe, len(task.labels))
    if temperature_scaling and reference is None:
        raise RefusedError("--temperature-scaling needs --reference with a label column")
    metadata = tabular_metadata(
        task,
        scaler,
        hidden=hidden,
        metrics=registered.metrics,
        data_hash=registered.params.get("data_hash"),
        source=registered.describe(),
    )
    metadata["mlflow"] = registered.lineage()
    if reference is not None:
        added = tabular_import_reference(classifier, task, reference, temperature_scaling)
        metadata = add_reference(metadata, added)
    return save_imported(name or task.name, metadata, checkpoint, network)


def import_books(
    client: Any, registered: Registered, name: str | None, options: argparse.Namespace
) -> str:
    """An FFM state_dict with the run's tables, or the tables rebuilt from ``--data-dir``."""
    output = registered.params.get("output", options.output)
    if output not in ("raw", "sigmoid"):
        raise RefusedError(f"the run's output param is {output!r}; expected raw or sigmoid")
    with tempfile.TemporaryDirectory() as directory:
        checkpoint = read_checkpoint(weights_file(download_version(registered, directory)))
        if checkpoint.state_dict is None:
            raise RefusedError("the book model imports a state_dict of its FFM, not a program")
        state = checkpoint.state_dict
        metadata: dict[str, Any] = {}
        tables = run_files(client, registered, TABLES_PATH, directory)
        try:
            if options.data_dir is not None:
                books, metadata = book_import.from_data(
                    state, options.data_dir, options.layout, output
                )
            elif tables is not None:
                books = BookRatingModel.from_tables(state, tables, output)
            else:
                raise RefusedError(
                    f"run {registered.run_id} logged no {TABLES_PATH}/ (the index tables): "
                    "pass --data-dir with the CSVs the model was trained on"
                )
        except (KeyError, RuntimeError, FileNotFoundError) as error:
            raise RefusedError(f"the weights do not fit the book tables: {error}") from None
    provenance = provenance_of(registered)
    provenance["metrics"] = provenance["metrics"] or metadata.get("metrics", {})
    full = {**metadata, **provenance, "age_fill": books.featurizer.age_fill}
    if options.temperature_scaling:
        raise RefusedError("--temperature-scaling is for classifiers, not book ratings")
    if options.reference is not None:
        full = add_reference(full, books_import_reference(books, options.reference))
    return books.save(full, name=name or BOOK_RATING.name)


def import_mask(
    client: Any, registered: Registered, name: str | None, options: argparse.Namespace
) -> str:
    """Weights of the baseline's network or a program, with the run's preprocessing.json
    (else the size and normalisation options)."""
    document = run_document(client, registered, PREPROCESSING_FILE)
    try:
        prep = (
            Preprocessing.from_metadata(document)
            if document
            else Preprocessing(
                options.height, options.width, tuple(options.mean), tuple(options.std)
            )
        )
    except (KeyError, TypeError, ValueError) as error:
        raise RefusedError(f"{PREPROCESSING_FILE} is malformed: {error}") from None
    with tempfile.TemporaryDirectory() as directory:
        path = weights_file(download_version(registered, directory))
        return mask_import.import_checkpoint(
            path,
            prep,
            name or MASK_CLASSIFIER.name,
            provenance_of(registered),
            reference=options.reference,
            temperature_scaling=options.temperature_scaling,
        )


def provenance_of(registered: Registered) -> dict[str, Any]:
    """What a registered version tells of itself, in the artifact's metadata keys."""
    return {
        "metrics": registered.metrics,
        "data_hash": registered.params.get("data_hash"),
        "source": registered.describe(),
        "mlflow": registered.lineage(),
    }


def import_version(
    client: Any, registered: Registered, model: str, options: argparse.Namespace
) -> str:
    """Download, check and store one registered version as ``model``; return the store tag."""
    if model in TASKS:
        return import_tabular(
            client,
            registered,
            TASKS[model],
            name=options.name,
            scaler_path=options.scaler,
            reference=options.reference,
            temperature_scaling=options.temperature_scaling,
        )
    if model == BOOK_RATING.name:
        return import_books(client, registered, options.name, options)
    return import_mask(client, registered, options.name, options)


def served(url: str, admin_key: str | None, model: str) -> dict[str, Any]:
    """What the bundle serves for ``model`` now (primary, candidate): a sync run twice, or
    after a partial run, then does only what is left instead of a refused second load."""
    try:
        return admin.served(url, admin_key, model)
    except admin.UnreachableError as error:
        raise RefusedError(str(error)) from None


def sync(
    client: Any,
    registered: Registered,
    model: str,
    options: argparse.Namespace,
) -> tuple[str, bool, int]:
    """(tag, whether it was imported now, the admin client's exit code). The bundle is asked
    first, so that an unreachable bundle or a wrong key imports nothing."""
    serving = served(options.url, options.admin_key, model)
    tag = stored_tag(options.name or model, registered)
    imported = tag is None
    if tag is None:
        tag = import_version(client, registered, model, options)
    common = ["--url", options.url, *(["--key", options.admin_key] if options.admin_key else [])]
    by = ["--by", f"mlflow sync models:/{registered.name}/{registered.version}"]
    code = 0
    candidate = serving.get("candidate")
    if candidate is not None and tag not in (candidate, serving.get("primary")):
        # One candidate at a time: the alias moved on, so the one it pointed at goes.
        code = admin.main([*common, *by, "drop", model])
    if code == 0 and tag not in (serving.get("primary"), serving.get("candidate")):
        code = admin.main([*common, *by, "candidate", model, tag])
    if code == 0 and options.role == "primary" and serving.get("primary") != tag:
        code = admin.main([*common, *by, "promote", model])
    return tag, imported, code


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m scripts.imports.mlflow",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("args", nargs="+", metavar="[sync] MODEL_URI")
    top.add_argument("--model", required=True, choices=SUPPORTED, help="the bundle's model")
    top.add_argument("--name", help="store name (default: the model's name)")
    top.add_argument("--tracking-uri", help="the registry (default: $MLFLOW_TRACKING_URI)")
    top.add_argument("--as", dest="role", choices=("primary", "candidate"), default="candidate")
    top.add_argument("--url", default=os.environ.get("BUNDLE_URL", "http://localhost:3000"))
    top.add_argument("--admin-key", default=os.environ.get("BUNDLE_ADMIN_KEY"))
    add_reference_options(
        top,
        "credit_health, iris: a CSV of the features and optionally label; "
        "book_rating: a CSV of user_id, isbn and optionally rating; "
        "mask_classifier: a folder of photos, in class-id subfolders for calibration",
    )
    tabular = top.add_argument_group("credit_health, iris")
    tabular.add_argument("--scaler", type=Path, help="joblib MinMaxScaler (default: scaler.json)")
    books = top.add_argument_group("book_rating")
    books.add_argument("--data-dir", type=Path, help="training CSVs (default: the run's tables)")
    books.add_argument("--layout", choices=("boostcamp", "ids"), default="boostcamp")
    books.add_argument("--output", choices=("raw", "sigmoid"), default="raw")
    mask = top.add_argument_group("mask_classifier (default: the run's preprocessing.json)")
    defaults = Preprocessing()
    mask.add_argument("--height", type=int, default=defaults.height)
    mask.add_argument("--width", type=int, default=defaults.width)
    mask.add_argument("--mean", type=float, nargs=3, default=defaults.mean)
    mask.add_argument("--std", type=float, nargs=3, default=defaults.std)
    return top


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    options = cli.parse_args(argv)
    syncing = options.args[0] == "sync"
    uris = options.args[1:] if syncing else options.args
    if len(uris) != 1:
        cli.error("give exactly one MODEL_URI")
    try:
        client = connect(options.tracking_uri)
        registered = resolve(client, uris[0])
        if not syncing:
            tag = import_version(client, registered, options.model, options)
            print(how_to_serve(tag, options.model))
            return 0
        tag, imported, code = sync(client, registered, options.model, options)
    except (ValueError, FileNotFoundError) as error:
        print(f"import_mlflow: {error}", file=sys.stderr)
        return 2
    print(
        f"{'imported' if imported else 'already in the store:'} {tag}; {options.role}: code {code}"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
