"""The drift report's HTML (monitoring/report.py): one file, inline CSS and inline SVG, no
script and no address of anywhere else, so it opens offline and can be mailed or archived.
Every logged string is escaped: payloads are whatever clients sent."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

STATUS_SENTENCES = {
    "ok": "No drift: fewer than half of the features differ from the reference.",
    "drift": "Drift: at least half of the features differ from the reference.",
    "collecting": "Collecting: too few rows to test drift yet.",
    "no_reference": "No reference: this version has no reference statistics, so drift is not "
    "tested and nothing is guessed.",
}
TESTS = {  # the test's name, and whether a lower score means more drift
    "ks": ("Kolmogorov-Smirnov p-value", True),
    "chi_square": ("chi-square p-value", True),
    "wasserstein": ("Wasserstein distance / reference std", False),
    "jensen_shannon": ("Jensen-Shannon distance", False),
    "psi": ("population stability index", False),
}
REFERENCE_FILL, LIVE_FILL = "#9aa5b4", "#1f5fa8"
CSS = """
body { font-family: system-ui, sans-serif; color: #1b2430; margin: 0 auto; max-width: 1000px;
  padding: 1rem; line-height: 1.45; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2rem; border-bottom: 2px solid #c9d1dc; }
.meta { color: #566273; }
.status { display: inline-block; padding: 0.1rem 0.6rem; border-radius: 999px; color: #fff;
  font-weight: 600; }
.status-ok { background: #1d7a3e; } .status-drift { background: #b3261e; }
.status-collecting { background: #8a6d00; } .status-no_reference { background: #566273; }
.features { display: grid; grid-template-columns: repeat(auto-fill, minmax(20rem, 1fr));
  gap: 1rem; }
.feature { border: 1px solid #c9d1dc; border-radius: 8px; padding: 0.5rem 0.75rem; }
.feature h4 { margin: 0.2rem 0; } .feature p { margin: 0.2rem 0; }
.drifted { color: #b3261e; font-weight: 600; } .stable { color: #1d7a3e; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #c9d1dc; padding: 0.2rem 0.5rem; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.key span { display: inline-block; width: 0.8rem; height: 0.8rem; margin: 0 0.3rem 0 0.8rem; }
.key .reference { background: #9aa5b4; } .key .live { background: #1f5fa8; }
.feature svg, .timeline svg { width: 100%; height: auto; max-width: 640px; }
svg text { font-size: 10px; fill: #566273; }
"""


def number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def svg(width: int, height: int, label: str, body: Sequence[str], **data: str) -> str:
    attributes = "".join(f' data-{k}="{escape(v)}"' for k, v in data.items())
    return (
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}"{attributes}>'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def paired_bars(
    names: Sequence[str],
    reference: Sequence[float],
    live: Sequence[float],
    ticks: Sequence[tuple[float, str, str]],
) -> str:
    """Reference and live shares side by side per bin or category, on one scale; ``ticks``
    (where along the axis from 0 to 1, text, anchor) label the axis."""
    width, height, bottom = 320, 150, 24
    top = max([*reference, *live, 1e-9])
    step = (width - 10) / max(1, len(names))
    body = [
        f'<line x1="5" y1="{height - bottom}" x2="{width - 5}" y2="{height - bottom}" '
        'stroke="#566273"/>'
    ]
    for i, name in enumerate(names):
        x = 5 + i * step
        for j, (share, fill) in enumerate([(reference[i], REFERENCE_FILL), (live[i], LIVE_FILL)]):
            bar = (height - bottom - 10) * share / top
            body.append(
                f'<rect x="{x + 1 + j * step / 2:.1f}" y="{height - bottom - bar:.1f}" '
                f'width="{max(1.0, step / 2 - 2):.1f}" height="{bar:.1f}" fill="{fill}">'
                f"<title>{escape(name)}: {'reference' if j == 0 else 'live'} "
                f"{percent(share)}</title></rect>"
            )
    for where, text, anchor in ticks:
        x = 5 + where * (width - 10)
        body.append(
            f'<text x="{x:.1f}" y="{height - 8}" text-anchor="{anchor}">{escape(text)}</text>'
        )
    return "".join(body)


def shares_of(counts: Sequence[float]) -> list[float]:
    total = sum(counts) or 1
    return [c / total for c in counts]


def histogram(feature: Mapping[str, Any]) -> str:
    name, reference, live = feature["feature"], feature["reference"], feature["live"]
    if "edges" in reference:  # numeric and embedding features: histograms
        edges = reference["edges"]
        names = [f"{number(a, 3)} to {number(b, 3)}" for a, b in itertools.pairwise(edges)]
        ref, now = shares_of(reference["counts"]), shares_of(live["counts"])
        middle = len(edges) // 2
        ticks = [
            (0.0, number(edges[0], 3), "start"),
            (middle / (len(edges) - 1), number(edges[middle], 3), "middle"),
            (1.0, number(edges[-1], 3), "end"),
        ]
    else:
        names = list(live["categories"])
        ref = [reference["categories"].get(k, 0.0) for k in names]
        now = [live["categories"][k] for k in names]
        ticks = [((i + 0.5) / len(names), k[:12], "middle") for i, k in enumerate(names)]
    label = f"{name}: reference (grey) and live (blue) shares per bin"
    return svg(320, 150, label, [paired_bars(names, ref, now, ticks)], feature=name)


def feature_card(feature: Mapping[str, Any]) -> str:
    test, lower = TESTS.get(feature["test"], (feature["test"], False))
    rule = f"drifts {'below' if lower else 'above'} {number(feature['threshold'])}"
    verdict = (
        '<p class="drifted">Drifted</p>' if feature["drifted"] else '<p class="stable">Stable</p>'
    )
    return (
        f'<div class="feature" data-feature="{escape(feature["feature"])}" '
        f'data-drifted="{str(feature["drifted"]).lower()}">'
        f"<h4>{escape(feature['feature'])}</h4>{verdict}"
        f"<p>{escape(test)}: <strong>{number(feature['score'])}</strong> ({rule})</p>"
        f"{histogram(feature)}</div>"
    )


def predictions_table(predictions: Mapping[str, Any]) -> str:
    if "edges" in predictions["reference"]:  # a numeric prediction (the book rating)
        chart = histogram(
            {
                "feature": "predicted rating",
                "reference": predictions["reference"],
                "live": predictions["live"],
            }
        )
        return (
            f"<h4>Predicted ratings</h4>{chart}<p>Prediction shift (Jensen-Shannon distance "
            f"of the histograms, 0 to 1): {number(predictions['shift'])}</p>"
        )
    labels = list(dict.fromkeys([*predictions["reference"], *predictions["live"]]))
    if not labels:
        return ""
    rows = "".join(
        f"<tr><th>{escape(label)}</th>"
        f'<td class="number">{percent(predictions["reference"].get(label))}</td>'
        f'<td class="number">{percent(predictions["live"].get(label))}</td></tr>'
        for label in labels
    )
    return (
        "<table><caption>Predicted labels</caption><tr><th>label</th><th>reference</th>"
        f"<th>live</th></tr>{rows}</table>"
        f"<p>Prediction shift (Jensen-Shannon distance, 0 to 1): "
        f"{number(predictions['shift'])}</p>"
    )


def timeline(windows: Sequence[Mapping[str, Any]]) -> str:
    """Drifted share per consecutive window (the model drifts at 0.5), then the table."""
    if len(windows) < 2:
        return ""
    width, height, pad = 640, 140, 30
    step = (width - 2 * pad) / max(1, len(windows) - 1)

    def y(share: float) -> float:
        return height - pad - (height - 2 * pad) * share

    points = [(pad + i * step, w["drifted_share"]) for i, w in enumerate(windows)]
    tested = [(x, share) for x, share in points if share is not None]
    body = [
        f'<line x1="{pad}" y1="{y(0.5):.1f}" x2="{width - pad}" y2="{y(0.5):.1f}" '
        'stroke="#b3261e" stroke-dasharray="4 3"/>',
        f'<text x="{pad + 4}" y="{y(0.5) - 4:.1f}">drift at 50%</text>',
        f'<text x="2" y="{y(1) + 3:.1f}">100%</text>',
        f'<text x="2" y="{y(0) + 3:.1f}">0%</text>',
        f'<text x="{pad}" y="{height - 4}">window 1</text>',
        f'<text x="{width - pad}" y="{height - 4}" text-anchor="end">window {len(windows)}</text>',
    ]
    if len(tested) > 1:
        path = " ".join(f"{x:.1f},{y(share):.1f}" for x, share in tested)
        body.append(f'<polyline points="{path}" fill="none" stroke="{LIVE_FILL}"/>')
    for x, share in tested:
        body.append(f'<circle cx="{x:.1f}" cy="{y(share):.1f}" r="3" fill="{LIVE_FILL}"/>')
    rows = "".join(
        f'<tr data-status="{escape(w["status"])}"><td class="number">{i + 1}</td>'
        f"<td>{escape(str(w['first']))} to {escape(str(w['last']))}</td>"
        f'<td class="number">{w["rows"]}</td><td>{escape(w["status"])}</td>'
        f'<td class="number">{percent(w["drifted_share"])}</td>'
        f'<td class="number">{number(w["shift"])}</td>'
        f"<td>{escape(', '.join(w['drifted']) or '—')}</td></tr>"
        for i, w in enumerate(windows)
    )
    chart = svg(width, height, "Share of drifting features per window", body, chart="timeline")
    return (
        f'<h3>Over time: {len(windows)} windows</h3><div class="timeline">{chart}</div>'
        "<table><caption>Consecutive windows</caption><tr><th>#</th><th>logged</th><th>rows</th>"
        "<th>status</th><th>features drifting</th><th>prediction shift</th><th>drifting</th></tr>"
        f"{rows}</table>"
    )


def feedback_section(windows: Sequence[Mapping[str, Any]]) -> str:
    """Live accuracy or RMSE per window of the feedback log, as a table."""
    if not windows:
        return (
            '<p class="meta" data-feedback="none">No feedback logged: live accuracy needs '
            "the true labels sent to <code>POST /feedback</code>.</p>"
        )
    kind = windows[-1]["kind"]
    title = "Live RMSE (rating points)" if kind == "rmse" else "Live accuracy"
    rows = "".join(
        f'<tr data-feedback="{w["value"]}"><td>{escape(str(w["first"]))} to '
        f'{escape(str(w["last"]))}</td><td class="number">{w["count"]}</td>'
        f'<td class="number">{number(w["value"]) if kind == "rmse" else percent(w["value"])}'
        "</td></tr>"
        for w in windows
    )
    return (
        f"<h3>{title} from feedback</h3><table><caption>Per window of feedback</caption>"
        f"<tr><th>feedback given</th><th>answers</th><th>{title.lower()}</th></tr>{rows}</table>"
    )


def model_section(report: Mapping[str, Any]) -> str:
    status = report["status"]
    window = report["window"]
    sentence = STATUS_SENTENCES[status]
    if status == "collecting":
        sentence = (
            f"Collecting: {window['filled']} rows, drift is tested from {window['min_samples']}."
        )
    if status == "no_reference" and report["no_reference"]:
        sentence = f"No reference: {report['no_reference']}; drift is not tested."
    if status in ("ok", "drift"):
        drifting = sum(f["drifted"] for f in report["features"])
        sentence += f" {drifting} of {len(report['features'])} features drift."
    versions = ", ".join(f"{escape(v)} ({n} rows)" for v, n in report["versions"].items())
    skipped = f"<p>{report['skipped']} unreadable lines skipped.</p>" if report["skipped"] else ""
    cards = "".join(feature_card(f) for f in report["features"])
    key = (
        '<p class="key"><span class="reference"></span>reference'
        '<span class="live"></span>live (latest window)</p>'
        if cards
        else ""
    )
    return (
        f'<section data-model="{escape(report["model"])}" data-status="{escape(status)}">'
        f"<h2>{escape(report['model'])}</h2>"
        f'<p><span class="status status-{escape(status)}">{escape(status)}</span> '
        f"{escape(sentence)}</p>"
        f'<p class="meta">{report["rows"]} rows logged from {escape(str(report["first"]))} to '
        f"{escape(str(report['last']))}; versions: {versions}. Reference: "
        f"{escape(report['version'])}. Latest window: the last {window['filled']} rows.</p>"
        f'{skipped}{key}<div class="features">{cards}</div>'
        f"{predictions_table(report['predictions'])}{timeline(report['windows'])}"
        f"{feedback_section(report.get('feedback', []))}</section>"
    )


def render(reports: Sequence[Mapping[str, Any]], source: str) -> str:
    made = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = "".join(model_section(r) for r in reports)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Drift report · model_bundle</title><style>{CSS}</style></head><body>"
        f'<h1>Drift report</h1><p class="meta">From the payload logs in {escape(source)}, '
        f"made {made}. Each feature of the latest window against the reference stored with "
        "the model (docs/MONITORING-GUIDE.md); live accuracy from the feedback log.</p>"
        f"{sections}</body></html>\n"
    )
