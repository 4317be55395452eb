"""Retraining mask_classifier: a folder of labelled photos, one subfolder per class id.

    DIR/0/a.jpg  DIR/13/b.png ...   (class = mask * 6 + gender * 3 + age, models/mask/contract.py)

The photos are found as batch prediction finds a folder's images (model_bundle/batch/files.py
image_table: JPEG, PNG, WebP, BMP by suffix; other files are not photos and are left alone)
and decoded as the API decodes an upload (models/mask/images.py load_rgb): a photo that does
not decode, or one outside a class folder 0..17, is refused naming the file.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from rich.progress import track

from model_bundle.batch.files import image_table
from model_bundle.settings import settings
from models.artifact import Artifact, data_hash
from models.mask.contract import NUM_CLASSES, Preprocessing, resize
from models.mask.images import InvalidImageError, load_rgb
from models.mask.network import MaskClassifier
from models.mask.statistics import image_statistics
from scripts.retrain.evaluate import balanced_accuracy
from scripts.retrain.rows import DataError
from scripts.train.mask import DEFAULT_PREPROCESSING, Labelled, train

CLASS_FOLDERS = {str(c): c for c in range(NUM_CLASSES)}
SCORE_BATCH = 256  # images per forward pass when judging


def decoded(file: Path, prep: Preprocessing) -> tuple[Image.Image, np.ndarray]:
    """One photo as uploaded and resized for a model's input, or DataError naming the file."""
    try:
        image = load_rgb(file.read_bytes(), settings.max_image_pixels)
        return image, resize(image, prep)
    except InvalidImageError as error:
        raise DataError(f"{file}: {error}") from None
    except OSError as error:
        raise DataError(f"{file}: cannot read it: {error.strerror}") from None


@dataclass(frozen=True)
class Photos:
    """Labelled photos: paths relative to ``folder``, their classes and content hashes, and
    the photos resized to the training input."""

    folder: Path
    paths: list[str]
    labels: np.ndarray  # int64 [N]
    hashes: list[str]
    images: np.ndarray  # uint8 [N, H, W, 3] at DEFAULT_PREPROCESSING
    statistics: list[dict[str, float]]  # per photo, as the drift reference keeps them

    @property
    def labelled(self) -> Labelled:
        return self.labels, self.images, self.statistics

    def subset(self, keep: np.ndarray) -> Photos:
        indices = np.flatnonzero(keep)
        return Photos(
            self.folder,
            [self.paths[i] for i in indices],
            self.labels[indices],
            [self.hashes[i] for i in indices],
            self.images[indices],
            [self.statistics[i] for i in indices],
        )

    def resized(self, prep: Preprocessing) -> np.ndarray:
        """The photos at another model's input size (decoded again from the files)."""
        if prep == DEFAULT_PREPROCESSING:
            return self.images
        return np.stack([decoded(self.folder / path, prep)[1] for path in self.paths])


def read_photos(folder: Path) -> Photos:
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder (--photos takes DIR/<class id>/<photo>)")
    paths = image_table(folder)["path"].tolist()
    if not paths:
        raise DataError(f"{folder}: no photos (JPEG, PNG, WebP or BMP in DIR/<class id>/)")
    labels, hashes, images, statistics = [], [], [], []
    for path in track(paths, description="reading photos"):
        parts = Path(path).parts
        if len(parts) < 2 or parts[0] not in CLASS_FOLDERS:
            raise DataError(
                f"{folder / path}: not in a class folder (DIR/0 .. DIR/{NUM_CLASSES - 1})"
            )
        labels.append(CLASS_FOLDERS[parts[0]])
        hashes.append(hashlib.sha256((folder / path).read_bytes()).hexdigest())
        image, pixels = decoded(folder / path, DEFAULT_PREPROCESSING)
        images.append(pixels)
        statistics.append(image_statistics(image, pixels))
    labelled = np.array(labels, np.int64)
    return Photos(folder, paths, labelled, hashes, np.stack(images), statistics)


@dataclass(frozen=True)
class MaskFamily:
    measure: str = "balanced_accuracy"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("mask_classifier")
        group.add_argument("--photos", type=Path, help="DIR/<class id 0..17>/<photo>")
        group.add_argument(
            "--no-base", action="store_true", help="leave the synthetic faces out (default: in)"
        )
        group.add_argument("--per-class", type=int, default=40, help="synthetic faces per class")
        group.add_argument("--epochs", type=int, default=25)
        group.add_argument("--temperature-scaling", action="store_true")
        group.add_argument(
            "--from-scratch",
            action="store_true",
            help="random initial weights (default: fine-tune the primary when it is the same "
            "network at the same input size)",
        )

    def read(self, options: argparse.Namespace) -> Photos:
        if options.photos is None:
            raise DataError("mask_classifier: --photos DIR is needed (DIR/<class id>/<photo>)")
        return read_photos(options.photos)

    def size(self, data: Photos) -> int:
        return len(data.labels)

    def digest(self, options: argparse.Namespace, data: Photos) -> str:
        table = pd.DataFrame({"path": data.paths, "class": data.labels, "sha256": data.hashes})
        base = "none" if options.no_base else f"per_class={options.per_class}"
        choices = f"base={base} seed={options.seed} epochs={options.epochs}"
        choices += f" temperature_scaling={options.temperature_scaling}"
        choices += f" from_scratch={options.from_scratch}"
        return data_hash(table, choices.encode())

    def split(self, options: argparse.Namespace, data: Photos) -> tuple[Photos, Photos]:
        """A seeded fifth of every class's photos is held out (rounded: none of a class with
        fewer than 3), so every class present is judged."""
        rng = np.random.default_rng(options.seed)
        held = np.zeros(len(data.labels), bool)
        for c in range(NUM_CLASSES):
            members = rng.permutation(np.flatnonzero(data.labels == c))
            held[members[: (len(members) + 2) // 5]] = True
        return data.subset(~held), data.subset(held)

    def train(
        self, options: argparse.Namespace, rows: Photos, holdout: Photos, lineage: dict[str, Any]
    ) -> str:
        lineage["photos"] = str(options.photos)
        lineage["base"] = (
            "none" if options.no_base else f"mask_sample per_class={options.per_class}"
        )
        lineage["holdout"] = "a fifth of every class of the new photos"
        parent = Artifact.load(lineage["parent"])
        start = None
        if not options.from_scratch and parent.weights == "state_dict":
            prep = Preprocessing.from_metadata(parent.metadata["preprocessing"])
            if prep == DEFAULT_PREPROCESSING:  # the same network at the same input size
                start = parent.state_dict()
        lineage["started_from"] = lineage["parent"] if start is not None else "random weights"
        return train(
            options.per_class,
            options.epochs,
            options.seed,
            options.name or "mask_classifier",
            options.temperature_scaling,
            extra=rows.labelled,
            holdout=holdout.labelled,
            base=not options.no_base,
            lineage=lineage,
            source=f"scripts.retrain from {lineage['parent']}",
            initial=start,
        )

    def score(self, tag: str, holdout: Photos) -> float:
        """Balanced accuracy over the held-out photos, classified as the runner does
        (runners/mask.py: MaskClassifier of the artifact, on images resized to its input)."""
        classifier = MaskClassifier(Artifact.load(tag))
        images = holdout.resized(classifier.prep)
        predicted = np.concatenate(
            [
                classifier.classify(images[start : start + SCORE_BATCH]).argmax(axis=1)
                for start in range(0, len(images), SCORE_BATCH)
            ]
        )
        return balanced_accuracy(predicted, holdout.labels)
