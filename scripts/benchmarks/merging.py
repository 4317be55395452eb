"""Calls merged in the front against the tree before them, with one and two front workers.

    python -m scripts.benchmarks.merging [--seconds 2] [--rounds 2] [--write]

Four bundles run side by side on free ports (scripts/benchmarks/arms.py), sharing the model
store: this tree and a reference tree (``--reference``, default :data:`BEFORE_MERGING`, the
last commit before merging landed, checked out as a detached worktree under /tmp when
missing), each with one and with two front workers; beside them the stack's floor (the JSON
echo on the bundle's BentoML stack) and the FastAPI baseline, as in bench.py. Round after
round (the arms' order reversed every round), each workload at one client on the one-worker
arms (p50), then at 64 clients (images: 32) on every arm (requests/s, CPU per answer). The
default models must be in the store. With --write the tables go to docs/PERFORMANCE-merging.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
from pathlib import Path

from scripts.benchmarks import arms, bench, goals
from scripts.benchmarks.goals import Goal
from scripts.sample_data.requests import HEALTHY
from tests.support import server as serving

REPORT = serving.ROOT / "docs" / "PERFORMANCE-merging.md"
NOW, BEFORE = "merged", "before"
BEFORE_MERGING = "7249791"  # main just before calls were merged in the front
TWO_WORKERS = {
    "BENTOML_CONFIG_OVERRIDES": json.dumps({"services": {"model_bundle": {"workers": 2}}})
}
FLOOR, BASELINE = "floor (echo)", "FastAPI baseline"
SINGLE = ("predict_credit", "classify_iris", "rate_book")


def arm_name(tree: str, workers: int) -> str:
    return f"{tree}, {workers} worker{'s' if workers > 1 else ''}"


def tree_at(ref: str) -> tuple[str, Path]:
    """(commit, checkout) of ``ref``: a detached worktree under /tmp, made when missing."""
    commit = arms.git("rev-parse", "--short", ref)
    checkout = Path(tempfile.gettempdir()) / f"model_bundle-at-{commit}"
    if not (checkout / "service.py").exists():
        arms.git("worktree", "add", "--detach", str(checkout), commit)
    return commit, checkout


def workloads() -> list[tuple[bench.Workload, int]]:
    """(workload, clients under load): bench.py's single-item bodies and its 100-row batch."""
    plan = bench.workloads(tiny=False)
    chosen = [plan[0], plan[1], plan[2], plan[3], plan[4]]
    return [(workload, max(counts)) for workload, _, counts in chosen]


def baseline_of(workload: bench.Workload) -> bench.Workload:
    """What the baseline serves for ``workload`` (a batch: the single-item call, per row)."""
    return {w.name: b for w, b, _ in bench.workloads(tiny=False)}[workload.name] or workload


def measure_rounds(
    served: dict[str, arms.Served], rounds: int, seconds: float
) -> dict[tuple[str, str, int], arms.Figures]:
    measure = bench.wrk if shutil.which("wrk") else bench.python_load
    figures: dict[tuple[str, str, int], arms.Figures] = {}
    bundles = [name for name in served if name not in (FLOOR, BASELINE)]
    plan = workloads()

    def once(name: str, workload: bench.Workload, clients: int, warm: bool) -> None:
        row = figures.setdefault((name, workload.name, clients), arms.Figures())
        arms.measure_into(row, measure, served[name], workload, clients, seconds, warm)

    echo = bench.Workload.json("echo (stack floor)", "/echo", HEALTHY)
    for number in range(rounds):
        order = bundles if number % 2 == 0 else bundles[::-1]
        once(FLOOR, echo, 64, number == 0)
        for workload, many in plan:
            for name in order:
                if name.endswith(", 1 worker"):
                    once(name, workload, 1, number == 0)
                once(name, workload, many, number == 0 and not name.endswith(", 1 worker"))
            if workload.rows == 1:
                once(BASELINE, workload, 1, number == 0)
                once(BASELINE, workload, many, False)
    return figures


def report(seconds: float, rounds: int, reference: str) -> str:
    commit, before = tree_at(reference)
    sides = [
        arms.Arm(arm_name(tree_name, workers), tree, TWO_WORKERS if workers == 2 else {})
        for workers in (1, 2)
        for tree_name, tree in ((NOW, serving.ROOT), (BEFORE, before))
    ]
    logs = Path(tempfile.mkdtemp(prefix="bench-merging-"))
    others: dict[str, arms.Served] = {}
    try:
        for name, kind in ((FLOOR, "echo"), (BASELINE, "baseline")):
            port = serving.free_port()
            process = bench.start(kind, port, logs / f"{kind}.log")
            others[name] = arms.Served(f"http://127.0.0.1:{port}", process)
            serving.wait_until_ready(others[name].url, process, 180)
        with arms.serving_arms(sides, serving.store_models()) as urls:
            figures = measure_rounds(urls | others, rounds, seconds)
            busy = arms.machine_load()
    finally:
        for other in others.values():
            serving.stop(other.process)
    text = "\n".join(lines(figures, seconds, rounds, commit, busy))
    print(text)
    return text


def lines(
    figures: dict[tuple[str, str, int], arms.Figures],
    seconds: float,
    rounds: int,
    commit: str,
    busy: str,
) -> list[str]:
    plan = workloads()
    floor = figures[(FLOOR, "echo (stack floor)", 64)]
    out = [
        "# Performance: concurrent calls merged in the front",
        "",
        f"One run of `python -m scripts.benchmarks.merging --seconds {seconds:g} --rounds "
        f"{rounds}` on {platform.machine()}: this tree ({NOW!r}, calls of a runner method made "
        f"while one is in flight merged into one runner request) and the tree before "
        f"({BEFORE!r}, `{commit}`: each call its own runner request), each with 1 and 2 front "
        "workers, all served at once from one model store and measured in alternation (the "
        f"arms' order reversed every round), {rounds} rounds of {seconds:g} s per workload and "
        "client count; medians over the rounds, their range in brackets. Beside them, in the "
        "same rounds, the stack's floor (`scripts/benchmarks/echo_service.py`) and the FastAPI "
        "baseline (`scripts/benchmarks/baseline_server.py`). Load from "
        f"{arms.load_tool()} on the same 2 cores, which other work shares: {busy} at the end. "
        "CPU ms per answer: the CPU time of all of an arm's processes over its answers, which "
        "other work disturbs far less than requests/s. Batch rows count requests (100 rows "
        "each).",
        "",
        f"Floor at 64 clients: {floor.rate_text()} requests/s, errors: {floor.error_text}.",
        "",
        "| endpoint | arm | p50 ms, 1 client | requests/s, loaded | of the floor | "
        "x baseline | CPU ms per answer, loaded | errors (1 / loaded) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for workload, many in plan:
        baseline = figures.get((BASELINE, baseline_of(workload).name, many))
        for workers in (1, 2):
            for tree in (NOW, BEFORE):
                name = arm_name(tree, workers)
                one = figures.get((name, workload.name, 1))
                loaded = figures[(name, workload.name, many)]
                rows = workload.rows
                of_floor = f"{loaded.rate / floor.rate:.2f}" if rows == 1 else ""
                times = f"{loaded.rate * rows / baseline.rate:.2f}x" if baseline else ""
                out.append(
                    f"| {workload.name} ({many} clients) | {name} | "
                    f"{one.p50_text() if one else ''} | {loaded.rate_text()} | {of_floor} | "
                    f"{times} | {loaded.cpu_text()} | "
                    f"{one.error_text if one else '-'} / {loaded.error_text} |"
                )
        if workload.rows == 1 and baseline:
            one = figures[(BASELINE, workload.name, 1)]
            out.append(
                f"| {workload.name} ({many} clients) | {BASELINE} | {one.p50_text()} | "
                f"{baseline.rate_text()} | {baseline.rate / floor.rate:.2f} | 1.00x | "
                f"{baseline.cpu_text()} | {one.error_text} / {baseline.error_text} |"
            )
    out += ["", *goals.markdown(goal_rows(figures, floor)), ""]
    return out


def goal_rows(figures: dict[tuple[str, str, int], arms.Figures], floor: arms.Figures) -> list[Goal]:
    """The goals of merging calls in the front, each against this run's medians."""
    out: list[Goal] = []

    def row(goal: str, figure: str, met: bool) -> None:
        out.append(Goal(goal, figure, met))

    for workers in (1, 2):
        now, before = arm_name(NOW, workers), arm_name(BEFORE, workers)
        for name in SINGLE:
            merged = figures[(now, name, 64)]
            baseline = figures[(BASELINE, name, 64)]
            of_floor, times = merged.rate / floor.rate, merged.rate / baseline.rate
            row(
                f"{name}, 64 clients, {now}: >= 0.8 of the floor, >= 1.5x the baseline",
                f"{of_floor:.2f} of the floor, {times:.2f}x the baseline",
                of_floor >= 0.8 and times >= 1.5,
            )
        for workload, many in workloads():
            if workload.name in SINGLE:
                continue
            merged, old = (
                figures[(now, workload.name, many)],
                figures[(before, workload.name, many)],
            )
            row(
                f"{workload.name}, {many} clients, {workers} worker(s): no worse than before",
                f"{merged.rate:.0f} against {old.rate:.0f} requests/s "
                f"({(merged.rate / old.rate - 1) * 100:+.0f} %)",
                merged.rate >= old.rate * 0.95,  # within 5 %: the rounds' noise
            )
    now, before = arm_name(NOW, 1), arm_name(BEFORE, 1)
    for workload, _ in workloads():
        merged, old = figures[(now, workload.name, 1)], figures[(before, workload.name, 1)]
        row(
            f"{workload.name}, 1 client: p50 <= +0.2 ms over before",
            f"{merged.p50:.2f} against {old.p50:.2f} ms ({merged.p50 - old.p50:+.2f} ms)",
            merged.p50 - old.p50 <= 0.2,
        )
    failed = [k for k, f in figures.items() if k[0] != BASELINE and f.error_text != "0"]
    row("0 errors (bundles and floor)", f"{len(failed)} runs with errors", not failed)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reference", default=BEFORE_MERGING, help="the tree to compare with")
    parser.add_argument("--write", action="store_true", help=f"write {REPORT.name}")
    args = parser.parse_args()
    text = report(args.seconds, args.rounds, args.reference)
    if args.write:
        REPORT.write_text(text)
