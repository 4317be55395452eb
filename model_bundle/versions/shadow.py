"""Shadow traffic: a copy of a request sent to the candidate after the primary answered, off
the request path, bounded; the answers are compared, never returned.

Why after and not alongside: the client's answer must never wait for the shadow, and the
shadow's load must not delay the primary's call. At most ``MAX_IN_FLIGHT`` copies per model
are in flight; beyond that a copy is dropped (and counted), so a slow candidate can never
pile work up in the front.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model_bundle.versions.metrics import metrics

logger = logging.getLogger("model_bundle")
MAX_IN_FLIGHT = 8


def same_class(primary: Any, shadow: Any) -> tuple[float, int]:
    """Rows whose argmax agree, and rows compared (class probabilities [N, C] each)."""
    a, b = np.asarray(primary), np.asarray(shadow)
    return float((a.argmax(axis=1) == b.argmax(axis=1)).sum()), len(a)


def rating_difference(primary: Sequence[dict], shadow: Sequence[dict]) -> tuple[float, int]:
    """Sum of absolute rating differences, and pairs compared."""
    total = sum(abs(a["rating"] - b["rating"]) for a, b in zip(primary, shadow, strict=True))
    return float(total), len(primary)


def top_k_overlap(primary: dict, shadow: dict) -> tuple[float, int]:
    """Share of the primary's top k the shadow recommends too (one comparison)."""
    a = {book["isbn"] for book in primary["books"]}
    b = {book["isbn"] for book in shadow["books"]}
    return (len(a & b) / len(a) if a else 1.0), 1


MEASURES: dict[Callable[..., tuple[float, int]], str] = {
    same_class: "same_class_rate",
    rating_difference: "mean_abs_rating_diff",
    top_k_overlap: "top_k_overlap",
}


@dataclass
class Agreement:
    """Running totals of one (model, shadow version, measure)."""

    total: float = 0.0
    count: int = 0

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass
class Shadows:
    """The front's shadow copies in flight and the agreement measured so far."""

    in_flight: dict[str, int] = field(default_factory=dict)
    agreement: dict[tuple[str, str, str], Agreement] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def send(
        self,
        model: str,
        version: str,
        call: Callable[[], Awaitable[Any]],
        primary: Any,
        compare: Callable[[Any, Any], tuple[float, int]],
    ) -> None:
        """Start ``call()`` in the background and compare its answer with ``primary``."""
        if self.in_flight.get(model, 0) >= MAX_IN_FLIGHT:
            metrics()["dropped"].labels(model=model, version=version, reason="busy").inc()
            return
        self.in_flight[model] = self.in_flight.get(model, 0) + 1
        task = asyncio.get_running_loop().create_task(
            self._run(model, version, call, primary, compare)
        )
        self.tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self.tasks.discard)

    async def _run(
        self,
        model: str,
        version: str,
        call: Callable[[], Awaitable[Any]],
        primary: Any,
        compare: Callable[[Any, Any], tuple[float, int]],
    ) -> None:
        try:
            answer = await call()
            total, count = compare(primary, answer)
        except Exception as error:  # the shadow's failure is never the client's
            logger.warning("%s: shadow %s failed: %s", model, version, error)
            metrics()["dropped"].labels(model=model, version=version, reason="error").inc()
            return
        finally:
            self.in_flight[model] -= 1
        measure = MEASURES[compare]
        running = self.agreement.setdefault((model, version, measure), Agreement())
        running.total += total
        running.count += count
        metrics()["answers"].labels(model=model, version=version, role="shadow").inc()
        metrics()["agreement"].labels(model=model, version=version, measure=measure).set(
            running.mean
        )

    def measured(self, model: str, version: str) -> dict[str, Any]:
        """This front's agreement figures for a shadow version (measure -> mean, count)."""
        return {
            measure: {"mean": running.mean, "compared": running.count}
            for (m, v, measure), running in self.agreement.items()
            if m == model and v == version
        }
