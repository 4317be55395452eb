"""Monitoring: how soon a shift is flagged, how often drift is flagged wrongly, what it costs.

    python -m scripts.benchmarks.monitoring [--windows 500] [--trials 20]
                                            [--seconds 3] [--rounds 12] [--no-cost]
                                            [--all-rates] [--write]

Detection and false alarms run in process, on the monitor the front runs
(model_bundle/monitoring/monitor.py) with the window and minimum the settings in force give,
against the reference statistics stored in the default models' artifacts: a simulated shift
is recorded one request at a time until the drift report says ``drift``; in-distribution
windows are drawn from the data the model was trained on. The served cost runs bundles side
by side (scripts/benchmarks/arms.py), measured in alternation and compared round by round,
every bundle started anew every :data:`ROUNDS_PER_START` rounds: this tree without the
monitor's recording (:data:`NOT_RECORDING`) and this tree at the default payload sample rate
(with --all-rates, at 0 and 1 as well). With --write, the report is docs/MONITORING.md.

A shift is one function (a :class:`Shift`): the rows of in-distribution and of shifted
traffic for one model, as the front records them (for photos, their statistics and their
embedding's components as the stored model gives them).
"""

from __future__ import annotations

import argparse
import functools
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from model_bundle.catalogue import BOOK_RATING, MASK_CLASSIFIER
from model_bundle.monitoring.monitor import REFRESH_EVERY, REFRESH_INTERVAL_S, Monitor
from model_bundle.monitoring.payloads import PayloadLog
from model_bundle.settings import settings
from models.artifact import Artifact
from models.tabular.contract import CREDIT_TASK, IRIS_TASK, TabularTask
from scripts.benchmarks import arms, bench, goals
from scripts.benchmarks.goals import Goal
from tests.support import server as serving

REPORT = serving.ROOT / "docs" / "MONITORING.md"
FALSE_ALARM_GOAL = 0.01  # under 1 window in 100
THROUGHPUT_GOAL = 0.05  # at most 5% fewer requests/s at 64 clients
P50_GOAL_MS = 0.2  # at most 0.2 ms more at one client
# Fractions a careless client may send in percent (interest coverage is a multiple).
CREDIT_FRACTIONS = ("debt_ratio", "operating_margin", "return_on_assets")
BEFORE = "without the monitor"
# The arm without monitoring: this tree with Monitor.record() handing out prediction ids and
# nothing else (no drift window, no recent answers for feedback, no payload log, no drift
# tests). Every answer's other work is this tree's: merging, routing, the versions' timing.
RECORD_DOCSTRING_END = (
    '        the answers carry their own (a pydantic answer made one), else new ones."""\n'
)
NOT_RECORDING = {
    "model_bundle/monitoring/monitor.py": (
        RECORD_DOCSTRING_END,
        RECORD_DOCSTRING_END
        + "        return list(ids or [new_prediction_id() for _ in inputs])\n",
    )
}
RATES = {"sample rate 0": "0", "sample rate 0.1 (default)": "0.1", "sample rate 1": "1"}
DEFAULT_ARM = "sample rate 0.1 (default)"
COST_ENDPOINTS = ("predict_credit", "rate_book", "classify_mask")
ROUNDS_PER_START = 6  # rounds between two fresh starts of every arm (arms.served_in_blocks)

Rows = list[dict[str, Any]]


# ---- the traffic --------------------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """A model's stored version, its inputs as the front records them and the predicted
    labels, drawn at random from ``rows``."""

    model: str
    tag: str
    rows: Rows
    labels: list[Any]  # predicted labels; a book's predicted ratings

    def draw(self, count: int, rng: np.random.Generator) -> tuple[Rows, list[Any]]:
        picked = rng.integers(0, len(self.rows), count)
        return [self.rows[i] for i in picked], [self.labels[i] for i in picked]


def tabular_traffic(task: TabularTask, frame: Any, transform: Callable[[Rows], Rows]) -> Traffic:
    """``frame``'s rows (after ``transform``) with the labels the stored model predicts."""
    from models.tabular.network import load_classifier

    artifact = Artifact.load(f"{task.name}:latest")
    rows = transform(frame[list(task.features)].to_dict("records"))
    x = np.array([[row[f] for f in task.features] for row in rows], np.float32)
    predicted = load_classifier(artifact, task).predict_proba(x).argmax(axis=1)
    return Traffic(task.name, str(artifact.tag), rows, [task.labels[i] for i in predicted])


def unchanged(rows: Rows) -> Rows:
    return rows


def in_percent(rows: Rows) -> Rows:
    return [{k: v * 100 if k in CREDIT_FRACTIONS else v for k, v in row.items()} for row in rows]


def credit(transform: Callable[[Rows], Rows] = unchanged) -> Traffic:
    from scripts.train.datasets import credit_sample

    return tabular_traffic(CREDIT_TASK, credit_sample(), transform)


def iris_traffic() -> Traffic:
    from scripts.train.datasets import iris

    return tabular_traffic(IRIS_TASK, iris(), unchanged)


@dataclass(frozen=True)
class Shift:
    """A simulated shift of one model's traffic: ``make`` gives (in-distribution, shifted)
    traffic, or None while there is no simulation for it."""

    model: str
    what: str
    make: Callable[[], tuple[Traffic, Traffic] | None]


def credit_in_percent() -> tuple[Traffic, Traffic]:
    return credit(), credit(in_percent)


def book_traffic(model: Any, users: Sequence[int]) -> Traffic:
    """Each of ``users`` rating random books of the catalogue, answered by ``model`` (the
    stored BookRatingModel), as the front records them: the cold-start reason, and the rating
    as the 'label'."""
    rng = np.random.default_rng(0)
    isbns = rng.choice(np.asarray(model.featurizer.isbns), len(users))
    answers = model.rate([(int(u), str(i)) for u, i in zip(users, isbns, strict=True)])
    rows = [{"cold_start": a.get("reason") or "known"} for a in answers]
    return Traffic(
        BOOK_RATING.name, str(model_tag(BOOK_RATING.name)), rows, [a["rating"] for a in answers]
    )


def new_book_users() -> tuple[Traffic, Traffic]:
    """Users the model was trained on, against users it never saw (ids past the largest)."""
    from models.books.model import BookRatingModel

    model = BookRatingModel.load(Artifact.load(f"{BOOK_RATING.name}:latest"))
    known = model.featurizer.user_ids
    rng = np.random.default_rng(1)
    strangers = int(np.max(known)) + 1 + np.arange(2000)
    return book_traffic(model, rng.choice(np.asarray(known), 2000)), book_traffic(model, strangers)


def photo_traffic(darken: float) -> Traffic:
    """The sample faces (brightness scaled by ``darken``) as the front records them: each
    photo's statistics and its embedding's drift components, from the stored model."""
    from PIL import ImageEnhance

    from models.mask.contract import resize
    from models.mask.network import MaskClassifier
    from models.mask.statistics import image_statistics

    artifact = Artifact.load(f"{MASK_CLASSIFIER.name}:latest")
    model = MaskClassifier(artifact)
    photos = [ImageEnhance.Brightness(image).enhance(darken) for image in sample_faces()]
    pixels = np.stack([resize(photo, model.prep) for photo in photos])
    answered = model.classify_with_embedding(pixels)
    rows, labels = [], []
    for photo, resized, answer in zip(photos, pixels, answered, strict=True):
        row = image_statistics(photo, resized)
        row.update({f"embedding_{i}": float(v) for i, v in enumerate(answer[18:])})
        rows.append(row)
        labels.append(str(int(np.argmax(answer[:18]))))
    return Traffic(MASK_CLASSIFIER.name, str(artifact.tag), rows, labels)


@functools.cache
def sample_faces() -> list[Any]:
    """The sample faces the photo traffic is made of, drawn once (each takes milliseconds)."""
    from scripts.sample_data.mask import faces

    return [image for _, image in faces(12, seed=9)]


def darker_photos() -> tuple[Traffic, Traffic]:
    """The sample photos as they are, against the same photos at 60% of their brightness."""
    return photo_traffic(1.0), photo_traffic(0.6)


def model_tag(name: str) -> str:
    return str(Artifact.load(f"{name}:latest").tag)


SHIFTS = (
    Shift(
        CREDIT_TASK.name, "credit ratios sent in percent instead of fractions", credit_in_percent
    ),
    Shift(BOOK_RATING.name, "a new population of book users", new_book_users),
    Shift(MASK_CLASSIFIER.name, "darker photos", darker_photos),
)
# Each model's in-distribution traffic where no shift's unshifted side gives it already.
IN_DISTRIBUTION: dict[str, Callable[[], Traffic]] = {
    CREDIT_TASK.name: credit,
    IRIS_TASK.name: iris_traffic,
    BOOK_RATING.name: lambda: new_book_users()[0],
    MASK_CLASSIFIER.name: lambda: darker_photos()[0],
}


# ---- the monitor --------------------------------------------------------------------------


@functools.cache
def stored_reference(tag: str) -> dict[str, Any] | None:
    """A stored version's reference statistics, read once per run: every monitor made here
    asks for them, and reading an artifact's metadata parses its YAML (a quarter second)."""
    return Artifact.load(tag).metadata.get("reference")


def has_reference(model: str) -> bool:
    return stored_reference(f"{model}:latest") is not None


@functools.cache
def scratch() -> tempfile.TemporaryDirectory[str]:
    """The run's one folder for the monitors' payload logs, removed when the process ends."""
    return tempfile.TemporaryDirectory(prefix="bench-monitoring-")


def new_monitor(sample_rate: float = 0.0, directory: Path | None = None) -> Monitor:
    """The front's monitor with the settings in force (no Prometheus metrics here)."""
    folder = directory or Path(tempfile.mkdtemp(dir=scratch().name))
    return Monitor(
        window=settings.drift_window,
        min_samples=settings.drift_min_samples,
        feedback_window=settings.feedback_window,
        recent=settings.feedback_window * 100,
        payloads=PayloadLog(folder / "payloads", sample_rate),
        reference_of=stored_reference,
    )


def record(monitor: Monitor, traffic: Traffic, rows: Rows, labels: Sequence[Any]) -> None:
    """One request per item, as the front records single answers (a book's 'label' is its
    predicted rating, as front.py records it)."""
    for row, label in zip(rows, labels, strict=True):
        if traffic.model == BOOK_RATING.name:
            output = {"rating": label, "cold_start": row["cold_start"] != "known"}
        else:
            output = {"label": label, "probability": 1.0}
        monitor.record(traffic.model, traffic.tag, [row], [output], [label])


def flagged(monitor: Monitor, traffic: Traffic) -> bool:
    return monitor.model_report(traffic.model, traffic.tag)["status"] == "drift"


def requests_until_flagged(
    before: Traffic | None, shifted: Traffic, rng: np.random.Generator, limit: int
) -> int | None:
    """Shifted requests until the drift report says drift (checked after each), after a
    window full of ``before`` traffic (None: an empty window, a fresh start)."""
    monitor = new_monitor()
    if before is not None:
        record(monitor, before, *before.draw(settings.drift_window, rng))
    for count in range(1, limit + 1):
        record(monitor, shifted, *shifted.draw(1, rng))
        if flagged(monitor, shifted):
            return count
    return None


@dataclass(frozen=True)
class Detection:
    model: str
    what: str
    fresh: list[int | None]
    after_window: list[int | None]
    note: str = ""


Made = dict[str, tuple[Traffic, Traffic] | None]


def make_shifts() -> Made:
    """Each shift's (in-distribution, shifted) traffic, made once (photos drawn and classified,
    books rated) for the models whose stored version has a reference."""
    return {shift.model: shift.make() for shift in SHIFTS if has_reference(shift.model)}


def in_distribution(made: Made) -> list[Traffic]:
    """Every model's in-distribution traffic: a shift's unshifted side where there is one."""
    unshifted = {model: pair[0] for model, pair in made.items() if pair is not None}
    return [unshifted.get(model) or make() for model, make in IN_DISTRIBUTION.items()]


def detect(shift: Shift, made: Made, trials: int) -> Detection:
    if shift.model not in made:
        return Detection(shift.model, shift.what, [], [], "no reference yet")
    made_here = made[shift.model]
    if made_here is None:
        return Detection(shift.model, shift.what, [], [], "no simulation yet")
    normal, shifted = made_here
    limit = 2 * settings.drift_window
    fresh, after = [], []
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        fresh.append(requests_until_flagged(None, shifted, rng, limit))
        after.append(requests_until_flagged(normal, shifted, rng, limit))
    return Detection(shift.model, shift.what, fresh, after)


@dataclass(frozen=True)
class FalseAlarms:
    model: str
    windows: int
    alarms: int
    feature_alarms: dict[str, int]


def false_alarms(traffic: Traffic, windows: int, seed: int = 0) -> FalseAlarms:
    """Independent in-distribution windows, each drawn afresh from the training data and
    recorded whole; how many the drift report calls drift."""
    rng = np.random.default_rng(seed)
    monitor = new_monitor()
    alarms, per_feature = 0, dict.fromkeys(traffic.rows[0], 0)
    for _ in range(windows):
        record(monitor, traffic, *traffic.draw(settings.drift_window, rng))
        report = monitor.model_report(traffic.model, traffic.tag)
        alarms += report["status"] == "drift"
        for feature in report["features"]:
            per_feature[feature["feature"]] += feature["drifted"]
    return FalseAlarms(traffic.model, windows, alarms, per_feature)


def best_of(function: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` runs, in seconds: the machine is shared, and other work
    only ever adds time."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def in_process_cost(traffic: Traffic, answers: int = 2000) -> list[tuple[str, float]]:
    """Microseconds the monitor adds per single answer on the request path: ``record`` at
    each sample rate, and one drift refresh (every REFRESH_EVERY answers, at most once per
    REFRESH_INTERVAL_S) spread over them: over REFRESH_EVERY answers, as when they come at
    most that many per interval (the most each answer pays), and over a thousand answers per
    interval. Best of 5 runs."""
    rng = np.random.default_rng(0)
    rows, labels = traffic.draw(answers, rng)
    figures = []
    for name, rate in RATES.items():
        monitor = new_monitor(float(rate))
        seconds = best_of(lambda m=monitor: record(m, traffic, rows, labels), 5)
        figures.append((f"record(), {name}", seconds / answers * 1e6))
    monitor = new_monitor()
    record(monitor, traffic, rows[: settings.drift_window], labels[: settings.drift_window])
    refresh = best_of(lambda: monitor.model_report(traffic.model, traffic.tag), 20) * 1e6
    every = f"once per {REFRESH_EVERY} answers and at most once per {REFRESH_INTERVAL_S:g} s"
    figures.append((f"drift tests of a full window, {every}", refresh))
    figures.append(("the drift tests, per answer", refresh / REFRESH_EVERY))
    loaded = 1000 / REFRESH_INTERVAL_S
    figures.append((f"the drift tests, per answer at {loaded:,.0f} answers/s", refresh / loaded))
    return figures


# ---- the served cost ----------------------------------------------------------------------


@dataclass(frozen=True)
class Spent:
    """The default bundle's own account of the monitor's time over the served cost run (its
    ``model_bundle_monitor_seconds_total``), beside the CPU time of all its processes."""

    recording_s: float
    payload_writing_s: float
    bundle_cpu_s: float

    def share(self, seconds: float) -> float:
        return seconds / self.bundle_cpu_s


def monitor_seconds(url: str) -> dict[str, float]:
    """The served monitor's seconds by part, after a drift report (POST /drift) published
    what the gauges' last refresh had not."""
    httpx.post(f"{url}/drift", json={}, timeout=60).raise_for_status()
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.findall(r'^model_bundle_monitor_seconds_total{part="(\w+)"} (\S+)$', text, re.M)
    return {part: float(value) for part, value in found}


def served_cost(
    seconds: float, rounds: int, all_rates: bool, rounds_per_start: int = ROUNDS_PER_START
) -> tuple[str, dict[tuple[str, str, int], Any], Spent]:
    """The arms without the monitor and at the default sample rate, side by side (so each
    round's two figures are seconds apart: the pair the goals compare), started anew every
    ``rounds_per_start`` rounds; with ``all_rates`` the other sample rates after them. With
    them, what the default arm's monitor says it spent over the run: a direct figure, which
    the pairing's noise does not blur."""
    commit, without = arms.tree_edited("not-recording", NOT_RECORDING)
    rates = [DEFAULT_ARM, *(name for name in RATES if name != DEFAULT_ARM and all_rates)]
    sides = [arms.Arm(BEFORE, without)]
    sides += [
        arms.Arm(name, env={"MODEL_BUNDLE_PAYLOAD_SAMPLE_RATE": RATES[name]}) for name in rates
    ]
    workloads = [w for w in arms.plain_workloads() if w.name in COST_ENDPOINTS]
    figures: dict[tuple[str, str, int], arms.Figures] = {}
    spent = {"recording": 0.0, "payload_writing": 0.0, "cpu": 0.0}
    blocks = arms.served_in_blocks(sides, serving.store_models(), rounds, rounds_per_start)
    try:
        for count, urls in blocks:
            default = urls[DEFAULT_ARM]
            processes = bench.process_tree(default.process.pid)
            spent_before = monitor_seconds(default.url)
            cpu_before = bench.cpu_seconds(processes)
            arms.extend(figures, arms.alternate(urls, workloads, count, seconds))
            spent["cpu"] += bench.cpu_seconds(processes) - cpu_before
            for part, value in monitor_seconds(default.url).items():
                spent[part] += value - spent_before.get(part, 0.0)
    finally:  # made anew for every run: nothing to keep
        arms.git("worktree", "remove", "--force", str(without))
    return commit, figures, Spent(spent["recording"], spent["payload_writing"], spent["cpu"])


def spent_lines(spent: Spent) -> list[str]:
    return [
        "The default bundle's monitor timed itself over the whole run (Prometheus "
        "`model_bundle_monitor_seconds_total`; warm-ups and one-client runs included): "
        f"recording answers on the request path {spent.recording_s:.2f} s "
        f"({spent.share(spent.recording_s):.1%} of the CPU time of all the bundle's "
        f"processes, {spent.bundle_cpu_s:.0f} s), writing payloads off it "
        f"{spent.payload_writing_s:.2f} s ({spent.share(spent.payload_writing_s):.1%}). "
        "This misses what the monitor costs indirectly (the garbage collector's work on "
        "what it keeps, the caches it evicts), which only the paired comparison above sees.",
        "",
    ]


# ---- the report ---------------------------------------------------------------------------


def spread(values: Sequence[int | None]) -> str:
    found = [v for v in values if v is not None]
    missed = len(values) - len(found)
    if not found:
        return f"not flagged in {len(values)} trials"
    text = f"{statistics.median(found):g} (max {max(found)})"
    return text + (f", {missed} of {len(values)} not flagged" if missed else "")


def detection_lines(detections: Sequence[Detection], alarms: Sequence[FalseAlarms]) -> list[str]:
    lines = [
        "| model | simulated shift | requests until flagged, fresh window: median (max) | "
        "after a full in-distribution window | trials |",
        "|---|---|---|---|---|",
    ]
    for d in detections:
        if d.note:
            lines.append(f"| {d.model} | {d.what} | {d.note} | {d.note} | 0 |")
        else:
            lines.append(
                f"| {d.model} | {d.what} | {spread(d.fresh)} | {spread(d.after_window)} | "
                f"{len(d.fresh)} |"
            )
    lines += [
        "",
        "| model | in-distribution windows | flagged as drift | rate | "
        "windows where a feature drifted |",
        "|---|---|---|---|---|",
    ]
    for a in alarms:
        features = ", ".join(f"{k} {v}" for k, v in a.feature_alarms.items())
        lines.append(
            f"| {a.model} | {a.windows} | {a.alarms} | {a.alarms / a.windows:.3f} | {features} |"
        )
    return lines


def cost_lines(figures: Mapping[tuple[str, str, int], arms.Figures]) -> list[str]:
    names = [name for name in (BEFORE, *RATES) if (name, COST_ENDPOINTS[0], 1) in figures]
    lines = [
        "| endpoint | arm | p50 ms, 1 client | requests/s, 64 clients | "
        "CPU ms per answer, 64 clients | errors (1 / 64) |",
        "|---|---|---|---|---|---|",
    ]
    for endpoint in COST_ENDPOINTS:
        for name in names:
            one, many = figures[(name, endpoint, 1)], figures[(name, endpoint, 64)]
            lines.append(
                f"| `{endpoint}` | {name} | {one.p50_text()} | {many.rate_text()} | "
                f"{many.cpu_text()} | {one.error_text} / {many.error_text} |"
            )
    return lines


def interval(paired: arms.Paired, form: str) -> str:
    """How a paired change is written: its median, then the interval and its rounds."""
    return (
        f"{form.format(paired.median)}; {paired.coverage:.0%} interval "
        f"{form.format(paired.low)} to {form.format(paired.high)} over {len(paired.changes)} "
        "paired rounds"
    )


def goal_rows(
    alarms: Sequence[FalseAlarms],
    figures: Mapping[tuple[str, str, int], arms.Figures] | None,
    per_answer_us: float | None = None,
) -> list[Goal]:
    rows: list[Goal] = []

    def row(goal: str, measured: str, met: bool, noise: bool = False) -> None:
        rows.append(Goal(goal, measured, met, "within noise" if noise else ""))

    for a in alarms:
        rate = a.alarms / a.windows
        row(
            f"{a.model}: false alarms under 1 window in 100", f"{rate:.3f}", rate < FALSE_ALARM_GOAL
        )
    if per_answer_us is not None:
        row(
            "at most 0.2 ms added per answer: the monitor in process (default sample rate, "
            "drift tests included)",
            f"{per_answer_us:.0f} µs",
            per_answer_us <= P50_GOAL_MS * 1000,
        )
    for endpoint in COST_ENDPOINTS if figures else ():
        assert figures is not None
        now, before = figures[(DEFAULT_ARM, endpoint, 64)], figures[(BEFORE, endpoint, 64)]
        cost = arms.Paired.of(
            [
                1 - a / b
                for a, b in zip(now.requests_per_second, before.requests_per_second, strict=True)
            ]
        )
        row(
            f"`{endpoint}`: logging and drift cost at most 5% of requests/s at 64 clients",
            f"cost {interval(cost, '{:+.1%}')} ({now.rate:.0f} vs {before.rate:.0f} requests/s)",
            cost.median <= THROUGHPUT_GOAL,
            cost.straddles(THROUGHPUT_GOAL),
        )
        cpu = arms.paired_ratio(now.cpu_ms, before.cpu_ms)
        row(
            f"`{endpoint}`: the same from CPU per answer at 64 clients (less disturbed by "
            "other load)",
            f"{interval(cpu, '{:+.1%}')} ({now.cpu:.2f} vs {before.cpu:.2f} ms)",
            cpu.median <= THROUGHPUT_GOAL,
            cpu.straddles(THROUGHPUT_GOAL),
        )
        now, before = figures[(DEFAULT_ARM, endpoint, 1)], figures[(BEFORE, endpoint, 1)]
        added = arms.paired_difference(now.p50_ms, before.p50_ms)
        row(
            f"`{endpoint}`: at most 0.2 ms added to p50 at one client",
            f"{interval(added, '{:+.2f} ms')} ({now.p50:.2f} vs {before.p50:.2f})",
            added.median <= P50_GOAL_MS,
            added.straddles(P50_GOAL_MS),
        )
    return rows


def detection_report(windows: int, trials: int) -> tuple[list[str], list[FalseAlarms]]:
    made = make_shifts()
    detections = [detect(shift, made, trials) for shift in SHIFTS]
    alarms = [false_alarms(traffic, windows) for traffic in in_distribution(made)]
    lines = [
        "## Detection and false alarms",
        "",
        f"In process, on the front's monitor: window {settings.drift_window} items, drift "
        f"tested from {settings.drift_min_samples}, the reference statistics stored in the "
        "default models' artifacts, one request per item. Requests until flagged: shifted "
        "requests until `POST /drift` would report `drift`, checked after each (the "
        f"Prometheus gauges refresh every {REFRESH_EVERY} items, at most once per "
        f"{REFRESH_INTERVAL_S:g} s), into an empty window (a "
        "fresh start) or into a window full of in-distribution traffic. False alarms: "
        f"independent windows of {settings.drift_window} requests drawn with replacement "
        "from the data the model was trained on.",
        "",
        *detection_lines(detections, alarms),
        "",
    ]
    return lines, alarms


def report(
    windows: int, trials: int, seconds: float, rounds: int, cost: bool, all_rates: bool
) -> str:
    credit_rows = credit()
    detection, alarms = detection_report(windows, trials)
    in_process = in_process_cost(credit_rows)
    figure = dict(in_process)
    per_answer = figure[f"record(), {DEFAULT_ARM}"] + figure["the drift tests, per answer"]
    lines = [
        "# Monitoring: detection, false alarms, cost",
        "",
        "<!-- written by scripts/benchmarks/monitoring.py -->",
        "",
        f"Measured on {platform.machine()}. Reproduce: "
        "`python -m scripts.benchmarks.monitoring --write`. How monitoring works: "
        "[MONITORING-GUIDE.md](MONITORING-GUIDE.md).",
        "",
        *detection,
        "## Cost on the request path, in process",
        "",
        "Microseconds per single credit answer, the monitor alone (no server), the best of "
        "several runs:",
        "",
        "| what | µs |",
        "|---|---|",
        *(f"| {what} | {us:.1f} |" for what, us in in_process),
        "",
    ]
    figures = None
    if cost:
        commit, figures, spent = served_cost(seconds, rounds, all_rates)
        served = len({arm for arm, _, _ in figures})
        starts = len(arms.block_sizes(rounds, ROUNDS_PER_START))
        lines += [
            "## Cost served",
            "",
            f"{served} bundles served at once from one model store and measured in alternation, "
            f"{rounds} rounds, every bundle started anew every {ROUNDS_PER_START} rounds "
            f"({starts} starts; a block's bundles share a hash seed): a process has a speed of "
            "its own (its memory layout, its hash seed), which pairing rounds cannot cancel "
            "when each bundle is one process for the whole run. "
            f"In each round, every endpoint at each client count for {seconds:g} s "
            "on every bundle in turn (so one round's figures of the bundles are seconds apart; "
            "the order reversed every round); medians over the rounds (their range in "
            f"brackets); load from {arms.load_tool()}; at the end: {arms.machine_load()}. "
            "Without the monitor: "
            f"this tree (`{commit}`) with `Monitor.record()` handing out prediction ids and "
            "nothing else (no drift window, no recent answers for feedback, no payload log, "
            "no drift tests), made for this run (scripts/benchmarks/arms.py `tree_edited`). "
            "`MODEL_BUNDLE_PAYLOAD_SAMPLE_RATE=0` turns off the payload log only; every "
            "answer still enters the drift window and the recent answers feedback can join, "
            f"and the drift tests still run every {REFRESH_EVERY} answers (at most once per "
            f"{REFRESH_INTERVAL_S:g} s). CPU "
            "ms per answer: the CPU time of all the bundle's processes over the answers, which "
            "other work on the machine disturbs far less than requests/s. Answers after "
            "wrk's 2 s timeout are slow answers wrk stopped waiting for, not errors.",
            "",
            *cost_lines(figures),
            "",
            *spent_lines(spent),
        ]
    lines += [
        "## Goals",
        "",
        "Cost goals compare the default (sample rate 0.1) with this tree without the monitor "
        "round by round: each round's change (its two figures were measured seconds apart, so "
        "the machine's drift between rounds cancels out), the median of those changes, and "
        "the interval between order statistics that holds the true median with the "
        "confidence given (the sign test's; distribution-free). The verdict is the median's; "
        '"within noise": the interval holds the goal\'s limit, so this run cannot tell '
        "which side of it the cost is.",
        "",
        *goals.markdown(goal_rows(alarms, figures, per_answer)),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=500, help="in-distribution windows")
    parser.add_argument("--trials", type=int, default=20, help="trials per shift")
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--no-cost", action="store_true", help="skip the served cost")
    parser.add_argument(
        "--all-rates", action="store_true", help="serve sample rates 0 and 1 as well"
    )
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = report(
        args.windows, args.trials, args.seconds, args.rounds, not args.no_cost, args.all_rates
    )
    if args.write:
        REPORT.write_text(text)
