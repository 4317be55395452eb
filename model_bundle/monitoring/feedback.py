"""Recent predictions (for feedback) and live accuracy / RMSE per model and version."""

from __future__ import annotations

import datetime
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

HISTORY = 100  # points of the accuracy / RMSE history kept per model and version


class FeedbackError(ValueError):
    """Feedback that cannot be joined: the request's field at fault, the problem's type and a
    message naming it (a 400)."""

    def __init__(self, msg: str, field: str = "label", kind: str = "invalid_feedback") -> None:
        super().__init__(msg)
        self.field, self.kind = field, kind


@dataclass
class Recent:
    """A bounded map prediction id -> (model, version, output, inputs), every answer (not
    only the sampled ones): the oldest ids fall out first. The inputs go to the feedback log
    with the ground truth, as labelled rows a retrain can learn from."""

    size: int
    items: OrderedDict[str, tuple[str, str, Any, Any]] = field(default_factory=OrderedDict)

    def add(self, prediction_id: str, model: str, version: str, output: Any, inputs: Any) -> None:
        self.items[prediction_id] = (model, version, output, inputs)
        while len(self.items) > self.size:
            self.items.popitem(last=False)

    def pop(self, prediction_id: str) -> tuple[str, str, Any, Any]:
        try:
            return self.items.pop(prediction_id)
        except KeyError:
            raise FeedbackError(
                f"prediction_id {prediction_id!r} is unknown or expired (only the last "
                f"{self.size} answers of this replica are kept)",
                "prediction_id",
                "unknown_prediction",
            ) from None


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Live:
    """Feedback of one model version over a window: hits (1/0) or squared errors."""

    window: int
    values: deque[float] = field(default_factory=deque)
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    total: int = 0

    def add(self, value: float, kind: str) -> float:
        self.values.append(value)
        while len(self.values) > self.window:
            self.values.popleft()
        self.total += 1
        score = self.score(kind)
        self.history.append({"time": now(), "value": round(score, 6)})
        return score

    def score(self, kind: str) -> float:
        mean = sum(self.values) / len(self.values)
        return math.sqrt(mean) if kind == "rmse" else mean
