"""The drift report of logged payloads (python -m model_bundle.monitoring.report), in-process:
payloads logged by the monitor itself for credit samples, against the default credit model's
stored reference. Its rendering in Chromium is in tests/test_monitoring_page.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from model_bundle.monitoring import report
from model_bundle.monitoring.monitor import Monitor
from model_bundle.monitoring.payloads import PayloadLog
from models.tabular.contract import CREDIT_TASK
from scripts.train.datasets import credit_sample
from tests.support.commands import run_module

FEATURES = list(CREDIT_TASK.features)
PERCENT = ("debt_ratio", "operating_margin", "return_on_assets")  # sent as % by mistake


def credit_rows(rows: int, seed: int, shifted: bool = False) -> list[dict[str, float]]:
    """Rows like the training data's (another seed); shifted: three ratios in percent (within
    the API's bounds: a debt ratio is at most 100)."""
    frame = credit_sample(rows, seed=seed)[FEATURES]
    records = frame.to_dict("records")
    if shifted:
        records = [{k: v * 100 if k in PERCENT else v for k, v in r.items()} for r in records]
        records = [r | {"debt_ratio": min(r["debt_ratio"], 100.0)} for r in records]
    return records


def log_payloads(
    directory: Path,
    tag: str,
    rows: list[dict[str, float]],
    truths: list[str] | None = None,
    **log: int,
) -> None:
    """Record answers through the monitor, every one sampled into the payload log; with
    ``truths``, feedback on the first answers into the feedback log beside it."""
    payloads = PayloadLog(directory, 1.0, **log)
    feedback = PayloadLog(directory.parent / "feedback", 1.0)
    monitor = Monitor(
        window=500,
        min_samples=100,
        feedback_window=10,
        recent=1000,
        payloads=payloads,
        feedback_log=feedback,
    )
    labels = ["healthy" if r["debt_ratio"] < 0.6 else "unhealthy" for r in rows]
    outputs = [{"label": label, "probability": 0.9} for label in labels]
    ids = monitor.record("credit_health", tag, rows, outputs, labels)
    for prediction_id, truth in zip(ids, truths or [], strict=False):
        monitor.feedback(prediction_id, truth, None, lambda model: set(CREDIT_TASK.labels))
    payloads.queue.join()
    feedback.queue.join()


class Document(HTMLParser):
    """Every model section's status, every feature's SVG and every src / href."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: dict[str, str] = {}
        self.plots: list[str] = []
        self.references: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section":
            self.statuses[str(found["data-model"])] = str(found["data-status"])
        if tag == "svg" and found.get("data-feature"):
            self.plots.append(str(found["data-feature"]))
        self.references += [v for k, v in attrs if k in ("src", "href") and v]
        self.scripts += tag == "script"


def read(path: Path) -> tuple[str, Document]:
    html = path.read_text(encoding="utf-8")
    document = Document()
    document.feed(html)
    return html, document


@pytest.fixture
def write_report(tmp_path: Path) -> Callable[..., tuple[str, Document]]:
    def write(directory: Path, *args: str) -> tuple[str, Document]:
        out = tmp_path / f"{directory.name}.html"
        assert report.main([str(directory), "--out", str(out), *args]) == 0
        return read(out)

    return write


def test_shifted_sample_drifts_and_the_unshifted_one_does_not(
    default_models: dict[str, str], tmp_path: Path, write_report: Callable[..., Any]
) -> None:
    tag = default_models["credit_health"]
    log_payloads(tmp_path / "unshifted", tag, credit_rows(300, seed=11))
    log_payloads(tmp_path / "shifted", tag, credit_rows(300, seed=12, shifted=True))

    for name, status in [("unshifted", "ok"), ("shifted", "drift")]:
        html, document = write_report(tmp_path / name)
        assert document.statuses == {"credit_health": status}, name
        assert f'<span class="status status-{status}">{status}</span>' in html
        assert document.plots == FEATURES  # one inline SVG histogram per feature
        assert "Wasserstein distance / reference std" in html  # 4800 reference rows
        assert "Predicted labels" in html and tag in html
        assert document.scripts == 0 and document.references == []
        assert not re.search(r"https?://", html)  # nothing from anywhere else
    shifted = (tmp_path / "shifted.html").read_text()
    for feature in PERCENT:
        assert re.search(rf'data-feature="{feature}" data-drifted="true"', shifted)


def test_windows_over_time_read_rotated_files_oldest_first(
    default_models: dict[str, str], tmp_path: Path, write_report: Callable[..., Any]
) -> None:
    directory = tmp_path / "payloads"
    rows = credit_rows(300, seed=13) + credit_rows(300, seed=14, shifted=True)
    log_payloads(directory, default_models["credit_health"], rows, max_bytes=60_000)
    assert len(list((directory / "credit_health").iterdir())) > 1  # rotated

    html, document = write_report(directory / "credit_health", "--window", "300")
    assert "600 rows logged" in html
    assert re.findall(r'<tr data-status="(\w+)">', html) == ["ok", "drift"]
    assert document.statuses == {"credit_health": "drift"}  # the latest window


def test_a_version_without_a_reference_is_said_so_and_nothing_guessed(
    default_models: dict[str, str], tmp_path: Path, write_report: Callable[..., Any]
) -> None:
    log_payloads(tmp_path / "gone", "credit_health:notinthestore", credit_rows(150, seed=15))
    html, document = write_report(tmp_path / "gone")
    assert document.statuses == {"credit_health": "no_reference"}
    assert "credit_health:notinthestore is not in the model store" in html
    assert document.plots == []


def test_too_few_rows_are_collecting(
    default_models: dict[str, str], tmp_path: Path, write_report: Callable[..., Any]
) -> None:
    log_payloads(tmp_path / "few", default_models["credit_health"], credit_rows(40, seed=16))
    html, document = write_report(tmp_path / "few")
    assert document.statuses == {"credit_health": "collecting"}
    assert "Collecting: 40 rows, drift is tested from 100." in html


def test_nothing_to_report_exits_2_with_the_reason(tmp_path: Path) -> None:
    missing = run_module("model_bundle.monitoring.report", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert f"payload directory {tmp_path / 'nowhere'} does not exist" in missing.stderr

    (tmp_path / "payloads" / "iris").mkdir(parents=True)
    (tmp_path / "payloads" / "iris" / "payloads.jsonl").write_text("\n")
    empty = run_module("model_bundle.monitoring.report", str(tmp_path / "payloads"))
    assert empty.returncode == 2 and "no payload lines under" in empty.stderr
    assert not (tmp_path / "drift-report.html").exists()


def test_unknown_model_and_unreadable_lines(
    default_models: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "payloads"
    log_payloads(directory, default_models["credit_health"], credit_rows(120, seed=17))
    with (directory / "credit_health" / "payloads.jsonl").open("a") as log:
        log.write("not json\n[1, 2]\n")
    with pytest.raises(SystemExit) as exited:
        report.main([str(directory), "--model", "iris"])
    assert exited.value.code == 2
    assert "no payload lines of 'iris'" in capsys.readouterr().err
    out = tmp_path / "r.html"
    assert report.main([str(directory), "--model", "credit_health", "--out", str(out)]) == 0
    assert "2 unreadable lines skipped" in out.read_text()


def test_books_and_photos_report_their_reference_kinds(
    default_models: dict[str, str], tmp_path: Path, write_report: Callable[..., Any]
) -> None:
    payloads = PayloadLog(tmp_path / "logs", 1.0)
    monitor = Monitor(window=500, min_samples=100, feedback_window=10, recent=10, payloads=payloads)
    ratings = [5.0 + (n % 40) / 10 for n in range(120)]
    monitor.record(
        "book_rating",
        default_models["book_rating"],
        [{"cold_start": "unknown_user"}] * 120,
        [{"rating": r, "cold_start": True} for r in ratings],
        ratings,
    )
    photo = {"brightness": 0.5, "contrast": 0.2, "width": 384.0, "height": 512.0, "aspect": 0.75}
    rows = [{**photo, **{f"embedding_{i}": n / 100 for i in range(4)}} for n in range(120)]
    outputs = [{"label": "0", "probability": 0.5}] * 120
    monitor.record("mask_classifier", default_models["mask_classifier"], rows, outputs, ["0"] * 120)
    payloads.queue.join()

    html, document = write_report(tmp_path / "logs")
    assert document.statuses == {"book_rating": "drift", "mask_classifier": "drift"}
    assert {"cold_start", "predicted rating", "brightness", "embedding_0"} <= set(document.plots)
    assert "chi-square p-value" in html or "Jensen-Shannon distance" in html
    assert "population stability index" in html and "Predicted ratings" in html


def test_live_accuracy_per_window_from_the_feedback_log(
    default_models: dict[str, str], tmp_path: Path, write_report: Callable[..., Any]
) -> None:
    directory = tmp_path / "state" / "payloads"  # the feedback log is its sibling
    rows = credit_rows(200, seed=18)
    labels = ["healthy" if r["debt_ratio"] < 0.6 else "unhealthy" for r in rows]
    wrong = {"healthy": "unhealthy", "unhealthy": "healthy"}
    truths = labels[:6] + [wrong[label] for label in labels[6:8]]  # 6 of 8 right
    log_payloads(directory, default_models["credit_health"], rows, truths)
    html, _ = write_report(directory)
    assert '<tr data-feedback="0.75">' in html and "75.0%" in html
    alone, _ = write_report(directory / "credit_health")  # a model's folder: no feedback
    assert 'data-feedback="none"' in alone
