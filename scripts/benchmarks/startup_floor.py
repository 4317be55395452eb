"""The bundle's process layout with none of its code: what start-up costs before any of it.

    bentoml serve scripts.benchmarks.startup_floor:Floor

A front service depending on four runner services, one worker each, as service.py; each
runner imports torch, takes one thread and builds a tiny network, as a runner of the bundle
does, and nothing else. ``python -m scripts.benchmarks.startup --floor`` starts it beside the
trees it compares, as the floor of start-up on the machine.
"""

from __future__ import annotations

from typing import Any

import bentoml


def floor_runner(name: str) -> Any:
    """A runner service that loads torch and answers its input."""

    @bentoml.service(name=name, workers=1)
    class FloorRunner:
        def __init__(self) -> None:
            import torch

            torch.set_num_threads(1)
            self.network = torch.nn.Linear(5, 2)

        @bentoml.api
        def predict(self, features: list[float]) -> list[float]:
            return features

    return FloorRunner


CreditFloor = floor_runner("CreditFloor")
IrisFloor = floor_runner("IrisFloor")
BooksFloor = floor_runner("BooksFloor")
MaskFloor = floor_runner("MaskFloor")


@bentoml.service(name="floor", workers=1)
class Floor:
    credit = bentoml.depends(CreditFloor)
    iris = bentoml.depends(IrisFloor)
    books = bentoml.depends(BooksFloor)
    mask = bentoml.depends(MaskFloor)

    @bentoml.api
    async def predict_credit(
        self,
        debt_ratio: float,
        current_ratio: float,
        operating_margin: float,
        return_on_assets: float,
        interest_coverage: float,
    ) -> dict[str, Any]:
        """The request's features through one runner, as the bundle's first answer goes."""
        features = [debt_ratio, current_ratio, operating_margin, return_on_assets]
        answer = await self.credit.to_async.predict(features=[*features, interest_coverage])
        return {"features": answer}
