"""What a tabular model is, as plain data (importable without torch)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TabularTask:
    """A tabular model's store name, inputs, outputs and default hidden widths."""

    name: str
    features: tuple[str, ...]
    labels: tuple[str, ...]
    hidden: tuple[int, ...]
