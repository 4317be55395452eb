"""The front's monitor: records every answer (window, recent ids, sampled payload log),
takes feedback and builds the drift report of the contract (docs/MONITORING-GUIDE.md)."""

from __future__ import annotations

import functools
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model_bundle.monitoring import drift
from model_bundle.monitoring.feedback import FeedbackError, Live, Recent, now
from model_bundle.monitoring.payloads import PayloadLog
from model_bundle.schemas import new_prediction_id

REFRESH_EVERY = 100  # recorded items between two refreshes of the drift gauges
# ... and at least this long: at 64 clients a model answers over a thousand requests a
# second, and the drift tests of a full window (about a millisecond) every 100 of them cost
# more than all the rest of the monitor; Prometheus scrapes every 15 s or so anyway.
REFRESH_INTERVAL_S = 1.0


def store_reference(tag: str) -> dict[str, Any] | None:
    """The reference statistics in a stored artifact's metadata (None: it has none)."""
    import bentoml

    return bentoml.models.get(tag).info.metadata.get("reference")


def compare(
    reference: Mapping[str, Any] | None,
    rows: Sequence[Mapping[str, Any]],
    labels: Sequence[str | float],
    min_samples: int,
) -> dict[str, Any]:
    """Live rows and predicted labels against a reference: the report's ``status``,
    ``features``, ``drifted_share`` and ``predictions``. One computation for the live window
    (Monitor.model_report) and for logged payloads (monitoring/report.py)."""
    result: dict[str, Any] = {
        "status": "collecting",
        "drifted_share": None,
        "features": [],
        "predictions": {"reference": {}, "live": {}, "shift": None},
    }
    if reference is None:
        result["status"] = "no_reference"
        return result
    predicted = reference["predictions"]
    if predicted.get("kind") == "numeric":  # a rating's histogram, not label shares
        live = np.asarray(list(labels), dtype=float)
        result["predictions"] = drift.numeric_prediction_shift(predicted, live)
    else:
        result["predictions"] = drift.prediction_shift(predicted, list(labels))
    if len(rows) < min_samples:
        return result
    features = []
    for name, ref in reference["features"].items():
        values = [row[name] for row in rows if name in row]
        if not values:
            continue
        if ref["kind"] == "numeric":
            tested = drift.numeric_drift(ref, np.asarray(values, dtype=float))
        elif ref["kind"] == "embedding":
            tested = drift.embedding_drift(ref, np.asarray(values, dtype=float))
        else:
            tested = drift.categorical_drift(ref["categories"], values, ref.get("rows"))
        features.append({"feature": name, **tested})
    share, drifting = drift.model_drifts(features)
    result.update(features=features, drifted_share=share, status="drift" if drifting else "ok")
    return result


class ModelWindow:
    def __init__(self, size: int) -> None:
        self.rows: deque[Mapping[str, float]] = deque(maxlen=size)
        self.labels: deque[str | float] = deque(maxlen=size)  # predicted labels or ratings
        self.version: str | None = None
        self.recorded = 0
        self.refreshed_at = -math.inf  # time.monotonic() of the last gauge refresh


class Monitor:
    def __init__(
        self,
        *,
        window: int,
        min_samples: int,
        feedback_window: int,
        recent: int,
        payloads: PayloadLog,
        feedback_log: PayloadLog | None = None,
        reference_of: Callable[[str], dict[str, Any] | None] = store_reference,
        metrics: Callable[[], dict[str, Any]] | None = None,
        refresh_interval_s: float = REFRESH_INTERVAL_S,
    ) -> None:
        self.window, self.min_samples, self.feedback_window = window, min_samples, feedback_window
        self.windows: dict[str, ModelWindow] = {}
        self.recent = Recent(recent)
        self.live: dict[tuple[str, str], Live] = {}
        self.payloads = payloads
        self.feedback_log = feedback_log  # every joined feedback, with its answer's inputs
        self._reference_of = functools.lru_cache(maxsize=64)(reference_of)
        self._metrics = metrics
        self.refresh_interval_s = refresh_interval_s
        # What monitoring costs, for the operator and the benchmark: the seconds spent in
        # record() (on the request path, drift refreshes included), published to Prometheus
        # with the payload writers' own at each gauge refresh (not per answer: a counter's
        # increment costs more than the timing does).
        self.recording_s = 0.0
        self._published = {"recording": 0.0, "payload_writing": 0.0}
        self._publishing = threading.Lock()  # POST /drift publishes from a worker thread

    def reference(self, tag: str) -> dict[str, Any] | None:
        try:
            return self._reference_of(tag)
        except Exception:  # a tag no longer in the store: no reference, never a failure
            return None

    def record(
        self,
        model: str,
        version: str,
        inputs: Sequence[Mapping[str, Any]],
        outputs: Sequence[Mapping[str, Any]],
        labels: Sequence[str | float | None],
        request_id: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Record answered items (``labels``: each one's predicted label, or its predicted
        rating for a numeric model); returns their prediction ids (in order): ``ids`` when
        the answers carry their own (a pydantic answer made one), else new ones."""
        started = time.perf_counter()
        window = self.windows.get(model)
        if window is None:  # not made on every call: this is the request path
            window = self.windows[model] = ModelWindow(self.window)
        window.version = version  # the report compares with the primary's reference
        if ids is None:
            ids = [new_prediction_id() for _ in inputs]
        for row, output, label, prediction_id in zip(inputs, outputs, labels, ids, strict=True):
            self.recent.add(prediction_id, model, version, output, row)
            window.rows.append(row)
            if label is not None:
                window.labels.append(label)
            window.recorded += 1
            if self.payloads.sampled():
                self.payloads.offer(
                    {
                        "time": now(),
                        "request_id": request_id,
                        "prediction_id": prediction_id,
                        "model": model,
                        "version": version,
                        "inputs": dict(row),
                        "outputs": dict(output),
                    }
                )
            if window.recorded % REFRESH_EVERY == 0 and self._metrics:
                self._refresh(model, window)
        self.recording_s += time.perf_counter() - started
        return list(ids)

    def _refresh(self, model: str, window: ModelWindow) -> None:
        """The drift gauges from a new report, unless the last is under the interval old."""
        moment = time.monotonic()
        if moment - window.refreshed_at >= self.refresh_interval_s:
            window.refreshed_at = moment
            self.model_report(model)

    def feedback(
        self, prediction_id: str, label: str | None, rating: float | None, labels_of: Any
    ) -> dict[str, Any]:
        """Join the ground truth to a recent prediction; FeedbackError names a problem."""
        if (label is None) == (rating is None):
            raise FeedbackError(
                "send exactly one of label (classifiers) or rating (ratings)",
                "label" if label is not None else "rating",
                "label_or_rating",
            )
        if rating is not None and not (math.isfinite(rating) and 1 <= rating <= 10):
            raise FeedbackError(
                f"rating must be between 1 and 10, got {rating}", "rating", "rating_out_of_range"
            )
        model, version, output, inputs = self.recent.items.get(
            prediction_id, (None, None, None, None)
        )
        if model is None:
            self.recent.pop(prediction_id)  # raises, naming the id
        assert model is not None and version is not None
        if "rating" in output:
            if rating is None:
                raise FeedbackError(
                    f"{model} predicts ratings: send rating, not label", kind="wrong_kind"
                )
            kind, value = "rmse", (float(output["rating"]) - rating) ** 2
        else:
            known = labels_of(model)
            if label is None:
                raise FeedbackError(
                    f"{model} predicts labels: send label, not rating", "rating", "wrong_kind"
                )
            if label not in known:
                raise FeedbackError(
                    f"label {label!r} is not one of {model}'s: {sorted(known)}",
                    kind="unknown_label",
                )
            kind, value = "accuracy", float(output["label"] == label)
        self.recent.pop(prediction_id)
        if self.feedback_log is not None:
            truth = {"rating": rating} if rating is not None else {"label": label}
            record = {"time": now(), "prediction_id": prediction_id, "model": model}
            record.update(version=version, inputs=dict(inputs), outputs=dict(output), **truth)
            self.feedback_log.offer(record)
        live = self.live.setdefault((model, version), Live(self.feedback_window))
        score = live.add(value, kind)
        if self._metrics:
            m = self._metrics()
            m["feedback"].labels(model=model, version=version).inc()
            m[kind].labels(model=model, version=version).set(score)
        return {"model": model, "version": version, kind: round(score, 6), "count": live.total}

    def live_figures(self, model: str, version: str) -> dict[str, Any]:
        """The feedback on a version's answers, as an automatic rollout judges it: the count
        over the window and live accuracy (classifiers) or RMSE (ratings)."""
        live = self.live.get((model, version))
        if not live or not live.values:
            return {"feedback": 0}
        kind = "rmse" if model == "book_rating" else "accuracy"
        return {"feedback": len(live.values), kind: round(live.score(kind), 6)}

    def _feedback_report(self, model: str, version: str) -> dict[str, Any]:
        live = self.live.get((model, version))
        report: dict[str, Any] = {"window": self.feedback_window, "count": 0}
        report.update(accuracy=None, rmse=None, history=[])
        if live and live.values:
            kind = "rmse" if model == "book_rating" else "accuracy"
            report.update(count=len(live.values), history=list(live.history))
            report[kind] = round(live.score(kind), 6)
        return report

    def model_report(self, model: str, version: str | None = None) -> dict[str, Any]:
        window = self.windows.get(model) or ModelWindow(self.window)
        version = version or window.version
        filled = len(window.rows)
        report: dict[str, Any] = {
            "model": model,
            "version": version,
            "status": "collecting",
            "window": {"size": self.window, "filled": filled, "min_samples": self.min_samples},
            "drifted_share": None,
            "features": [],
            "predictions": {"reference": {}, "live": {}, "shift": None},
            "feedback": self._feedback_report(model, version or ""),
            "logging": {
                "sample_rate": self.payloads.sample_rate,
                "logged": self.payloads.logged[model],
                "dropped": sum(n for (m, _), n in self.payloads.dropped.items() if m == model),
            },
        }
        if version is not None:
            reference = self.reference(version)
            report.update(compare(reference, window.rows, window.labels, self.min_samples))
        self._publish(report)
        return report

    def spent(self) -> dict[str, float]:
        """Seconds the monitor has spent, by part: recording answers (the request path) and
        writing payload and feedback logs (their writer threads' CPU time)."""
        writing = self.payloads.writing_s
        if self.feedback_log is not None:
            writing += self.feedback_log.writing_s
        return {"recording": self.recording_s, "payload_writing": writing}

    def _publish(self, report: dict[str, Any]) -> None:
        if not self._metrics:
            return
        m, model = self._metrics(), report["model"]
        with self._publishing:
            for part, seconds in self.spent().items():
                if seconds > self._published[part]:
                    m["spent"].labels(part=part).inc(seconds - self._published[part])
                    self._published[part] = seconds
        m["filled"].labels(model=model).set(report["window"]["filled"])
        m["detected"].labels(model=model).set(int(report["status"] == "drift"))
        if report["predictions"]["shift"] is not None:
            m["shift"].labels(model=model).set(report["predictions"]["shift"])
        for feature in report["features"]:
            labels = {"model": model, "feature": feature["feature"]}
            m["score"].labels(**labels).set(feature["score"])
            m["feature_detected"].labels(**labels).set(int(feature["drifted"]))


def payload_log(state_dir: Path, sample_rate: float, metrics: Any = None) -> PayloadLog:
    def dropped(model: str, reason: str) -> None:
        if metrics:
            metrics()["dropped"].labels(model=model, reason=reason).inc()

    def logged(model: str, count: int) -> None:
        if metrics:
            metrics()["logged"].labels(model=model).inc(count)

    return PayloadLog(state_dir / "payloads", sample_rate, on_drop=dropped, on_log=logged)
