"""Company credit health: five financial ratios -> 0 healthy, 1 unhealthy."""

from models.names import CREDIT_HEALTH
from models.task import TabularTask

CREDIT = TabularTask(
    name=CREDIT_HEALTH,
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
