"""The tabular models' contract, as plain data (importable without torch): what a tabular
model is, and the two the bundle serves, credit health and iris."""

from __future__ import annotations

from dataclasses import dataclass

from model_bundle.catalogue import CREDIT_HEALTH, IRIS


@dataclass(frozen=True)
class TabularTask:
    """A tabular model's store name, inputs, outputs and default hidden widths."""

    name: str
    features: tuple[str, ...]
    labels: tuple[str, ...]
    hidden: tuple[int, ...]


# Company credit health: five financial ratios -> 0 healthy, 1 unhealthy.
CREDIT_TASK = TabularTask(
    name=CREDIT_HEALTH.name,
    features=(
        "debt_ratio",
        "current_ratio",
        "operating_margin",
        "return_on_assets",
        "interest_coverage",
    ),
    labels=("healthy", "unhealthy"),
    hidden=(32, 16),
)

# Iris species from four flower measurements in centimetres.
IRIS_TASK = TabularTask(
    name=IRIS.name,
    features=("sepal_length", "sepal_width", "petal_length", "petal_width"),
    labels=("setosa", "versicolor", "virginica"),
    hidden=(16,),
)

TASKS: dict[str, TabularTask] = {task.name: task for task in (CREDIT_TASK, IRIS_TASK)}
