"""The one artifact format every model of the bundle is stored in.

An artifact is a BentoML model-store entry holding

* the weights: a ``state_dict`` (``state_dict.pt``, read back with ``weights_only=True``) for
  architectures defined in :mod:`models`, or a TorchScript program (``program.ts``) for a
  user's own architecture;
* plain, JSON-able metadata: format version, feature and label names, preprocessing
  constants such as scaler arrays, training metrics and a hash of the training data.

Nothing in an artifact is unpickled as an arbitrary Python object when it is served.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import bentoml
import torch

if TYPE_CHECKING:  # pandas only types the training-time data_hash: runners start without it
    import pandas as pd

FORMAT_VERSION = 1
STATE_DICT_FILE = "state_dict.pt"
TORCHSCRIPT_FILE = "program.ts"
EXPORTED_FILE = "program.pt2"

Weights = Literal["state_dict", "torchscript", "exported"]


@dataclass(frozen=True)
class Artifact:
    """A stored model: where its files are and what its metadata says."""

    tag: str
    path: Path
    metadata: dict[str, Any]
    created: datetime

    @classmethod
    def from_store(cls, model: bentoml.Model) -> Artifact:
        metadata = dict(model.info.metadata)
        version = metadata.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{model.tag} has artifact format {version!r}; this code reads {FORMAT_VERSION}"
            )
        return cls(str(model.tag), Path(model.path), metadata, model.info.creation_time)

    @classmethod
    def load(cls, tag: str) -> Artifact:
        return cls.from_store(bentoml.models.get(tag))

    @property
    def weights(self) -> Weights:
        return self.metadata["weights"]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return torch.load(self.path / STATE_DICT_FILE, weights_only=True, map_location="cpu")

    def torchscript(self) -> torch.jit.ScriptModule:
        return torch.jit.load(self.path / TORCHSCRIPT_FILE, map_location="cpu")

    def exported(self) -> torch.nn.Module:
        """A ``torch.export`` program, as a callable module."""
        return torch.export.load(self.path / EXPORTED_FILE).module()

    def network(self) -> torch.nn.Module:
        """The stored program (TorchScript or torch.export) in inference mode; a state_dict
        needs its class. (An exported program is in eval mode already and refuses ``.eval()``.)"""
        if self.weights == "torchscript":
            return self.torchscript().eval()
        if self.weights == "exported":
            return self.exported()
        raise ValueError(f"{self.tag} stores a state_dict: build its module and load it")

    def summary(self) -> dict[str, Any]:
        """What the ``models`` endpoint reports about this artifact."""
        return {
            "tag": self.tag,
            "created": self.created.isoformat(),
            "weights": self.weights,
            "metrics": self.metadata.get("metrics", {}),
            "data_hash": self.metadata.get("data_hash"),
            # Held-out ECE, reliability bins and temperature (models/calibration.py), if any.
            "calibration": self.metadata.get("calibration"),
            # A retrained version's parent, data hash and rows (scripts/retrain), if any.
            "lineage": self.metadata.get("lineage"),
        }


def save_artifact(
    name: str,
    metadata: Mapping[str, Any],
    *,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    torchscript: torch.jit.ScriptModule | None = None,
    exported: torch.export.ExportedProgram | None = None,
    write_files: Callable[[Path], None] | None = None,
) -> str:
    """Store exactly one of ``state_dict``, ``torchscript`` or ``exported`` with metadata;
    return the tag.

    ``write_files(directory)`` adds a model's own plain files (tables, index arrays).
    """
    given = {"state_dict": state_dict, "torchscript": torchscript, "exported": exported}
    kinds = [kind for kind, value in given.items() if value is not None]
    if len(kinds) != 1:
        raise ValueError("pass exactly one of state_dict, torchscript or exported")
    weights: Weights = kinds[0]  # type: ignore[assignment]
    # BentoML metadata holds no nulls: an unknown value (no data hash ...) is left out.
    known = {key: value for key, value in metadata.items() if value is not None}
    full = {"format_version": FORMAT_VERSION, "weights": weights, **known}
    with bentoml.models.create(name, metadata=full, labels={"weights": weights}) as ref:
        if state_dict is not None:
            torch.save(
                {key: tensor.detach().cpu().contiguous() for key, tensor in state_dict.items()},
                ref.path_of(STATE_DICT_FILE),
            )
        elif torchscript is not None:
            torch.jit.save(torchscript, ref.path_of(TORCHSCRIPT_FILE))
        else:
            torch.export.save(exported, ref.path_of(EXPORTED_FILE))
        if write_files is not None:
            write_files(Path(ref.path))
    return str(ref.tag)


def stored_versions(name: str) -> list[bentoml.Model]:
    """Every stored version of ``name`` (none stored: an empty list)."""
    try:
        return bentoml.models.list(name)
    except bentoml.exceptions.NotFound:
        return []


def data_hash(*parts: pd.DataFrame | bytes) -> str:
    """A stable fingerprint of training data: sha256 of tables (as CSV) and raw bytes, in order."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.to_csv(index=False).encode())
    return f"sha256:{digest.hexdigest()}"
