"""A drift report of logged payloads, as one self-contained HTML file.

    python -m model_bundle.monitoring.report [PAYLOAD_DIR] [--model NAME]
        [--out drift-report.html] [--window N] [--min-samples N] [--feedback DIR]

PAYLOAD_DIR is the payload log directory (``<state dir>/payloads``, the default, holding one
folder per model) or one model's folder. Rotated files are read too, oldest first. Each
model's reference is the one stored with the version that logged most rows of its latest
window, read from the model store of ``BENTOML_HOME`` (as the server does); a version missing
from the store or stored without reference statistics is reported as "no reference", nothing
guessed. The drift is computed by the live monitor's own code (``monitor.compare``): the
latest ``--window`` rows in detail, and every consecutive window of that many rows over time.
Live accuracy (or RMSE) per window comes from the feedback log (``<state dir>/feedback``,
every feedback joined to its answer) when there is one.

Why in ``model_bundle/`` and not ``scripts/``: operators run it beside a deployment, on the
state directory and model store the server uses, with the server's own drift code, like
``model_bundle.admin`` and ``model_bundle.batch``; the Bento (hence the image) packs all of
``model_bundle/`` and only chosen scripts (bentofile.yaml), and it needs no torch. Exit
status 2: nothing to report (no such directory, no readable payload lines, no lines of
``--model``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_bundle.monitoring.feedback import Live
from model_bundle.monitoring.monitor import compare, store_reference

LOG_NAME = "payloads.jsonl"  # payloads.py's file; rotated copies end in .1, .2 ...


class NothingToReportError(Exception):
    """The input holds nothing a report can be made of (the message says why)."""


@dataclass
class Logs:
    """One model's logged payloads, oldest first."""

    model: str
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # lines that were not a payload record


def log_files(folder: Path) -> list[Path]:
    """A model folder's payload files, oldest first (RotatingFileHandler: .3 before .1)."""

    def age(path: Path) -> int:
        suffix = path.name[len(LOG_NAME) + 1 :]
        return int(suffix) if suffix.isdigit() else 0

    files = [p for p in folder.glob(f"{LOG_NAME}*") if p.name == LOG_NAME or age(p) > 0]
    return sorted(files, key=age, reverse=True)


def read_folder(folder: Path) -> Iterator[tuple[dict[str, Any] | None, Path]]:
    for path in log_files(folder):
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                valid = isinstance(record, dict) and isinstance(record.get("inputs"), dict)
                yield (record if valid and "model" in record else None), path


def read_logs(directory: Path) -> dict[str, Logs]:
    """Every model's records under a payload directory or one model's folder."""
    if not directory.is_dir():
        raise NothingToReportError(f"payload directory {directory} does not exist")
    folders = [directory] if log_files(directory) else sorted(p for p in directory.iterdir())
    found: dict[str, Logs] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for record, _ in read_folder(folder):
            logs = found.setdefault(folder.name, Logs(folder.name))
            if record is None:
                logs.skipped += 1
            else:
                logs.records.append(record)
    found = {name: logs for name, logs in found.items() if logs.records}
    if not found:
        raise NothingToReportError(
            f"no payload lines under {directory} (files {LOG_NAME}* in one folder per model; "
            "is MODEL_BUNDLE_PAYLOAD_SAMPLE_RATE 0, or has the server answered nothing yet?)"
        )
    return found


def labels_of(records: Sequence[dict[str, Any]]) -> list[str | float]:
    """Predicted labels (classifiers) or ratings (the book model), as in the live monitor."""
    predicted: list[str | float] = []
    for record in records:
        outputs = record.get("outputs", {})
        if "label" in outputs:
            predicted.append(str(outputs["label"]))
        elif "rating" in outputs:
            predicted.append(float(outputs["rating"]))
    return predicted


def reference_for(tag: str, lookup: Callable[[str], Any]) -> tuple[Any, str | None]:
    """(the reference, None) or (None, why there is none)."""
    try:
        reference = lookup(tag)
    except Exception as error:  # not in this store: say so, never fail the whole report
        return None, f"{tag} is not in the model store ({type(error).__name__}: {error})"
    if reference is None:
        return None, f"{tag} was stored without reference statistics"
    return reference, None


def model_report(
    logs: Logs, window: int, min_samples: int, lookup: Callable[[str], Any] = store_reference
) -> dict[str, Any]:
    """The latest window in detail and every consecutive window over time, against the
    reference of the version that logged most of the latest window."""
    records = logs.records
    latest = records[-window:]
    versions = Counter(str(r.get("version")) for r in latest)
    version = versions.most_common(1)[0][0]
    reference, missing = reference_for(version, lookup)

    def compared(part: Sequence[dict[str, Any]]) -> dict[str, Any]:
        rows = [r["inputs"] for r in part]
        return compare(reference, rows, labels_of(part), min_samples)

    windows = []
    for start in range(0, len(records), window):
        part = records[start : start + window]
        result = compared(part)
        windows.append(
            {
                "first": part[0].get("time"),
                "last": part[-1].get("time"),
                "rows": len(part),
                "status": result["status"],
                "drifted_share": result["drifted_share"],
                "shift": result["predictions"]["shift"],
                "drifted": [f["feature"] for f in result["features"] if f["drifted"]],
            }
        )
    return {
        "model": logs.model,
        "version": version,
        "versions": dict(Counter(str(r.get("version")) for r in records)),
        "rows": len(records),
        "skipped": logs.skipped,
        "first": records[0].get("time"),
        "last": records[-1].get("time"),
        "window": {"size": window, "filled": len(latest), "min_samples": min_samples},
        "no_reference": missing,
        **compared(latest),
        "windows": windows,
    }


def feedback_windows(records: Sequence[dict[str, Any]], window: int) -> list[dict[str, Any]]:
    """Live accuracy (labels) or RMSE (ratings) per consecutive window of logged feedback
    (the server's ``<state dir>/feedback`` log: each answer's output with its ground truth),
    scored as the live monitor scores it (feedback.Live)."""
    windows = []
    for start in range(0, len(records), window):
        part = records[start : start + window]
        kind = "rmse" if "rating" in part[0] else "accuracy"
        live = Live(len(part))
        for r in part:
            output = r.get("outputs", {})
            if kind == "rmse":
                live.add((float(output.get("rating", math.nan)) - float(r["rating"])) ** 2, kind)
            else:
                live.add(float(str(output.get("label")) == str(r.get("label"))), kind)
        windows.append(
            {
                "first": part[0].get("time"),
                "last": part[-1].get("time"),
                "count": len(part),
                "kind": kind,
                "value": round(live.score(kind), 6),
            }
        )
    return windows


def read_feedback(directory: Path | None) -> dict[str, Logs]:
    """The feedback log's records per model; none when there is no log (an older server, or
    no feedback yet)."""
    if directory is None or not directory.is_dir():
        return {}
    try:
        return read_logs(directory)
    except NothingToReportError:
        return {}


def build(
    directory: Path,
    model: str | None,
    window: int,
    min_samples: int,
    lookup: Callable[[str], Any] = store_reference,
    feedback: Path | None = None,
) -> list[dict[str, Any]]:
    logs = read_logs(directory)
    truths = read_feedback(feedback)
    if model is not None:
        if model not in logs:
            raise NothingToReportError(
                f"no payload lines of {model!r} under {directory}; logged: {sorted(logs)}"
            )
        logs = {model: logs[model]}
    reports = [model_report(entry, window, min_samples, lookup) for entry in logs.values()]
    for entry in reports:
        known = truths.get(entry["model"])
        entry["feedback"] = feedback_windows(known.records, window) if known else []
    return reports


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    from model_bundle.monitoring.report_html import render
    from model_bundle.settings import settings

    parser = argparse.ArgumentParser(
        prog="python -m model_bundle.monitoring.report",
        description="Write a self-contained HTML drift report of logged payloads.",
    )
    parser.add_argument(
        "payloads",
        nargs="?",
        type=Path,
        default=settings.state_dir / "payloads",
        metavar="PAYLOAD_DIR",
        help="<state dir>/payloads or one model's folder in it (default: %(default)s)",
    )
    parser.add_argument("--model", help="only this model (its store name)")
    parser.add_argument("--out", type=Path, default=Path("drift-report.html"))
    parser.add_argument(
        "--feedback",
        type=Path,
        help="the feedback log directory, for live accuracy / RMSE per window (default: "
        "'feedback' beside PAYLOAD_DIR when that is <state dir>/payloads)",
    )
    parser.add_argument(
        "--window",
        type=positive,
        default=settings.drift_window,
        help="rows per window, as MODEL_BUNDLE_DRIFT_WINDOW (default: %(default)s)",
    )
    parser.add_argument(
        "--min-samples",
        type=positive,
        default=settings.drift_min_samples,
        help="rows a window needs before drift is tested (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    feedback = args.feedback
    if feedback is None and args.payloads.name == "payloads":
        feedback = args.payloads.parent / "feedback"
    try:
        reports = build(args.payloads, args.model, args.window, args.min_samples, feedback=feedback)
    except NothingToReportError as problem:
        parser.exit(2, f"{parser.prog}: {problem}\n")
    args.out.write_text(render(reports, source=str(args.payloads)), encoding="utf-8")
    summary = ", ".join(f"{r['model']} {r['status']}" for r in reports)
    print(f"wrote {args.out}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
