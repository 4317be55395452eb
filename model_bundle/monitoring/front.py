"""The few lines between the service's answers and the monitor (service.py calls these)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bentoml._internal.context import trace_context  # BentoML's per-request id

from model_bundle.catalogue import BOOK_RATING, CATALOGUE, MASK_CLASSIFIER
from model_bundle.monitoring.feedback import FeedbackError
from model_bundle.monitoring.metrics import metrics
from model_bundle.monitoring.monitor import Monitor, payload_log
from model_bundle.monitoring.payloads import PayloadLog
from model_bundle.schemas import BookRating, MaskPrediction, invalid_input
from model_bundle.settings import settings
from models.tabular.contract import CREDIT_TASK, IRIS_TASK, TabularTask

LABELS = {
    CREDIT_TASK.name: set(CREDIT_TASK.labels),
    IRIS_TASK.name: set(IRIS_TASK.labels),
    MASK_CLASSIFIER.name: {str(i) for i in range(18)},
}
RECENT_PER_WINDOW = 100  # answers accepting feedback: this many feedback windows


def request_id() -> str | None:
    rid = trace_context.request_id
    return None if rid is None else str(rid)


class FrontMonitor:
    def __init__(self) -> None:
        self.monitor = Monitor(
            window=settings.drift_window,
            min_samples=settings.drift_min_samples,
            feedback_window=settings.feedback_window,
            recent=settings.feedback_window * RECENT_PER_WINDOW,
            payloads=payload_log(settings.state_dir, settings.payload_sample_rate, metrics),
            feedback_log=PayloadLog(settings.state_dir / "feedback", sample_rate=1.0),
            metrics=metrics,
        )

    def tabular(
        self, task: TabularTask, rows: Sequence[Mapping[str, float]], answers: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        outputs = [{"label": a["label"], "probability": a["probability"]} for a in answers]
        labels = [a["label"] for a in answers]
        ids = self.monitor.record(
            task.name, answers[0]["model"], rows, outputs, labels, request_id()
        )
        for answer, prediction_id in zip(answers, ids, strict=True):
            answer["prediction_id"] = prediction_id
        return answers

    def masks(
        self,
        answers: list[MaskPrediction],
        statistics: Sequence[Mapping[str, float]],
        embeddings: Sequence[Sequence[float]] | None = None,
    ) -> list[MaskPrediction]:
        """``statistics``: each photo's (model_bundle/uploads.py); ``embeddings``: its
        embedding's drift components from the runner (none for an explanation, or a program);
        recorded as its inputs."""
        outputs = [{"label": str(a.class_id), "probability": a.confidence} for a in answers]
        labels = [o["label"] for o in outputs]
        rows = [dict(s) for s in statistics]
        components_of = [[] for _ in rows] if embeddings is None else embeddings  # an array
        for row, components in zip(rows, components_of, strict=True):
            row.update({f"embedding_{i}": round(float(v), 6) for i, v in enumerate(components)})
        ids = [a.prediction_id for a in answers]
        self.monitor.record(
            MASK_CLASSIFIER.name, answers[0].model, rows, outputs, labels, request_id(), ids
        )
        return answers

    def ratings(self, answers: list[BookRating]) -> list[BookRating]:
        by_version: dict[str, list[int]] = {}
        for index, answer in enumerate(answers):
            by_version.setdefault(answer.model, []).append(index)
        for version, indices in by_version.items():  # a canary answers some of a batch
            chosen = [answers[i] for i in indices]
            rows = [{"cold_start": a.reason or "known"} for a in chosen]
            outputs = [{"rating": a.rating, "cold_start": a.cold_start} for a in chosen]
            ratings = [a.rating for a in chosen]  # the predicted distribution the report tests
            ids = [a.prediction_id for a in chosen]
            self.monitor.record(
                BOOK_RATING.name, version, rows, outputs, ratings, request_id(), ids
            )
        return answers

    def feedback(self, prediction_id: str, label: str | None, rating: float | None) -> Any:
        try:
            return self.monitor.feedback(prediction_id, label, rating, LABELS.__getitem__)
        except FeedbackError as error:
            raise invalid_input("feedback", error.field, error.kind, str(error)) from None

    def report(self, model: str | None, versions: Any) -> dict[str, Any]:
        names = [entry.name for entry in CATALOGUE]
        if model is not None and model not in names:
            msg = f"{model!r} is not served; served: {names}"
            raise invalid_input("drift", "model", "unknown_model", msg)
        reports = []
        for name in [model] if model else names:
            reports.append(self.monitor.model_report(name, self._primary(versions, name)))
        return {"models": reports}

    @staticmethod
    def _primary(versions: Any, name: str) -> str | None:
        routing = getattr(versions[name], "routing", None)
        primary = getattr(routing, "primary", None)
        return getattr(primary, "tag", None)
