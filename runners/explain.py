"""The runners' explanation APIs: separate from the plain ones (which they leave untouched),
unbatched, each for the version the front's routing picked (named by tag, as
``recommend`` is). The work is in models/*: attribution, decomposition, heat map."""

from __future__ import annotations

from typing import Any

import bentoml
import numpy as np

from runners.base import JsonDict


class ExplainsTabular:
    """Mixed into :class:`runners.tabular.TabularRunner`."""

    @bentoml.api
    def explain(self, version: str, features: list[float]) -> JsonDict:
        """Integrated-gradients attributions of one row of raw features, by ``version``."""
        from models.tabular.attribution import explain_row
        from models.tabular.contract import TASKS

        model: Any = self.version(version)  # type: ignore[attr-defined]
        task = TASKS[self.entry.name]  # type: ignore[attr-defined]
        row = np.asarray(features, np.float32)
        return {
            "probabilities": model.predict_proba(row[None])[0].tolist(),
            "explanation": explain_row(model, task.features, row),
        }


class ExplainsRatings:
    """Mixed into :class:`runners.books.BooksRunner`."""

    @bentoml.api
    def explain_rating(self, version: str, user_id: int, isbn: str) -> JsonDict:
        """The rating of one pair by ``version``, decomposed into the FFM's terms."""
        from models.books.decomposition import explain_pair

        return explain_pair(self.version(version), user_id, isbn)  # type: ignore[attr-defined]


class ExplainsMasks:
    """Mixed into :class:`runners.mask.MaskRunner`."""

    @bentoml.api
    def explain(self, version: str, image: np.ndarray) -> JsonDict:
        """Probabilities and a Grad-CAM overlay (PNG, base64) for one resized image."""
        from models.mask.heatmap import UNAVAILABLE, available, grad_cam, overlay_png

        model: Any = self.version(version)  # type: ignore[attr-defined]
        image = np.asarray(image, np.uint8)
        probabilities = model.classify(image[None])[0].tolist()
        if not available(model.network):
            return {
                "probabilities": probabilities,
                "explanation": {"available": False, "reason": UNAVAILABLE},
            }
        _, heat = grad_cam(model.network, image, model.prep)
        return {
            "probabilities": probabilities,
            "explanation": {
                "available": True,
                "method": "grad_cam",
                "layer": "conv3",
                "width": int(heat.shape[1]),
                "height": int(heat.shape[0]),
                "overlay_png": overlay_png(image, heat),
            },
        }
