"""Import a user's own credit-health model and scaler into the model store.

    python -m scripts.imports.credit --model MODEL --scaler Normalization.pkl [--name credit_health]
        [--task credit_health|iris] [--reference data.csv [--temperature-scaling]]

MODEL is either a TorchScript file (any architecture taking float32 [N, 5] in the order
debt_ratio, current_ratio, operating_margin, return_on_assets, interest_coverage, and
returning [N, 2] logits: 0 healthy, 1 unhealthy) or a state_dict of our credit network
(``models.tabular.contract``; hidden widths are read from the weights). The scaler is the user's
scikit-learn ``MinMaxScaler`` saved with joblib. It is unpickled here, once, and stored as
plain arrays: the server never unpickles anything. Needs scikit-learn to read the scaler.
``--task iris`` imports an iris model the same way (four measurements, three species).

``--reference`` is a CSV with the feature columns (and optionally ``label``: a label name or
its index) of data like the live traffic's, e.g. the model's held-out set: the drift report
compares live traffic with it (``scripts/imports/reference.py``); with labels it also gives
the calibration, and ``--temperature-scaling`` serves the fitted temperature when it lowers
the expected calibration error. Without it drift reports ``no_reference``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import joblib
import torch
from torch import nn

from models.layers import MLP
from models.tabular.contract import CREDIT_TASK, TASKS, TabularTask
from models.tabular.network import MinMaxScaler, TabularClassifier, build_network, tabular_metadata
from scripts.imports.checkpoints import (
    Checkpoint,
    check_logits,
    how_to_serve,
    read_checkpoint,
    save_imported,
)
from scripts.imports.reference import (
    add_reference,
    add_reference_options,
    tabular_import_reference,
)


def read_network(
    path: Path, task: TabularTask
) -> tuple[Checkpoint, nn.Module, tuple[int, ...] | None]:
    """A program of any architecture, or a state_dict of our MLP (``hidden`` None for a program)."""
    checkpoint = read_checkpoint(path)
    if checkpoint.kind != "state_dict":
        return checkpoint, checkpoint.module(), None
    state = checkpoint.state_dict or {}
    try:
        hidden = MLP.hidden_widths(state)
        network = build_network(task, hidden)
        network.load_state_dict(state)
    except (ValueError, RuntimeError, AttributeError) as error:
        expected = list(build_network(task).state_dict())
        raise ValueError(
            f"{path} is not a state_dict of our {task.name} network "
            f"(expected keys like {expected}): {error}"
        ) from None
    return checkpoint, network.eval(), hidden


def import_model(
    model_path: Path,
    scaler_path: Path,
    task: TabularTask = CREDIT_TASK,
    name: str | None = None,
    reference: Path | None = None,
    temperature_scaling: bool = False,
) -> str:
    """Convert, check and store a user's model and scaler (with the reference statistics of
    ``reference``, a CSV, when given); return the new store tag."""
    scaler = MinMaxScaler.from_sklearn(joblib.load(scaler_path))
    if len(scaler.scale) != len(task.features):
        raise ValueError(
            f"the scaler has {len(scaler.scale)} features; {task.name} needs {len(task.features)}"
        )
    checkpoint, network, hidden = read_network(model_path, task)
    probe = torch.zeros(3, len(task.features))
    classifier = TabularClassifier(scaler.module(), network)
    check_logits(classifier, probe, len(task.labels))
    if temperature_scaling and reference is None:
        raise ValueError("--temperature-scaling needs --reference with a label column")
    checkpoint_hash = hashlib.sha256(model_path.read_bytes()).hexdigest()
    metadata = tabular_metadata(
        task,
        scaler,
        hidden=hidden,
        metrics={},
        data_hash=None,
        source=f"imported {model_path.name} (sha256:{checkpoint_hash}), scaler {scaler_path.name}",
    )
    if reference is not None:
        added = tabular_import_reference(classifier, task, reference, temperature_scaling)
        metadata = add_reference(metadata, added)
    return save_imported(name or task.name, metadata, checkpoint, network)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, required=True, help="TorchScript, torch.export program or state_dict"
    )
    parser.add_argument("--scaler", type=Path, required=True, help="joblib file of a MinMaxScaler")
    parser.add_argument("--task", choices=sorted(TASKS), default=CREDIT_TASK.name)
    parser.add_argument("--name", help="store name (default: the task's name)")
    add_reference_options(parser, "CSV of the feature columns and optionally label")
    args = parser.parse_args()
    task = TASKS[args.task]
    try:
        tag = import_model(
            args.model,
            args.scaler,
            task,
            name=args.name,
            reference=args.reference,
            temperature_scaling=args.temperature_scaling,
        )
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"import_credit: {error}\n")
    print(how_to_serve(tag, task.name))


if __name__ == "__main__":
    main()
