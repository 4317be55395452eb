"""The monitor in-process: prediction ids, feedback joins, the drift report's status and how
often its gauges are refreshed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from model_bundle.monitoring.feedback import FeedbackError
from model_bundle.monitoring.monitor import Monitor
from model_bundle.monitoring.payloads import PayloadLog
from model_bundle.monitoring.reference import tabular_reference

rng = np.random.default_rng(1)
REFERENCE = tabular_reference({"x": rng.uniform(0, 1, 500)}, ["a", "b"] * 50, ["a", "b"])


def monitor(tmp_path: Path, reference: dict | None = REFERENCE, **options: Any) -> Monitor:
    """A small monitor logging no payloads; ``options``: other Monitor arguments (window,
    metrics, payloads...)."""
    small = {"window": 100, "min_samples": 50, "feedback_window": 10, "recent": 5}
    small["payloads"] = PayloadLog(tmp_path, 0.0)
    return Monitor(**(small | options), reference_of=lambda tag: reference)


def send(m: Monitor, values: list[float]) -> list[str]:
    rows = [{"x": v} for v in values]
    outputs = [{"label": "a", "probability": 0.9}] * len(values)
    return m.record("iris", "iris:v1", rows, outputs, ["a"] * len(values))


def labels(model: str) -> set[str]:
    return {"a", "b"}


def test_feedback_joins_and_bad_feedback_names_the_problem(tmp_path: Path) -> None:
    m = monitor(tmp_path)
    ids = send(m, [0.5] * 6)
    assert len(set(ids)) == 6
    with pytest.raises(FeedbackError, match="unknown or expired"):
        m.feedback(ids[0], "a", None, labels)  # the oldest fell out of the 5 kept
    assert m.feedback(ids[1], "a", None, labels)["accuracy"] == 1.0
    assert m.feedback(ids[2], "b", None, labels)["accuracy"] == 0.5
    with pytest.raises(FeedbackError, match="not one of"):
        m.feedback(ids[3], "z", None, labels)
    with pytest.raises(FeedbackError, match="exactly one"):
        m.feedback(ids[3], None, None, labels)
    report = m.model_report("iris")
    assert report["feedback"]["accuracy"] == 0.5 and report["feedback"]["count"] == 2


def test_answers_that_carry_their_own_ids_are_recorded_and_joined_by_them(
    tmp_path: Path,
) -> None:
    """A pydantic answer (a book rating, a photo's class) made its id when it was built: the
    monitor records that one, so the id the client sees is the one feedback joins."""
    m = monitor(tmp_path)
    own = ["c0ffee" * 5 + "01", "c0ffee" * 5 + "02"]
    rows, outputs = [{"x": 0.5}, {"x": 0.6}], [{"label": "a", "probability": 0.9}] * 2
    assert m.record("iris", "iris:v1", rows, outputs, ["a", "a"], ids=own) == own
    assert m.feedback(own[1], "b", None, labels)["accuracy"] == 0.0
    with pytest.raises(ValueError):  # one id per answer, no more, no fewer
        m.record("iris", "iris:v1", rows, outputs, ["a", "a"], ids=own[:1])


def test_report_collects_then_flags_shift_only(tmp_path: Path) -> None:
    m = monitor(tmp_path)
    send(m, list(rng.uniform(0, 1, 20)))
    assert m.model_report("iris")["status"] == "collecting"
    send(m, list(rng.uniform(0, 1, 80)))
    assert m.model_report("iris")["status"] == "ok"
    send(m, list(rng.uniform(0, 100, 100)))
    report = m.model_report("iris")
    assert report["status"] == "drift" and report["features"][0]["drifted"]
    assert report["predictions"]["live"] == {"a": 1.0, "b": 0.0}


def test_no_reference_guesses_nothing(tmp_path: Path) -> None:
    m = monitor(tmp_path, reference=None)
    send(m, [0.5] * 60)
    report = m.model_report("iris")
    assert report["status"] == "no_reference" and report["features"] == []


def drift_metrics(registry: CollectorRegistry) -> dict[str, Any]:
    """The metrics the monitor publishes (monitoring/metrics.py), in a registry of their own."""
    gauges: dict[str, Any] = {
        name: Gauge(f"t_{name}", name, labels, registry=registry)
        for name, labels in (
            ("filled", ["model"]),
            ("detected", ["model"]),
            ("shift", ["model"]),
            ("score", ["model", "feature"]),
            ("feature_detected", ["model", "feature"]),
        )
    }
    gauges["spent"] = Counter("t_spent", "spent", ["part"], registry=registry)
    return gauges


def test_gauges_refresh_every_100_answers_but_at_most_once_per_interval(tmp_path: Path) -> None:
    """Under load the drift tests would run every 100 answers, many times a second; the
    gauges are refreshed at most once per ``refresh_interval_s`` instead."""

    def refreshed(interval: float, answers: int) -> float:
        registry = CollectorRegistry()
        gauges = drift_metrics(registry)
        m = monitor(tmp_path, window=1000, metrics=lambda: gauges, refresh_interval_s=interval)
        send(m, list(rng.uniform(0, 1, answers)))
        return registry.get_sample_value("t_filled", {"model": "iris"}) or 0.0

    assert refreshed(0.0, 99) == 0.0  # not before 100 answers
    assert refreshed(0.0, 350) == 300.0  # every 100 when the interval allows
    assert refreshed(3600.0, 350) == 100.0  # the first, then none within the hour


def test_the_time_the_monitor_spends_is_published_by_part(tmp_path: Path) -> None:
    """Recording's seconds (timed in record()) and the payload writer's reach the counter
    at a refresh, each second counted once however often the report is built."""
    registry = CollectorRegistry()
    metrics = drift_metrics(registry)
    log = PayloadLog(tmp_path / "payloads", 1.0)
    m = monitor(tmp_path, payloads=log, metrics=lambda: metrics, refresh_interval_s=0.0)
    started = time.perf_counter()
    send(m, list(rng.uniform(0, 1, 300)))
    elapsed = time.perf_counter() - started
    log.queue.join()  # the writer thread has written every sampled payload
    m.model_report("iris")
    m.model_report("iris")  # a second report adds nothing already counted

    def spent(part: str) -> float:
        return registry.get_sample_value("t_spent_total", {"part": part}) or 0.0

    assert 0 < spent("recording") == pytest.approx(m.recording_s)
    assert m.recording_s <= elapsed
    assert 0 < spent("payload_writing") == pytest.approx(log.writing_s)
    assert log.logged["iris"] == 300
