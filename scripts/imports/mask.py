"""Import a user's mask / gender / age classifier as ``mask_classifier``.

    python -m scripts.imports.mask --checkpoint best.pth \
        [--height 128] [--width 96] [--mean 0.548 0.504 0.479] [--std 0.237 0.247 0.246]
        [--reference DIR [--temperature-scaling]]

CHECKPOINT is (a) the baseline's ``best.pth``/``last.pth``: a state_dict of its BaseModel,
or (b) any architecture as a TorchScript file or a ``torch.export`` program taking float32
[N, 3, H, W] and returning [N, 18] logits (export it with a dynamic batch dimension). Give
its input size and normalisation; the defaults are the baseline's. The import runs the model
once on a probe batch and refuses a wrong output shape with a clear message.

``--reference DIR`` is a folder of photos like the live traffic's: the drift report compares
each upload's brightness, contrast, width, height and aspect, and the predicted classes, with
the network's on them. Photos in subfolders named by class id (0..17) also give the
calibration (``--temperature-scaling``: serve the fitted temperature when it lowers the ECE).
Without it drift reports ``no_reference``.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from model_bundle.catalogue import MASK_CLASSIFIER
from models.mask.contract import NUM_CLASSES, Preprocessing
from models.mask.network import MaskBaseModel, mask_metadata
from scripts.imports.checkpoints import check_logits, how_to_serve, read_checkpoint, save_imported
from scripts.imports.reference import add_reference, add_reference_options, image_import_reference


def import_checkpoint(
    path: Path,
    prep: Preprocessing,
    name: str = MASK_CLASSIFIER.name,
    provenance: Mapping[str, Any] | None = None,
    reference: Path | None = None,
    temperature_scaling: bool = False,
) -> str:
    """Check and store a checkpoint; ``provenance`` (metrics, data_hash, source, lineage)
    replaces what a bare file can tell; ``reference``, a folder of photos, gives the drift
    reference (and, in class-id subfolders, the calibration)."""
    checkpoint = read_checkpoint(path)
    if checkpoint.kind == "state_dict":
        network: torch.nn.Module = MaskBaseModel()
        try:
            network.load_state_dict(checkpoint.state_dict or {})
        except RuntimeError as error:
            raise ValueError(
                f"{path} is not a state_dict of the baseline's BaseModel: {error}"
            ) from None
        network.eval()
    else:
        network = checkpoint.module()
    check_logits(network, torch.zeros(2, 3, prep.height, prep.width), NUM_CLASSES)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    metadata = mask_metadata(
        prep, metrics={}, data_hash=None, source=f"imported {path.name} (sha256:{digest})"
    )
    metadata.update(provenance or {})
    if temperature_scaling and reference is None:
        raise ValueError("--temperature-scaling needs --reference with class-id subfolders")
    if reference is not None:
        added = image_import_reference(network, prep, reference, temperature_scaling)
        metadata = add_reference(metadata, added)
    return save_imported(name, metadata, checkpoint, network)


def main() -> None:
    defaults = Preprocessing()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--height", type=int, default=defaults.height)
    parser.add_argument("--width", type=int, default=defaults.width)
    parser.add_argument("--mean", type=float, nargs=3, default=defaults.mean)
    parser.add_argument("--std", type=float, nargs=3, default=defaults.std)
    parser.add_argument("--name", default=MASK_CLASSIFIER.name)
    add_reference_options(parser, "a folder of photos, in subfolders 0..17 for calibration")
    args = parser.parse_args()
    prep = Preprocessing(args.height, args.width, tuple(args.mean), tuple(args.std))
    try:
        tag = import_checkpoint(
            args.checkpoint,
            prep,
            args.name,
            reference=args.reference,
            temperature_scaling=args.temperature_scaling,
        )
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"import_mask: {error}\n")
    print(how_to_serve(tag, MASK_CLASSIFIER.name))


if __name__ == "__main__":
    main()
